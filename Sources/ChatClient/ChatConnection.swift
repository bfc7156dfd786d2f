import ChatProtocol
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Why a client operation failed, in words a person can act on.
public enum ChatClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing listens there, or the network refused.
    case cannotConnect(host: String, port: Int, reason: String)
    /// The connection closed before the answer came.
    case connectionClosed
    /// The server refused the request.
    case refused(ProtocolError)
    /// No answer in time.
    case timedOut(String)

    public var description: String {
        switch self {
        case .cannotConnect(let host, let port, let reason): "cannot connect to \(host):\(port): \(reason)"
        case .connectionClosed: "the connection to the server closed"
        case .refused(let error): error.message
        case .timedOut(let what): "no answer from the server (\(what))"
        }
    }

    /// The server's error code, when the server refused.
    public var code: ErrorCode? {
        if case .refused(let error) = self { error.code } else { nil }
    }
}

/// How a client speaks TLS: by default the server's certificate must be trusted by the system
/// (or by `trustedCertificates`) and name the host; `verifiesCertificate` false accepts any
/// certificate (`chat-client --insecure`, for self-signed test setups).
public struct ClientTLS: Sendable {
    public var verifiesCertificate: Bool
    /// A PEM file of certificates to trust besides the system's.
    public var trustedCertificates: String?

