import ChatProtocol
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Shared by the test targets. A deliberately plain test client: a blocking TCP socket to 127.0.0.1 that sends lines and
/// reads JSON frames with a deadline. It shares no code with the server's networking.
public final class LineClient: @unchecked Sendable {
    public struct Timeout: Error, CustomStringConvertible {
        public let waitingFor: String
        public init(waitingFor: String) { self.waitingFor = waitingFor }
        public var description: String { "timed out waiting for \(waitingFor)" }
    }

    public struct Closed: Error {}

    private let fd: Int32
    private var buffer: [UInt8] = []
    /// A WebSocket client (`init(webSocketPort:)`): lines go out as masked text messages, and
    /// text messages come in as lines.
    public private(set) var isWebSocket = false
    /// Received bytes not yet decoded into WebSocket frames.
    private var frameBytes: [UInt8] = []
    /// The status code of the server's close frame, once one came.
    public private(set) var closeCode: UInt16?
    /// Where unread bytes start in `buffer`: consuming a line is O(line), not O(buffer).
    private var readIndex = 0
    public private(set) var isClosed = false

    /// Connects to 127.0.0.1:`port`, from `sourceAddress` (another loopback address such as
    /// 127.0.0.2 plays another host) when given.
    public init(port: Int, receiveBuffer: Int? = nil, sourceAddress: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        if let sourceAddress {
            var source = sockaddr_in()
            source.sin_family = sa_family_t(AF_INET)
            source.sin_addr.s_addr = inet_addr(sourceAddress)
            let bound = withUnsafePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EADDRNOTAVAIL)
            }
        }
        if let receiveBuffer {
            var size = Int32(receiveBuffer)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
    }

    deinit {
        close(fd)
    }

    /// Connects to the web listener at 127.0.0.1:`port` and opens a WebSocket at `path`
    /// (RFC 6455's handshake, written out here): throws `HandshakeRefused` with the status line
    /// when the server answers anything but 101.
    public convenience init(webSocketPort port: Int, path: String = "/ws", subprotocol: String? = nil, origin: String? = nil,
                            receiveBuffer: Int? = nil) throws {
        try self.init(port: port, receiveBuffer: receiveBuffer)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let subprotocol { request += "Sec-WebSocket-Protocol: \(subprotocol)\r\n" }
        if let origin { request += "Origin: \(origin)\r\n" }
        sendRaw(Array((request + "\r\n").utf8))
        var head: [String] = []
        while let line = try nextLine(timeout: 30) {
            let trimmed = line.hasSuffix("\r") ? String(line.dropLast()) : line
            if trimmed.isEmpty { break }
            head.append(trimmed)
        }
        guard let status = head.first, status.hasPrefix("HTTP/1.1 101") else { throw HandshakeRefused(status: head.first ?? "(closed)") }
        guard head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") else { throw HandshakeRefused(status: "bad accept value") }
        if let subprotocol, !head.contains("Sec-WebSocket-Protocol: \(subprotocol)") { throw HandshakeRefused(status: "no subprotocol") }
        // What came after the head is already frames.
        frameBytes = Array(buffer[readIndex...])
        buffer.removeAll()
        readIndex = 0
        isWebSocket = true
        decodeFrames()
    }

    public struct HandshakeRefused: Error, CustomStringConvertible {
        public let status: String
        public var description: String { "WebSocket handshake refused: \(status)" }
    }

    /// Sends raw bytes: on a WebSocket, each line of them as one text message.
    public func send(bytes: [UInt8]) {
        guard isWebSocket else { return sendRaw(bytes) }
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for var line in lines {
            if line.last == 0x0D { line = line.dropLast() }
            sendFrame(opcode: 0x1, payload: Array(line))
        }
    }

    /// Sends one WebSocket frame, masked as a client must (unless `masked` is false, for tests of
    /// what the server does with a broken client).
    public func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true) {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        switch payload.count {
        case ..<126: frame.append(maskBit | UInt8(payload.count))
        case ...0xFFFF: frame += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: frame += [maskBit | 127] + (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        if masked {
            let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            frame += key
            frame += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        } else {
            frame += payload
        }
        sendRaw(frame)
    }

    /// Turns complete frames of `frameBytes` into lines (text), answers pings, notes a close.
    private func decodeFrames() {
        var index = 0
        while frameBytes.count - index >= 2 {
            let opcode = frameBytes[index] & 0x0F
            var length = Int(frameBytes[index + 1] & 0x7F)
            var headerLength = 2
            if length == 126 {
                guard frameBytes.count - index >= 4 else { break }
                length = Int(frameBytes[index + 2]) << 8 | Int(frameBytes[index + 3])
                headerLength = 4
            } else if length == 127 {
                guard frameBytes.count - index >= 10 else { break }
                length = (2..<10).reduce(0) { $0 << 8 | Int(frameBytes[index + $1]) }
                headerLength = 10
            }
            guard frameBytes.count - index >= headerLength + length else { break }
            let payload = Array(frameBytes[(index + headerLength)..<(index + headerLength + length)])
            index += headerLength + length
            switch opcode {
            case 0x0, 0x1, 0x2:
                buffer += payload
                if frameBytes[index - headerLength - length] & 0x80 != 0 { buffer.append(0x0A) }
            case 0x8:
                closeCode = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : 1005
                isClosed = true
            case 0x9:
                sendFrame(opcode: 0xA, payload: payload)
            default:
                break
            }
        }
        frameBytes.removeSubrange(..<index)
    }

    private func sendRaw(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Sends one line (a `\n` is added).
    public func send(_ line: String) {
        send(bytes: Array((line + "\n").utf8))
    }

    /// Sends a frame built from a dictionary literal of simple values.
    public func send(_ fields: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        send(bytes: Array(data) + [0x0A])
    }

    /// The next line, or nil once the server closed the connection.
    public func nextLine(timeout: Double = 30) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer[readIndex...].firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[readIndex..<newline], as: UTF8.self)
                readIndex = newline + 1
                if readIndex == buffer.count {
                    buffer.removeAll(keepingCapacity: true)
                    readIndex = 0
                }
                return line
            }
            if readIndex > 0 {
                buffer.removeSubrange(..<readIndex)
                readIndex = 0
            }
            if isClosed { return nil }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw Timeout(waitingFor: "a line") }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, 1) * 1000) + 1)
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 {
                isClosed = true
                continue
            }
            if isWebSocket {
                frameBytes.append(contentsOf: chunk[..<count])
                decodeFrames()
            } else {
                buffer.append(contentsOf: chunk[..<count])
            }
        }
    }

    /// The next frame, parsed.
    public func next(timeout: Double = 30) throws -> Frame {
        guard let line = try nextLine(timeout: timeout) else { throw Closed() }
        return try Frame(line)
    }

    /// Skips frames until one of `type` arrives (answering server pings on the way).
    public func next(_ type: String, timeout: Double = 30) throws -> Frame {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw Timeout(waitingFor: "a \(type) frame") }
            let frame = try next(timeout: remaining)
            if frame.type == type { return frame }
        }
    }

    /// Reads until the server closes; returns the frames read on the way.
    /// A timeout names `what` was being read, how many frames had come and the last of them.
    public func readUntilClosed(timeout: Double = 30, describing what: String? = nil) throws -> [Frame] {
        var frames: [Frame] = []
        do {
            while let line = try nextLine(timeout: timeout) {
                frames.append(try Frame(line))
            }
        } catch let timeout as Timeout {
            guard let what else { throw timeout }
            throw Timeout(waitingFor: "the end of \(what) (\(timeout.waitingFor)) after \(frames.count) frames, the last \(frames.last.map { String($0.line.prefix(200)) } ?? "none")")
        }
        return frames
    }

    /// Logs in and returns the welcome (after reading the greeting).
    @discardableResult
    public func login(_ name: String, password: String? = nil, readGreeting: Bool = true) throws -> Frame {
        if readGreeting { _ = try next("greeting") }
        var fields: [String: Any] = ["type": "login", "name": name, "id": "login"]
        if let password { fields["password"] = password }
        send(fields)
        let answer = try next()
        guard answer.type == "welcome" else { throw Unexpected(frame: answer) }
        return answer
    }

    /// Logs in with an account password and returns the answer (welcome or error), after
    /// reading the greeting unless `afterGreeting`.
    public func loginAnswer(_ name: String, accountPassword: String?, password: String? = nil, readGreeting: Bool = true) throws -> Frame {
        if readGreeting { _ = try next("greeting") }
        var fields: [String: Any] = ["type": "login", "name": name, "id": "login"]
        if let accountPassword { fields["account_password"] = accountPassword }
        if let password { fields["password"] = password }
        send(fields)
        return try answer(to: "login")
    }

    /// Sends `fields` with `id` and returns the frame that answers it (`re` == id).
    public func request(_ fields: [String: Any], id: String = UUID().uuidString, timeout: Double = 30) throws -> Frame {
        var fields = fields
        fields["id"] = id
        send(fields)
        return try answer(to: id, timeout: timeout)
    }

    /// Skips frames until the one answering request `id`.
    public func answer(to id: String, timeout: Double = 30) throws -> Frame {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw Timeout(waitingFor: "the answer to \(id)") }
            let frame = try next(timeout: remaining)
            if frame.re == .string(id) { return frame }
        }
    }

    /// Joins and returns (joined, history).
    @discardableResult
    public func join(_ room: String, extra: [String: Any] = [:]) throws -> (joined: Frame, history: Frame) {
        var fields: [String: Any] = ["type": "join", "room": room, "id": "join-\(room)"]
        fields.merge(extra) { $1 }
        send(fields)
        let joined = try next("joined")
        let history = try next("history")
        return (joined, history)
    }

    /// Says `text` and waits for its acknowledgement (the own copy with `re`).
    @discardableResult
    public func say(_ text: String, in room: String = "lobby", id: String = UUID().uuidString) throws -> Frame {
        send(["type": "say", "room": room, "text": text, "id": id])
        while true {
            let frame = try next()
            if frame.re == .string(id) {
                guard frame.type == "message" else { throw Unexpected(frame: frame) }
                return frame
            }
        }
    }

    public struct Unexpected: Error, CustomStringConvertible {
        public let frame: Frame
        public init(frame: Frame) { self.frame = frame }
        public var description: String { "unexpected frame \(frame.line)" }
    }

}

