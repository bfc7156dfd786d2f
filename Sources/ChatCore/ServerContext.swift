import ChatConfiguration
import ChatProtocol
import Logging
import NIOCore
import NIOPosix
import Storage
import Synchronization

/// What a reload changes without dropping anyone: read per login, so it is a small lock.
public struct ReloadableSettings: Sendable, Equatable {
    public var password: String?
    public var motd: String?

    public init(_ configuration: ServerConfiguration) {
        password = configuration.server.password
        motd = configuration.server.motd
    }
}

/// Everything the sessions and rooms of one server share.
package final class ServerContext: Sendable {
    /// The configuration the server started with. What SIGHUP may change lives in `reloadable`.
    package let configuration: ServerConfiguration
    /// The settings a reload (SIGHUP) replaces while connections stay up.
    package let reloadable: Mutex<ReloadableSettings>
    package let database: any ChatStore
    package let logger: Logger
    package let loops: [any EventLoop]
    package let threadPool: NIOThreadPool
    package let registry = SessionRegistry()
    package let passwordChecker = PasswordChecker()
    package let metrics: ServerMetrics
    package let loginThrottle = LoginThrottle()
    package let admission: Admission
    /// New user names per IP address, and rooms created per user, in the last hour.
    package let newNames = WindowedCounter(window: .hours(1))
    package let roomCreations = WindowedCounter(window: .hours(1))
    /// Rooms that exist (not counting direct conversations), against `rooms.maxRooms`.
    package let roomCount: Atomic<Int>
    /// Open connections by transport, as the faces count them (`chat_connections`; the registry
    /// counts all, and those no face counted are native TCP).
    package let transports = TransportCounts()
    package let catalog = RoomCatalog()
    package let allocator = ByteBufferAllocator()
    nonisolated(unsafe) package private(set) var shards: [RoomShard] = []
    nonisolated(unsafe) package private(set) var dispatcher: MessageDispatcher!
    /// The store shared with other nodes (PostgreSQL), or nil when this process is alone.
    package let sharedStore: (any SharedChatStore)?
    /// On a shared store: the authors of this node's messages, by id, from their commit until
    /// the commit feed delivers them (every node's messages reach the rooms through the feed).
    package let localAuthors = Mutex<[Int64: RoomEvent.Author]>([:])
    /// On a shared store: who is in which room on the other nodes, by room and user key, with
    /// the nodes each is on (a user may be in a room on several).
    package let remotePresence = Mutex<[String: [String: RemoteMember]]>([:])
    package struct RemoteMember {
        package var name: String
        package var nodes: Set<Int>
    }
    /// The newest message id when the server started: the feed follows from there.
    package let initialWatermark: Int64
    /// Per event loop, what rooms send its members.
    package let outboxes: [LoopOutbox]
    private let configuredRooms: Set<String>

    package init(configuration: ServerConfiguration, database: any ChatStore, logger: Logger, group: MultiThreadedEventLoopGroup, threadPool: NIOThreadPool) throws {
        self.configuration = configuration
        self.reloadable = Mutex(ReloadableSettings(configuration))
        self.admission = Admission(limits: configuration.limits)
        let metrics = ServerMetrics(enabled: configuration.metrics.enabled)
        self.metrics = metrics
        if configuration.metrics.enabled {
            database.observeCommits { jobs, seconds in
                metrics.commitBatchSize.record(jobs)
                metrics.commitLatency.recordNanoseconds(Int64(seconds * 1e9))
            }
        }
        self.roomCount = Atomic(0)
        self.database = database
        self.sharedStore = database as? any SharedChatStore
        self.logger = logger
        let loops = Array(group.makeIterator())
        self.loops = loops
        self.threadPool = threadPool
        self.outboxes = loops.map { LoopOutbox(loop: $0, deliveries: metrics.deliveries) }
        self.configuredRooms = Set(configuration.rooms.preset + [configuration.rooms.defaultRoom])
        // Written once here, before any other thread can see this object.
        let watermark = try database.newestMessageID()
        self.initialWatermark = watermark
        shards = loops.enumerated().map { RoomShard(index: $0.offset, eventLoop: $0.element, server: self, watermark: watermark) }
        let dispatcher = MessageDispatcher(server: self, shardCount: loops.count)
        self.dispatcher = dispatcher
        for (index, outbox) in outboxes.enumerated() {
            outbox.bringInCommitted = { dispatcher.deliverWaiting(toShard: index) }
        }
    }

    /// Creates the configured rooms, so they exist (and list) before anyone joins them.
    package func createConfiguredRooms() async throws {
        for name in configuredRooms.sorted() {
            catalog.insert(try await database.ensureRoom(named: name))
        }
        roomCount.store(try database.roomCount(), ordering: .relaxed)
    }

    package func shardIndex(forRoom name: String) -> Int {
        // FNV-1a: stable across runs, cheap, spreads short names well.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(shards.count))
    }

    package func shard(forRoom name: String) -> RoomShard {
        shards[shardIndex(forRoom: name)]
    }

    package func loopIndex(of loop: any EventLoop) -> Int {
        loops.firstIndex { $0 === loop } ?? 0
    }

    /// The room a join may enter: created on first join when `rooms.autoCreate` (within
    /// `rooms.maxRooms` in all and `rooms.createPerUserPerHour` for `userKey`), else only the
    /// configured ones. Completes on `eventLoop`.
    package func resolveRoom(_ name: String, for userKey: String, on eventLoop: any EventLoop,
                     _ completion: @escaping @Sendable (Result<RoomRecord, ProtocolError>) -> Void) {
        guard configuration.rooms.autoCreate || configuredRooms.contains(name) else {
            eventLoop.run { completion(.failure(ProtocolError(.noSuchRoom, "there is no room #\(name) (rooms are not created on demand here)"))) }
            return
        }
        lookUpRoom(name, on: eventLoop) { [self] found in
            guard case .failure(let error) = found, error.code == .noSuchRoom else { return completion(found) }
            let rooms = configuration.rooms
            guard roomCount.load(ordering: .relaxed) < rooms.maxRooms else {
                return completion(.failure(ProtocolError(.noSuchRoom,
                    "there is no room #\(name), and this server has its maximum of \(rooms.maxRooms) rooms: join an existing one")))
            }
            guard roomCreations.take(userKey, limit: rooms.createPerUserPerHour) else {
                return completion(.failure(ProtocolError(.rateLimited,
                    "you created \(rooms.createPerUserPerHour) rooms in the last hour; join an existing one or wait")))
            }
            createRoom(name, on: eventLoop, completion)
        }
    }

    private func createRoom(_ name: String, on eventLoop: any EventLoop, _ completion: @escaping @Sendable (Result<RoomRecord, ProtocolError>) -> Void) {
        let catalog = self.catalog
        let logger = self.logger
        database.ensureRoom(named: name) { [self] result in
            eventLoop.execute { [self] in
                switch result {
                case .success(let record):
                    if catalog.record(named: name) == nil { roomCount.wrappingAdd(1, ordering: .relaxed) }
                    catalog.insert(record)
                    completion(.success(record))
                case .failure(let error):
                    logger.error("creating room #\(name) failed: \(error)")
                    completion(.failure(ProtocolError(.internal, "room #\(name) could not be created")))
                }
            }
        }
    }

    /// An existing room (for `who`): known to the database, or configured.
    package func lookUpRoom(_ name: String, on eventLoop: any EventLoop, _ completion: @escaping @Sendable (Result<RoomRecord, ProtocolError>) -> Void) {
        if let record = catalog.record(named: name) {
            eventLoop.run { completion(.success(record)) }
            return
        }
        let database = self.database
        let catalog = self.catalog
        threadPool.runIfActive(eventLoop: eventLoop) { try database.room(named: name) }.whenComplete { result in
            switch result {
            case .success(let record?):
                catalog.insert(record)
                completion(.success(record))
            case .success(nil):
                completion(.failure(ProtocolError(.noSuchRoom, "there is no room #\(name)")))
            case .failure:
                completion(.failure(ProtocolError(.internal, "room #\(name) could not be looked up")))
            }
        }
    }

    /// A message this node committed: to its room's members now, or, on a shared store, when the
    /// commit feed brings it (in the one id order of every node's messages).
    package func committed(_ message: ChatMessage, author: RoomEvent.Author) {
        if sharedStore != nil {
            localAuthors.withLock { $0[message.id] = author }
        } else {
            route(message, author: author)
        }
    }

    /// A committed message to where it goes: a direct one to the sessions of its two users,
    /// a room's to the room's shard.
    private func route(_ message: ChatMessage, author: RoomEvent.Author) {
        if message.to != nil {
            deliverDirect(message, author: author)
        } else {
            dispatcher.dispatch(CommittedDelivery(message: message, author: author), toShard: shardIndex(forRoom: message.room))
        }
    }

    /// Messages every node committed, in id order, from the shared store's feed: this node's
    /// own go out with their authors (the acknowledgement), the others' as anyone's.
    package func deliverFromFeed(_ messages: [FeedMessage]) {
        let authors = localAuthors.withLock { authors in messages.map { authors.removeValue(forKey: $0.message.id) } }
        for (fed, local) in zip(messages, authors) {
            route(fed.message, author: local ?? RoomEvent.Author(sessionID: 0, re: nil, isAccount: fed.fromAccount))
        }
    }

    // MARK: Presence across nodes

    /// A user's first arrival in a room on this node, or last departure: the other nodes hear of it.
    package func announcePresence(room: String, name: String, joined: Bool, isQuit: Bool = false, reason: String? = nil) {
        sharedStore?.announcePresence(PresenceChange(room: room, name: name, joined: joined, isQuit: isQuit, reason: reason))
    }

    /// Whether the user is in the room on another node.
    package func isPresentElsewhere(room: String, userKey: String) -> Bool {
        guard sharedStore != nil else { return false }
        return remotePresence.withLock { $0[room]?[userKey] != nil }
    }

    /// The room's members on other nodes (key and name), but those in `local`.
    package func remoteMembers(of room: String, excluding local: [String: Int]) -> [(key: String, name: String)] {
        guard sharedStore != nil else { return [] }
        return remotePresence.withLock { presence in
            (presence[room] ?? [:]).filter { local[$0.key] == nil }.map { ($0.key, $0.value.name) }.sorted { $0.name < $1.name }
        }
    }

    /// What the presence feed says about the other nodes. A user who appears in a room (on its
    /// first node) or vanishes from it (from its last) is told to the room's members here,
    /// unless the user is in the room here too.
    package func applyRemotePresence(_ event: PresenceEvent) {
        switch event {
        case .snapshot(let changes):
            var presence: [String: [String: RemoteMember]] = [:]
            for change in changes {
                presence[change.room, default: [:]][Names.userKey(change.name), default: RemoteMember(name: change.name, nodes: [])]
                    .nodes.insert(change.node)
            }
            remotePresence.withLock { $0 = presence }
        case .change(let change):
            let key = Names.userKey(change.name)
            let isTransition = remotePresence.withLock { presence -> Bool in
                var members = presence[change.room] ?? [:]
                let wasPresent = members[key] != nil
                if change.joined {
                    members[key, default: RemoteMember(name: change.name, nodes: [])].nodes.insert(change.node)
                } else if var member = members[key] {
                    member.nodes.remove(change.node)
                    members[key] = member.nodes.isEmpty ? nil : member
                }
                presence[change.room] = members.isEmpty ? nil : members
                return wasPresent != (members[key] != nil)
            }
            guard isTransition else { return }
            let shard = shard(forRoom: change.room)
            shard.eventLoop.execute { shard.remotePresence(change) }
        }
    }

    /// Returns once the feed has delivered this node's committed messages (at most 5 s: a
    /// feed cut off from the database cannot deliver them, and shutdown goes on).
    package func feedDelivered() async {
        guard sharedStore != nil else { return }
        let deadline = ContinuousClock.now + .seconds(5)
        while !localAuthors.withLock(\.isEmpty), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Writes a committed direct message to every live session of its sender and recipient:
    /// encoded once per wire format among them, the sender's session that asked getting its
    /// acknowledgement. Called on the
    /// writer's thread in commit order, and each session's loop runs its posts in that order.
    package func deliverDirect(_ message: ChatMessage, author: RoomEvent.Author) {
        if configuration.log.messages {
            logger.info("@\(message.to ?? "?") <\(message.from)>")
        }
        deliverDirect(.message(message, author: author), between: [message.from, message.to ?? message.from])
    }

    /// A direct event (a message, or tags) to every live session of the users `names`.
    package func deliverDirect(_ event: RoomEvent, between names: [String]) {
        let sessions = registry.sessions(holding: names)
        let formats = Set(sessions.map(\.wireFormat))
        let run = Broadcast(room: "", events: [event], formats: formats, allocator: allocator)
        // Counted before it is written, so a scrape never lags what a client has seen.
        metrics.deliveries.increment(by: sessions.count)
        for session in sessions {
            session.eventLoop.execute { session.writeDirect(run) }
        }
    }

    /// Every room with its live member count and stored message count.
    package func roomSummaries(on eventLoop: any EventLoop) -> EventLoopFuture<[ServerFrame.RoomSummary]> {
        let database = self.database
        let stored = threadPool.runIfActive(eventLoop: eventLoop) { try database.roomsWithMessageCounts() }
        let counts = shards.map { shard in shard.eventLoop.submit { shard.memberCounts() } }
        return EventLoopFuture.whenAllSucceed(counts, on: eventLoop).and(stored).map { memberCounts, rooms in
            var members: [String: Int] = [:]
            for counts in memberCounts { members.merge(counts) { $0 + $1 } }
            // Rooms with members only on other nodes (the shards counted the others').
            for (room, remote) in self.remotePresence.withLock({ $0 }) where members[room] == nil {
                members[room] = remote.count
            }
            return rooms.map { ServerFrame.RoomSummary(name: $0.room.name, members: members[$0.room.name] ?? 0, messages: $0.messages) }
        }
    }
}

/// Open connections by transport name (`irc`, `websocket`), counted by the faces.
package final class TransportCounts: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    package init() {}

    /// Reports `transport` (at 0 until a connection opens).
    package func declare(_ transport: String) {
        counts.withLock { $0[transport] = $0[transport] ?? 0 }
    }

    package func opened(_ transport: String) {
        counts.withLock { $0[transport, default: 0] += 1 }
    }

    package func closed(_ transport: String) {
        counts.withLock { $0[transport, default: 0] -= 1 }
    }

    /// Every transport counted so far, with its open connections.
    package var snapshot: [String: Int] {
        counts.withLock { $0 }
    }
}
