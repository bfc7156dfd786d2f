import ChatClient
import ChatProtocol
import Foundation
import NIOCore
import Transcripts

/// Standard input not a terminal: every input line is a message, every event an output line.
struct PipeMode {
    let host: String
    let port: Int
    let tls: ClientTLS?
    let name: String
    let room: String?
    /// Each line goes to this user as a direct message (no room is joined).
    let to: String?
    let password: String?
    let accountPassword: String?
    let json: Bool

    func run() async -> Int32 {
        var options = ChatSession.Options(host: host, port: port, name: name, password: password, accountPassword: accountPassword)
        options.tls = tls
        let session = ChatSession(options: options)
        do {
            try await session.start()
        } catch {
            complain("\(error)")
            return 1
        }
        let json = self.json
        let printing = Task {
            let output = OutputLines(json: json)
            for await event in session.events { output.print(event) }
        }
        let target: MessageTarget
        if let to {
            target = .user(to)
        } else {
            do {
                target = .room(try await joinRoom(session))
            } catch {
                complain("cannot join: \(error)")
                await session.quit()
                return 1
            }
        }

        var failures: [String] = []
        var number = 0
        let lines = AsyncStream<String> { continuation in
            Thread {
                while let line = readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }.start()
        }
        for await line in lines {
            number += 1
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            if let failure = await send(line, to: target, session: session) {
                failures.append("line \(number): \(failure)")
            }
        }
        await session.quit()
        // The session's events end once the quit is done: every event is printed before exit.
        await printing.value
        if failures.isEmpty { return 0 }
        complain("\(failures.count) message\(failures.count == 1 ? " was" : "s were") not acknowledged:")
        for failure in failures { complain("  \(failure)") }
        return 1
    }

    private func joinRoom(_ session: ChatSession) async throws -> String {
        let room = Names.canonicalRoom(room ?? session.defaultRoom) ?? session.defaultRoom
        try await session.join(room: room)
        return room
    }

    /// Sends one line and waits for its acknowledgement; a rate limit is waited out (the
    /// message was not stored, so sending it again is safe). Returns why it failed, if it did.
    private func send(_ line: String, to target: MessageTarget, session: ChatSession) async -> String? {
        var delay = 0.1
        while true {
            do {
                switch target {
                case .room(let room): try await session.say(room: room, text: line)
                case .user(let user): try await session.say(to: user, text: line)
                }
                return nil
            } catch let error as ChatClientError where error.code == .rateLimited {
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                delay = min(2, delay * 2)
            } catch {
                return "\(error)"
            }
        }
    }

    private func complain(_ message: String) {
        FileHandle.standardError.write(Data("chat-client: \(message)\n".utf8))
    }
}

/// Prints events as plain lines, messages in the transcripts' `text` format
/// (`[ts] #room <name> text`), or as protocol frames. Each event is flushed as it comes.
final class OutputLines {
    private let json: Bool
    private let output = BufferedOutput()
    private let text: TextWriter

    init(json: Bool) {
        self.json = json
        self.text = TextWriter(output: output, highlight: nil)
    }

    func print(_ event: SessionEvent) {
        switch event {
        case .connected(let name, let motd, let isReconnect):
            if !json { line(isReconnect ? "-- reconnected as \(name)" : "-- connected as \(name)\(motd.map { ": \($0)" } ?? "")") }
        case .history(_, let messages, _):
            for message in messages { print(message) }
        case .message(let message):
            print(message)
        case .presence(let presence):
            if json {
                ServerFrame.presence(room: presence.room, name: presence.name, event: presence.isJoin ? .join : .leave,
                                     reason: presence.reason, timestamp: presence.timestamp, into: &output.buffer)
            } else {
                let what = presence.isJoin ? "joined" : "left\(presence.reason.map { " (\($0))" } ?? "")"
                line("[\(Timestamp.string(presence.timestamp))] #\(presence.room) -- \(presence.name) \(what)")
            }
        case .shutdown(let reason):
            if json { ServerFrame.shutdown(reason: reason, into: &output.buffer) } else { line("-- server shutting down: \(reason)") }
        case .disconnected(let retry):
            if !json { line("-- connection lost; reconnecting in \(retry) s") }
        case .error(let error):
            if json { ServerFrame.error(error, into: &output.buffer) } else { line("-- error \(error.code.rawValue): \(error.message)") }
        }
        try? output.flush()
    }

    private func print(_ message: ChatMessage) {
        if json {
            ServerFrame.message(message, re: nil, into: &output.buffer)
        } else {
            try? text.write(message)
        }
    }

    private func line(_ text: String) {
        output.buffer.writeString(text + "\n")
    }
}