    public init(verifiesCertificate: Bool = true, trustedCertificates: String? = nil) {
        self.verifiesCertificate = verifiesCertificate
        self.trustedCertificates = trustedCertificates
    }

    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if !verifiesCertificate { configuration.certificateVerification = .none }
        if let trustedCertificates {
            configuration.additionalTrustRoots = [.file(trustedCertificates)]
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// One connection speaking the native protocol: requests are matched to their answers by `id`,
/// a `join` completes with its `history`, server pings are answered, and everything else
/// (messages, the sender's own acknowledgements included, a join's replayed `history`, presence,
/// shutdown) flows to `events`, in the order the server sent it.
public final class ChatConnection: Sendable {
    public let server: String
    public let passwordRequired: Bool
    /// Unsolicited frames, in arrival order; finishes when the connection closes.
    public let events: AsyncStream<ServerEvent>

    private let channel: any Channel
    private let core: ConnectionCore

    private init(channel: any Channel, core: ConnectionCore, server: String, passwordRequired: Bool) {
        self.channel = channel
        self.core = core
        self.server = server
        self.passwordRequired = passwordRequired
        self.events = core.events
    }

    /// Connects (over TLS with `tls`) and reads the greeting.
    public static func connect(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               timeout: TimeAmount = .seconds(10), tls: ClientTLS? = nil) async throws -> ChatConnection {
        let core = ConnectionCore()
        let channel: any Channel
        do {
            let sslContext = try tls.map { try $0.makeContext() }
            channel = try await ClientBootstrap(group: group)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            // SNI and the name check take a host name; an IP address is checked against the certificate's IP entries.
                            let name = host.first?.isLetter == true ? host : nil
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: name))
                        }
                        try channel.pipeline.syncOperations.addHandler(LineHandler(core: core))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw ChatClientError.cannotConnect(host: host, port: port, reason: describe(error))
        }
        core.attach(channel)
        let greeting = try await core.waitForGreeting(timeout: timeout, on: channel.eventLoop)
        guard case .greeting(let server, let passwordRequired) = greeting else { throw ChatClientError.connectionClosed }
        return ChatConnection(channel: channel, core: core, server: server, passwordRequired: passwordRequired)
    }

    private static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("refused") || text.contains("ECONNREFUSED") { return "connection refused (is the server running?)" }
        return text
    }

    /// Logs in (to an account with `accountPassword`); returns the name as the server keeps it,
    /// the default room, the MOTD and whether the name is an account.
    public func login(name: String, password: String?, accountPassword: String? = nil) async throws
        -> (name: String, defaultRoom: String, motd: String?, isAccount: Bool) {
        var fields: [String: JSONValue] = ["type": .string("login"), "name": .string(name)]
        if let password { fields["password"] = .string(password) }
        if let accountPassword { fields["account_password"] = .string(accountPassword) }
        let answer = try await core.request(fields)
        guard case .welcome(_, let name, let defaultRoom, let motd, let isAccount) = answer.last else { throw ChatClientError.connectionClosed }
        return (name, defaultRoom, motd, isAccount)
    }

    /// Makes the logged-in guest name an account with this password.
    public func register(password: String) async throws {
        guard case .registered = try await core.request(["type": .string("register"), "password": .string(password)]).last else {
            throw ChatClientError.connectionClosed
        }
    }

    /// Joins a room; returns its members and the replayed history (oldest first).
    public func join(room: String, after: Int64? = nil, history: Int? = nil) async throws -> (members: [String], history: [ChatMessage], more: Bool) {
        var fields: [String: JSONValue] = ["type": .string("join"), "room": .string(room)]
        if let after { fields["after"] = .integer(after) }
        if let history { fields["history"] = .integer(Int64(history)) }
        let frames = try await core.request(fields, completesWithHistoryOf: room)
        var members: [String] = []
        for frame in frames {
            if case .joined(_, _, let list) = frame { members = list }
            if case .history(_, _, let messages, let more) = frame { return (members, messages, more) }
        }
        throw ChatClientError.connectionClosed
    }

    public func leave(room: String) async throws {
        _ = try await core.request(["type": .string("leave"), "room": .string(room)])
    }

    /// Says something in a room; returns once the server acknowledged it (it is then stored).
    @discardableResult
    public func say(room: String, text: String, kind: MessageKind = .text) async throws -> ChatMessage {
        try await say(.room(room), text: text, kind: kind)
    }

    /// Says something to one user; returns once the server acknowledged it (it is then stored).
    @discardableResult
    public func say(to user: String, text: String, kind: MessageKind = .text) async throws -> ChatMessage {
        try await say(.user(user), text: text, kind: kind)
    }

    /// Sends a `say` to a room without waiting; `acknowledged` runs with the stored message or the error.
    public func send(room: String, text: String, kind: MessageKind = .text, acknowledged: @escaping @Sendable (Result<ChatMessage, ChatClientError>) -> Void) {
        send(.room(room), text: text, kind: kind, acknowledged: acknowledged)
    }

    /// Sends a direct message without waiting; `acknowledged` runs with the stored message or the error.
    public func send(to user: String, text: String, kind: MessageKind = .text, acknowledged: @escaping @Sendable (Result<ChatMessage, ChatClientError>) -> Void) {
        send(.user(user), text: text, kind: kind, acknowledged: acknowledged)
    }

    private func say(_ target: MessageTarget, text: String, kind: MessageKind) async throws -> ChatMessage {
        guard case .message(let message, _) = try await core.request(Self.sayFields(target, text: text, kind: kind)).last else {
            throw ChatClientError.connectionClosed
        }
        return message
    }

    private func send(_ target: MessageTarget, text: String, kind: MessageKind, acknowledged: @escaping @Sendable (Result<ChatMessage, ChatClientError>) -> Void) {
        core.send(Self.sayFields(target, text: text, kind: kind)) { result in
            acknowledged(result.flatMap { frames in
                if case .message(let message, _)? = frames.last { return .success(message) }
                return .failure(.connectionClosed)
            })
        }
    }

    private static func sayFields(_ target: MessageTarget, text: String, kind: MessageKind) -> [String: JSONValue] {
        var fields: [String: JSONValue] = ["type": .string("say"), "text": .string(text)]
        switch target {
        case .room(let room): fields["room"] = .string(room)
        case .user(let user): fields["to"] = .string(user)
        }
        if kind == .action { fields["kind"] = .string("action") }
        return fields
    }

    /// A page of the direct messages with `user` (accounts only).
    public func history(with user: String, before: Int64? = nil, after: Int64? = nil, limit: Int? = nil) async throws -> (messages: [ChatMessage], more: Bool) {
        var fields: [String: JSONValue] = ["type": .string("history"), "with": .string(user)]
        if let before { fields["before"] = .integer(before) }
        if let after { fields["after"] = .integer(after) }
        if let limit { fields["limit"] = .integer(Int64(limit)) }
        guard case .conversationHistory(_, _, let messages, let more) = try await core.request(fields).last else {
            throw ChatClientError.connectionClosed
        }
        return (messages, more)
    }

    /// The people this account has direct messages with, newest first.
    public func conversations() async throws -> [ServerFrame.ConversationSummary] {
        guard case .conversations(_, let list) = try await core.request(["type": .string("conversations")]).last else {
            throw ChatClientError.connectionClosed
        }
        return list
    }

    /// Full-text search (FTS5 syntax), newest first.
    public func search(_ query: String, room: String? = nil, from: String? = nil, with: String? = nil, limit: Int? = nil) async throws
        -> (messages: [ChatMessage], more: Bool) {
        var fields: [String: JSONValue] = ["type": .string("search"), "query": .string(query)]
        if let room { fields["room"] = .string(room) }
        if let from { fields["from"] = .string(from) }
        if let with { fields["with"] = .string(with) }
        if let limit { fields["limit"] = .integer(Int64(limit)) }
        guard case .search(_, let messages, let more) = try await core.request(fields).last else { throw ChatClientError.connectionClosed }
        return (messages, more)
    }

    /// A page of history: the newest `limit` before an id, or the oldest after one.
    public func history(room: String, before: Int64? = nil, after: Int64? = nil, limit: Int? = nil) async throws -> (messages: [ChatMessage], more: Bool) {
        var fields: [String: JSONValue] = ["type": .string("history"), "room": .string(room)]
        if let before { fields["before"] = .integer(before) }
        if let after { fields["after"] = .integer(after) }
        if let limit { fields["limit"] = .integer(Int64(limit)) }
        guard case .history(_, _, let messages, let more) = try await core.request(fields).last else { throw ChatClientError.connectionClosed }
        return (messages, more)
    }

    public func rooms() async throws -> [ServerFrame.RoomSummary] {
        guard case .rooms(_, let rooms) = try await core.request(["type": .string("rooms")]).last else { throw ChatClientError.connectionClosed }
        return rooms
    }

    public func who(room: String) async throws -> [String] {
        guard case .who(_, _, let members) = try await core.request(["type": .string("who"), "room": .string(room)]).last else {
            throw ChatClientError.connectionClosed
        }
        return members
    }

    /// Round trip to the server.
    public func ping() async throws {
        _ = try await core.request(["type": .string("ping")])
    }

    /// Says goodbye (the server answers `bye` and closes).
    public func quit(reason: String? = nil) async {
        var fields: [String: JSONValue] = ["type": .string("quit")]
        if let reason { fields["reason"] = .string(reason) }
        core.write(fields)
        try? await channel.closeFuture.get()
    }

    /// Closes at once.
    public func close() {
        channel.close(promise: nil)
    }

    /// Completes when the connection has closed.
    public func waitUntilClosed() async {
        try? await channel.closeFuture.get()
    }
}

