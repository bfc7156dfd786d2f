import ChatProtocol
import NIOCore
import NIOPosix
import Synchronization

/// What a session tells its user, across reconnections.
public enum SessionEvent: Sendable, Equatable {
    /// Logged in (again, after a reconnect).
    case connected(name: String, motd: String?, isReconnect: Bool)
    /// Messages replayed on (re)joining a room, oldest first, none of them seen before.
    case history(room: String, messages: [ChatMessage], more: Bool)
    /// The live stream: every message once, in id order per room.
    case message(ChatMessage)
    case presence(ServerEvent.Presence)
    /// The server is shutting down; the session ends.
    case shutdown(reason: String)
    /// The connection dropped; a reconnect is attempted after `retryIn` seconds.
    case disconnected(retryIn: Double)
    /// An error the server sent without a request to pin it on.
    case error(ProtocolError)
}

/// A logged-in conversation that survives dropped connections: it reconnects with exponential
/// backoff, logs in again and rejoins every room with `after` = the newest id it has seen there,
/// so nothing is lost and nothing repeated. Events arrive on `events` in order.
public final class ChatSession: Sendable {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var name: String
        public var password: String?
        /// The account password, for a name that is a registered account.
        public var accountPassword: String?
        /// TLS settings, when the server speaks TLS.
        public var tls: ClientTLS?
        /// Reconnect when the connection drops (not after quit or a server shutdown).
        public var reconnects = true
        public var initialBackoff = 0.25
        public var maximumBackoff = 8.0

