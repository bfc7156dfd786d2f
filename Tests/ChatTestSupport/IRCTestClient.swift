import Foundation
import IRCProtocol

/// A plain IRC client for tests: a `LineClient` socket sending CRLF lines and reading parsed
/// messages with a deadline. It shares no code with the server's IRC listener but the line parser
/// (which passes the public parser test vectors on its own).
public final class IRCTestClient: @unchecked Sendable {
    public let connection: LineClient
    /// Every message read so far, in order (for assertions about what came before what).
    public private(set) var received: [IRCMessage] = []

    public init(port: Int) throws {
        connection = try LineClient(port: port)
    }

    /// IRC over an open connection (a WebSocket with the `text.ircv3.net` subprotocol).
    public init(connection: LineClient) {
        self.connection = connection
    }

    public func send(_ line: String) {
        connection.send(bytes: Array((line + "\r\n").utf8))
    }

    /// The next message (`nil` once the server closed).
    public func next(timeout: Double = 30) throws -> IRCMessage? {
        guard var line = try connection.nextLine(timeout: timeout) else { return nil }
        if line.hasSuffix("\r") { line.removeLast() }
        let message = try IRCMessage.parse(line)
        received.append(message)
        if message.command == "PING" { send("PONG :\(message.parameters.last ?? "")") }
        return message
    }

    /// Reads until a message satisfies `condition`; returns the messages read, that one last.
    @discardableResult
    public func read(until what: String, timeout: Double = 30, _ condition: (IRCMessage) -> Bool) throws -> [IRCMessage] {
        let deadline = Date().addingTimeInterval(timeout)
        var messages: [IRCMessage] = []
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw LineClient.Timeout(waitingFor: what) }
            guard let message = try next(timeout: remaining) else { throw LineClient.Timeout(waitingFor: "\(what) (the server closed)") }
            messages.append(message)
            if condition(message) { return messages }
        }
    }

    /// Reads until a message with `command` (a numeric or a word) arrives.
    @discardableResult
    public func read(until command: String, timeout: Double = 30) throws -> [IRCMessage] {
        try read(until: command, timeout: timeout) { $0.command == command }
    }

    /// Reads until the server closes the connection; returns what came before.
    public func readUntilClosed(timeout: Double = 30) throws -> [IRCMessage] {
        let deadline = Date().addingTimeInterval(timeout)
        var messages: [IRCMessage] = []
        while let message = try next(timeout: max(0.01, deadline.timeIntervalSinceNow)) {
            messages.append(message)
        }
        return messages
    }

    /// Registers with NICK and USER (after `PASS` and capability negotiation when asked), and
    /// reads through the welcome to the end of the MOTD. Returns what it read.
    @discardableResult
    public func register(_ nick: String, capabilities: [String] = [], password: String? = nil) throws -> [IRCMessage] {
        if let password { send("PASS \(password)") }
        if !capabilities.isEmpty {
            send("CAP LS 302")
            send("CAP REQ :\(capabilities.joined(separator: " "))")
        }
        send("NICK \(nick)")
        send("USER \(nick) 0 * :\(nick)")
        if !capabilities.isEmpty { send("CAP END") }
        return try read(until: "end of the welcome") { $0.command == "376" || $0.command == "422" }
    }

    /// Logs in to `account` with SASL PLAIN during capability negotiation, then registers with the
    /// account's name as nick. Returns what it read through the end of the welcome.
    @discardableResult
    public func registerWithSASL(_ account: String, password: String, capabilities: [String] = []) throws -> [IRCMessage] {
        send("CAP REQ :\((["sasl"] + capabilities).joined(separator: " "))")
        send("AUTHENTICATE PLAIN")
        _ = try read(until: "AUTHENTICATE")
        send("AUTHENTICATE \(Data("\(account)\u{0}\(account)\u{0}\(password)".utf8).base64EncodedString())")
        _ = try read(until: "903")
        send("NICK \(account)")
        send("USER \(account) 0 * :\(account)")
        send("CAP END")
        return try read(until: "end of the welcome") { $0.command == "376" || $0.command == "422" }
    }

    /// JOINs `channel` and reads through its names list and, when asked, its replay batch (or, for
    /// a client without batches, until `replayCount` PRIVMSGs arrived). Returns what it read.
    @discardableResult
    public func join(_ channel: String) throws -> [IRCMessage] {
        send("JOIN \(channel)")
        return try read(until: "366 for \(channel)") { $0.command == "366" && $0.parameters.dropFirst().first == channel }
    }
}

extension IRCMessage {
    /// The text of a PRIVMSG/NOTICE (the last parameter).
    public var text: String { parameters.last ?? "" }

    /// The nick of the source (`nick!user@host`).
    public var nick: String { IRCUserHost(parsing: source ?? "").nick }
}