/// The connection's shared state: pending requests, the event stream. Touched from the
/// channel's event loop and from callers' tasks, hence the lock.
final class ConnectionCore: Sendable {
    typealias Completion = @Sendable (Result<[ServerEvent], ChatClientError>) -> Void

    private struct Pending {
        var completion: Completion
        /// A join waits for its `history` after `joined`.
        var historyRoom: String?
        var frames: [ServerEvent] = []
    }

    private struct State {
        var channel: (any Channel)?
        var nextID: Int64 = 1
        var pending: [Int64: Pending] = [:]
        var greeting: ServerEvent?
        var greetingWaiter: CheckedContinuation<ServerEvent, any Error>?
        var isClosed = false
    }

    let events: AsyncStream<ServerEvent>
    private let continuation: AsyncStream<ServerEvent>.Continuation
    private let state = Mutex(State())

    init() {
        (events, continuation) = AsyncStream.makeStream(of: ServerEvent.self, bufferingPolicy: .unbounded)
    }

    func attach(_ channel: any Channel) {
        state.withLock { $0.channel = channel }
    }

    func waitForGreeting(timeout: TimeAmount, on loop: any EventLoop) async throws -> ServerEvent {
        let timer = loop.scheduleTask(in: timeout) { [self] in
            let waiter = state.withLock { state -> CheckedContinuation<ServerEvent, any Error>? in
                defer { state.greetingWaiter = nil }
                return state.greetingWaiter
            }
            waiter?.resume(throwing: ChatClientError.timedOut("greeting"))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let ready: Result<ServerEvent, any Error>? = state.withLock { state in
                if let greeting = state.greeting { return .success(greeting) }
                if state.isClosed { return .failure(ChatClientError.connectionClosed) }
                state.greetingWaiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    func request(_ fields: [String: JSONValue], completesWithHistoryOf room: String? = nil) async throws -> [ServerEvent] {
        try await withCheckedThrowingContinuation { continuation in
            send(fields, historyRoom: room) { result in continuation.resume(with: result.mapError { $0 as any Error }) }
        }
    }

    func send(_ fields: [String: JSONValue], historyRoom: String? = nil, completion: @escaping Completion) {
        let assigned: (Int64, any Channel)? = state.withLock { state in
            guard !state.isClosed, let channel = state.channel else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = Pending(completion: completion, historyRoom: historyRoom.flatMap(Names.canonicalRoom))
            return (id, channel)
        }
        guard let (id, channel) = assigned else {
            completion(.failure(.connectionClosed))
            return
        }
        var frame = fields
        frame["id"] = .integer(id)
        write(frame, to: channel)
    }

    func write(_ fields: [String: JSONValue]) {
        guard let channel = state.withLock({ $0.channel }) else { return }
        write(fields, to: channel)
    }

    private func write(_ fields: [String: JSONValue], to channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: 128)
        buffer.writeJSON(.object(fields))
        buffer.writeStaticString("\n")
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// A frame from the server (on the channel's event loop).
    func receive(_ event: ServerEvent) {
        if case .greeting = event {
            let waiter = state.withLock { state -> CheckedContinuation<ServerEvent, any Error>? in
                state.greeting = event
                defer { state.greetingWaiter = nil }
                return state.greetingWaiter
            }
            waiter?.resume(returning: event)
            return
        }
        if case .ping = event {
            write(["type": .string("pong")])
            return
        }
        if case .message = event { continuation.yield(event) }
        // The answer to a request?
        let finished: (Completion, Result<[ServerEvent], ChatClientError>)? = state.withLock { state in
            if case .integer(let id)? = event.re, var pending = state.pending[id] {
                if case .error(let error) = event {
                    state.pending[id] = nil
                    return (pending.completion, .failure(.refused(error)))
                }
                pending.frames.append(event)
                if case .joined = event, pending.historyRoom != nil {
                    state.pending[id] = pending
                    return nil
                }
                state.pending[id] = nil
                return (pending.completion, .success(pending.frames))
            }
            if case .history(nil, let room, _, _) = event,
               let (id, pending) = state.pending.first(where: { $0.value.historyRoom == room && !$0.value.frames.isEmpty }) {
                state.pending[id] = nil
                return (pending.completion, .success(pending.frames + [event]))
            }
            return nil
        }
        if let (completion, result) = finished {
            completion(result)
            // A join's replay also goes to `events`, so it keeps its place before the live messages.
            if case .history(nil, _, _, _) = event { continuation.yield(event) }
            return
        }
        if case .message = event { return }
        continuation.yield(event)
    }

    /// The connection closed: every waiting request fails, the event stream ends.
    func closed() {
        let (pending, waiter) = state.withLock { state -> ([Pending], CheckedContinuation<ServerEvent, any Error>?) in
            state.isClosed = true
            defer {
                state.pending = [:]
                state.greetingWaiter = nil
            }
            return (Array(state.pending.values), state.greetingWaiter)
        }
        waiter?.resume(throwing: ChatClientError.connectionClosed)
        for request in pending { request.completion(.failure(.connectionClosed)) }
        continuation.finish()
    }
}

/// Splits the byte stream into lines and hands each decoded frame to the core.
private final class LineHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let core: ConnectionCore
    private var pending = ByteBuffer()

    init(core: ConnectionCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending.writeBuffer(&buffer)
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending.readString(length: newline - pending.readerIndex) ?? ""
            pending.moveReaderIndex(forwardBy: 1)
            if let event = ServerEvent.decode(line) { core.receive(event) }
        }
        pending.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