/// A server frame as the tests see it.
public struct Frame: CustomStringConvertible, Sendable {
    public let line: String
    public let value: JSONValue

    public init(_ line: String) throws {
        self.line = line
        self.value = try JSONParser.parse(line)
    }

    public var type: String? { value["type"]?.stringValue }
    public var code: String? { value["code"]?.stringValue }
    public var re: JSONValue? { value["re"] }
    public var room: String? { value["room"]?.stringValue }
    public var text: String? { value["text"]?.stringValue }
    public var from: String? { value["from"]?.stringValue }
    public var to: String? { value["to"]?.stringValue }
    public var id: Int64? { value["id"]?.integerValue }
    public var more: Bool? { if case .bool(let more)? = value["more"] { more } else { nil } }
    public var strings: (String) -> [String] {
        { key in
            guard case .array(let items)? = value[key] else { return [] }
            return items.compactMap(\.stringValue)
        }
    }
    public var members: [String] { strings("members") }

    /// The messages of a `history` frame.
    public var messages: [JSONValue] {
        guard case .array(let items)? = value["messages"] else { return [] }
        return items
    }

    public var messageIDs: [Int64] { messages.compactMap { $0["id"]?.integerValue } }

    public subscript(key: String) -> JSONValue? { value[key] }
    public var description: String { line }
}