        public init(host: String, port: Int, name: String, password: String? = nil, accountPassword: String? = nil) {
            self.host = host
            self.port = port
            self.name = name
            self.password = password
            self.accountPassword = accountPassword
        }
    }

    private struct State {
        var connection: ChatConnection?
        /// Joined rooms and the newest message id seen in each.
        var rooms: [String: Int64] = [:]
        var isEnded = false
        var name: String
        var defaultRoom = "lobby"
        var isAccount = false
        /// Set by `register`: later logins (reconnects) use it.
        var accountPassword: String?
    }

    public let options: Options
    public let events: AsyncStream<SessionEvent>
    private let continuation: AsyncStream<SessionEvent>.Continuation
    private let state: Mutex<State>
    private let group: any EventLoopGroup

    public init(options: Options, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.options = options
        self.group = group
        self.state = Mutex(State(name: options.name))
        (events, continuation) = AsyncStream.makeStream(of: SessionEvent.self, bufferingPolicy: .unbounded)
    }

    /// The name as the server keeps it.
    public var name: String { state.withLock { $0.name } }

    /// Whether the session is logged in to an account (or registered its name).
    public var isAccount: Bool { state.withLock { $0.isAccount } }

    /// The room the server suggests joining first (from its welcome).
    public var defaultRoom: String { state.withLock { $0.defaultRoom } }

    /// Whether the server asked for a password in its greeting (after `start`).
    public private(set) var passwordRequired: Bool {
        get { passwordFlag.load(ordering: .relaxed) }
        set { passwordFlag.store(newValue, ordering: .relaxed) }
    }
    private let passwordFlag = Atomic(false)

    /// Connects and logs in. Errors here (refused, wrong password, name taken) are final for
    /// this attempt, so the caller can ask the user.
    public func start() async throws {
        let connection = try await ChatConnection.connect(host: options.host, port: options.port, group: group, tls: options.tls)
        passwordRequired = connection.passwordRequired
        do {
            try await begin(on: connection, isReconnect: false)
        } catch {
            connection.close()
            throw error
        }
    }

    /// Connects only to read the greeting: does the server want a password?
    public static func probe(host: String, port: Int, tls: ClientTLS? = nil,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Bool {
        let connection = try await ChatConnection.connect(host: host, port: port, group: group, tls: tls)
        defer { connection.close() }
        return connection.passwordRequired
    }

    private func begin(on connection: ChatConnection, isReconnect: Bool) async throws {
        let accountPassword = state.withLock { $0.accountPassword } ?? options.accountPassword
        let welcome = try await connection.login(name: options.name, password: options.password, accountPassword: accountPassword)
        let rooms = state.withLock { state in
            state.connection = connection
            state.name = welcome.name
            state.defaultRoom = welcome.defaultRoom
            state.isAccount = welcome.isAccount
            return state.rooms
        }
        continuation.yield(.connected(name: welcome.name, motd: welcome.motd, isReconnect: isReconnect))
        Task { await self.pump(connection) }
        for (room, lastSeen) in rooms.sorted(by: { $0.key < $1.key }) {
            _ = try await connection.join(room: room, after: lastSeen)
        }
    }

    /// Forwards a connection's events until it closes, then reconnects if it should.
    private func pump(_ connection: ChatConnection) async {
        var shutdownReason: String?
        for await event in connection.events {
            switch event {
            case .message(let message, _):
                if markSeen(message) { continuation.yield(.message(message)) }
            case .history(nil, let room, let messages, let more):
                continuation.yield(.history(room: room, messages: messages.filter(markSeen), more: more))
            case .presence(let presence):
                continuation.yield(.presence(presence))
            case .shutdown(let reason):
                shutdownReason = reason
            case .error(let error):
                continuation.yield(.error(error))
            default:
                break
            }
        }
        let ended = state.withLock { state in
            if state.connection === connection { state.connection = nil }
            return state.isEnded
        }
        if let shutdownReason {
            end()
            continuation.yield(.shutdown(reason: shutdownReason))
            continuation.finish()
            return
        }
        guard !ended, options.reconnects else {
            end()
            continuation.finish()
            return
        }
        await reconnect()
    }

    private func reconnect() async {
        var delay = options.initialBackoff
        while !state.withLock({ $0.isEnded }) {
            continuation.yield(.disconnected(retryIn: delay))
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            do {
                let connection = try await ChatConnection.connect(host: options.host, port: options.port, group: group, tls: options.tls)
                do {
                    try await begin(on: connection, isReconnect: true)
                    return
                } catch let error as ChatClientError
                    where [.badPassword, .invalidName, .authFailed, .accountRequired].contains(error.code) {
                    connection.close()
                    end()
                    continuation.yield(.error(ProtocolError(error.code ?? .internal, error.description)))
                    continuation.finish()
                    return
                } catch {
                    // name_taken while the server has not yet noticed the old connection: retry.
                    connection.close()
                }
            } catch {}
            delay = min(options.maximumBackoff, delay * 2)
        }
    }

    /// Records a message as seen; false when it was seen before (a replay overlap).
    private func markSeen(_ message: ChatMessage) -> Bool {
        state.withLock { state in
            guard let lastSeen = state.rooms[message.room] else { return true }
            guard message.id > lastSeen else { return false }
            state.rooms[message.room] = message.id
            return true
        }
    }

    private var connection: ChatConnection {
        get throws {
            guard let connection = state.withLock({ $0.connection }) else { throw ChatClientError.connectionClosed }
            return connection
        }
    }

    /// Joins a room (replaying what this user missed there, or the recent history).
    @discardableResult
    public func join(room requested: String, history: Int? = nil) async throws -> [String] {
        let room = Names.canonicalRoom(requested) ?? requested
        // Registered first, so the replay that the pump forwards is counted as seen.
        let lastSeen = state.withLock { state -> Int64? in
            defer { if state.rooms[room] == nil { state.rooms[room] = 0 } }
            return state.rooms[room]
        }
        do {
            let joined = try await connection.join(room: room, after: lastSeen == 0 ? nil : lastSeen, history: lastSeen == nil ? history : nil)
            return joined.members
        } catch {
            if lastSeen == nil { _ = state.withLock { $0.rooms.removeValue(forKey: room) } }
            throw error
        }
    }

    public func leave(room requested: String) async throws {
        let room = Names.canonicalRoom(requested) ?? requested
        try await connection.leave(room: room)
        _ = state.withLock { $0.rooms.removeValue(forKey: room) }
    }

    /// Says something and waits for the acknowledgement.
    @discardableResult
    public func say(room: String, text: String, kind: MessageKind = .text) async throws -> ChatMessage {
        try await connection.say(room: room, text: text, kind: kind)
    }

    /// Says something without waiting; `acknowledged` tells how it went.
    public func send(room: String, text: String, kind: MessageKind = .text, acknowledged: @escaping @Sendable (Result<ChatMessage, ChatClientError>) -> Void) {
        guard let connection = state.withLock({ $0.connection }) else {
            acknowledged(.failure(.connectionClosed))
            return
        }
        connection.send(room: room, text: text, kind: kind, acknowledged: acknowledged)
    }

    /// Makes this guest name an account; reconnects log in with the password from then on.
    public func register(password: String) async throws {
        try await connection.register(password: password)
        state.withLock { state in
            state.isAccount = true
            state.accountPassword = password
        }
    }

    /// Says something to one user and waits for the acknowledgement.
    @discardableResult
    public func say(to user: String, text: String, kind: MessageKind = .text) async throws -> ChatMessage {
        try await connection.say(to: user, text: text, kind: kind)
    }

    /// A direct message without waiting; `acknowledged` tells how it went.
    public func send(to user: String, text: String, kind: MessageKind = .text, acknowledged: @escaping @Sendable (Result<ChatMessage, ChatClientError>) -> Void) {
        guard let connection = state.withLock({ $0.connection }) else {
            acknowledged(.failure(.connectionClosed))
            return
        }
        connection.send(to: user, text: text, kind: kind, acknowledged: acknowledged)
    }

    public func history(with user: String, before: Int64?, limit: Int) async throws -> (messages: [ChatMessage], more: Bool) {
        try await connection.history(with: user, before: before, limit: limit)
    }

    public func conversations() async throws -> [ServerFrame.ConversationSummary] {
        try await connection.conversations()
    }

    public func search(_ query: String, room: String? = nil, from: String? = nil, with: String? = nil, limit: Int? = nil) async throws
        -> (messages: [ChatMessage], more: Bool) {
        try await connection.search(query, room: room, from: from, with: with, limit: limit)
    }

    public func history(room: String, before: Int64?, limit: Int) async throws -> (messages: [ChatMessage], more: Bool) {
        try await connection.history(room: room, before: before, limit: limit)
    }

    public func rooms() async throws -> [ServerFrame.RoomSummary] {
        try await connection.rooms()
    }

    public func who(room: String) async throws -> [String] {
        try await connection.who(room: room)
    }

    /// The rooms joined, by name.
    public var joinedRooms: [String] {
        state.withLock { $0.rooms.keys.sorted() }
    }

    /// Leaves cleanly: quit to the server, no reconnect.
    public func quit(reason: String? = nil) async {
        let connection = state.withLock { state in
            state.isEnded = true
            return state.connection
        }
        await connection?.quit(reason: reason)
    }

    private func end() {
        state.withLock { $0.isEnded = true }
    }
}
