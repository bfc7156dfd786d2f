import ChatConfiguration
import ChatProtocol
import NIOCore
import Storage
import Synchronization

/// One client's conversation with the server, whatever its wire protocol: login, rooms,
/// history, messages, limits. Lives on one event loop and is only touched there.
final class Session: @unchecked Sendable {
    enum Inbound {
        case frame(ClientFrame)
        case error(ProtocolError)
    }

    private enum Phase {
        case awaitingLogin
        case active(UserRecord)
        case closed
    }

    let id: Int
    let loopIndex: Int
    let eventLoop: any EventLoop
    unowned let server: ServerContext
    /// Strong for the same reason as `Subscription.session`; `detach()` breaks the cycle when the
    /// connection closes.
    private var output: (any SessionOutput)?
    private let peer: String

    private var phase = Phase.awaitingLogin
    private var subscriptions: [String: Subscription] = [:]
    private var rateLimiter: TokenBucket?
    /// Requests wait here while an earlier one is still being answered, so answers keep the
    /// order of requests.
    private var inbox: [Inbound] = []
    private var inboxHead = 0
    private var isBusy = false
    private static let inboxHighWater = 256

    /// Messages handed to the writer and not yet committed. Past `pendingSaysLimit` the session
    /// stops reading its socket until half have committed: a flooding client is held back by
    /// TCP, the writer's queue stays short, and everybody else's logins and messages go on.
    private let pendingSays = Counter()
    private static let pendingSaysLimit = 512

    /// A count shared with the writer's completions (a class: `Atomic` cannot be captured).
    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Why reading from the client is paused; it resumes when no reason is left.
    private struct ReadPauses: OptionSet {
        let rawValue: UInt8
        static let inbox = ReadPauses(rawValue: 1)
        static let pendingSays = ReadPauses(rawValue: 2)
    }
    private var readPauses: ReadPauses = []

    private func pauseReading(_ reason: ReadPauses) {
        let wasReading = readPauses.isEmpty
        readPauses.insert(reason)
        if wasReading { output?.setReading(false) }
    }

    private func resumeReading(_ reason: ReadPauses) {
        guard readPauses.contains(reason) else { return }
        readPauses.remove(reason)
        if readPauses.isEmpty { output?.setReading(true) }
    }

    /// Written to by a loop outbox's drain and not yet flushed.
    var isAwaitingFlush = false

    /// When the client was last heard from, and whether a ping is outstanding.
    private(set) var lastHeard: NIODeadline = .now()
    private var pingSent = false

    init(id: Int, loopIndex: Int, eventLoop: any EventLoop, server: ServerContext, output: any SessionOutput, peer: String) {
        self.id = id
        self.loopIndex = loopIndex
        self.eventLoop = eventLoop
        self.server = server
        self.output = output
        self.peer = peer
        if let rate = server.configuration.limits.rate {
            rateLimiter = TokenBucket(ratePerSecond: rate.messagesPerSecond, burst: Double(rate.burst))
        }
    }

    var userName: String {
        if case .active(let user) = phase { user.name } else { "" }
    }

    private var user: UserRecord? {
        if case .active(let user) = phase { user } else { nil }
    }

    // MARK: Input

    /// A frame (or a framing error) from the client, in order.
    func receive(_ inbound: Inbound) {
        lastHeard = .now()
        pingSent = false
        if case .closed = phase { return }
        if isBusy || inboxHead < inbox.count {
            inbox.append(inbound)
            if inbox.count - inboxHead >= Self.inboxHighWater { pauseReading(.inbox) }
            return
        }
        handle(inbound)
    }

    /// Handles queued requests until one has to wait for an answer.
    private func resume() {
        isBusy = false
        while !isBusy, inboxHead < inbox.count {
            if case .closed = phase { return }
            let next = inbox[inboxHead]
            inboxHead += 1
            handle(next)
        }
        if inboxHead == inbox.count {
            inbox.removeAll(keepingCapacity: false)
            inboxHead = 0
        }
        if inbox.count - inboxHead < Self.inboxHighWater / 2 { resumeReading(.inbox) }
        output?.flush()
    }

    private func handle(_ inbound: Inbound) {
        switch inbound {
        case .error(let error):
            output?.sendError(error)
        case .frame(let frame):
            handle(frame.request, re: frame.id)
        }
    }

    private func handle(_ request: ClientRequest, re: RequestID?) {
        switch (request, phase) {
        case (_, .closed):
            return
        case (.ping, _):
            output?.sendPong(re: re)
        case (.pong, _):
            return
        case (.quit(let reason), _):
            quit(reason: reason)
        case (.login(let name, let password), .awaitingLogin):
            login(name: name, password: password, re: re)
        case (.login, .active):
            output?.sendError(ProtocolError(.badRequest, "already logged in as \(userName)", re: re))
        case (_, .awaitingLogin):
            output?.sendError(ProtocolError(.notLoggedIn, "log in first: send {\"type\":\"login\",\"name\":...}", re: re))
        case (.join(let room, let replay), .active(let user)):
            join(room, replay: replay, user: user, re: re)
        case (.leave(let room), .active(let user)):
            leave(room, user: user, re: re)
        case (.say(let room, let text, let kind), .active(let user)):
            say(text, kind: kind, in: room, user: user, re: re)
        case (.history(let room, let page, let limit), .active):
            history(room, page: page, limit: limit, re: re)
        case (.rooms, .active):
            listRooms(re: re)
        case (.who(let room), .active):
            who(room, re: re)
        }
    }

    // MARK: Login

    private func login(name: String, password: String?, re: RequestID?) {
        let configuration = server.configuration
        if let required = configuration.server.password {
            guard let password, constantTimeEquals(password, required) else {
                server.logger.notice("bad password from \(peer)")
                output?.sendError(ProtocolError(.badPassword, password == nil ? "this server requires a password" : "wrong password", re: re))
                close()
                return
            }
        }
        guard Names.isValidUserName(name, maximumLength: configuration.limits.maxNameLength) else {
            output?.sendError(ProtocolError(.invalidName,
                "a name is 1 to \(configuration.limits.maxNameLength) ASCII letters, digits, '_' or '-', not starting with '-'", re: re))
            return
        }
        guard server.registry.claim(name: name, sessionID: id) else {
            output?.sendError(ProtocolError(.nameTaken, "\(name) is already online; pick another name", re: re))
            return
        }
        isBusy = true
        server.database.recordLogin(name: name) { result in
            self.eventLoop.execute { self.loginRecorded(result, name: name, re: re) }
        }
    }

    private func loginRecorded(_ result: Result<UserRecord, any Error>, name: String, re: RequestID?) {
        defer { resume() }
        switch result {
        case .success(let user):
            // The claim is keyed case-insensitively, so it already covers the stored spelling.
            guard case .awaitingLogin = phase else {
                server.registry.release(name: name, sessionID: id)
                return
            }
            phase = .active(user)
            server.logger.info("login \(user.name) from \(peer)")
            let configuration = server.configuration
            output?.sendWelcome(re: re, name: user.name, defaultRoom: configuration.rooms.defaultRoom, motd: configuration.server.motd)
        case .failure(let error):
            server.registry.release(name: name, sessionID: id)
            server.logger.error("recording the login of \(name) failed: \(error)")
            output?.sendError(ProtocolError(.internal, "the login could not be recorded; try again", re: re))
        }
    }

    // MARK: Rooms

    private func join(_ requestedRoom: String, replay: ReplayRequest, user: UserRecord, re: RequestID?) {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "a room name is 1 to 32 of a-z, 0-9, '_' or '-' (a leading '#' is dropped)", re: re))
            return
        }
        isBusy = true
        server.resolveRoom(roomName, on: eventLoop) { [self] result in
            guard case .active = phase else { return }
            let record: RoomRecord
            switch result {
            case .failure(let error):
                output?.sendError(ProtocolError(error.code, error.message, re: re))
                resume()
                return
            case .success(let found):
                record = found
            }
            let subscription = subscriptions[roomName] ?? Subscription(room: record, session: self)
            subscriptions[roomName] = subscription
            let shard = server.shard(forRoom: roomName)
            let eventLoop = self.eventLoop
            shard.eventLoop.execute {
                let acceptance = shard.join(subscription)
                eventLoop.run { [self] in
                    joinAccepted(subscription, acceptance, replay: replay, user: user, re: re)
                }
            }
        }
    }

    private func joinAccepted(_ subscription: Subscription, _ acceptance: RoomShard.JoinAcceptance, replay: ReplayRequest, user: UserRecord, re: RequestID?) {
        guard case .active = phase, !subscription.isClosed else { return }
        let room = subscription.room
        output?.sendJoined(re: re, room: room.name, members: acceptance.members)
        if acceptance.wasAlreadyMember {
            output?.sendHistory(re: nil, room: room.name, slice: HistorySlice(messages: [], more: false))
            resume()
            return
        }
        subscription.lastSentID = max(subscription.lastSentID, acceptance.boundary)

        let history = server.configuration.history
        let database = server.database
        let boundary = acceptance.boundary
        let pendingMarker = acceptance.pendingMarker
        let future = server.threadPool.runIfActive(eventLoop: eventLoop) { () throws -> HistorySlice in
            switch replay {
            case .after(let id):
                return try database.newestMessages(room: room, after: id, upTo: boundary, limit: history.maxReplay)
            case .latest(let count):
                let slice = try database.newestMessages(room: room, upTo: boundary, limit: min(count, history.maxReplay))
                return HistorySlice(messages: slice.messages, more: count > history.maxReplay && slice.more)
            case .missed:
                if let marker = try pendingMarker ?? database.readMarker(userID: user.id, roomID: room.id) {
                    return try database.newestMessages(room: room, after: marker, upTo: boundary, limit: history.maxReplay)
                }
                let slice = try database.newestMessages(room: room, upTo: boundary, limit: min(history.onJoin, history.maxReplay))
                return HistorySlice(messages: slice.messages, more: history.onJoin > history.maxReplay && slice.more)
            }
        }
        future.whenComplete { [self] result in
            let slice: HistorySlice
            switch result {
            case .success(let found):
                slice = found
            case .failure(let error):
                server.logger.error("replay of #\(room.name) for \(user.name) failed: \(error)")
                output?.sendError(ProtocolError(.internal, "the history of #\(room.name) could not be read"))
                slice = HistorySlice(messages: [], more: true)
            }
            subscription.finishReplay {
                output?.sendHistory(re: nil, room: room.name, slice: slice)
            }
            // Later requests wait for the replay, so `history` always follows `joined`.
            resume()
        }
    }

    private func leave(_ requestedRoom: String, user: UserRecord, re: RequestID?) {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "\"\(requestedRoom)\" is not a room name", re: re))
            return
        }
        guard let subscription = subscriptions.removeValue(forKey: roomName) else {
            output?.sendError(ProtocolError(.notInRoom, "you are not in #\(roomName)", re: re))
            return
        }
        subscription.close()
        output?.sendLeft(re: re, room: roomName)
        let marker = subscription.lastSentID
        let shard = server.shard(forRoom: roomName)
        shard.eventLoop.execute {
            shard.leave(subscription, marker: marker, userID: user.id, reason: nil)
        }
    }

    private func history(_ requestedRoom: String, page: HistoryPage, limit: Int?, re: RequestID?) {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "\"\(requestedRoom)\" is not a room name", re: re))
            return
        }
        guard let subscription = subscriptions[roomName] else {
            output?.sendError(ProtocolError(.notInRoom, "join #\(roomName) to read its history", re: re))
            return
        }
        let history = server.configuration.history
        let count = min(limit ?? history.onJoin, history.maxReplay)
        let database = server.database
        let room = subscription.room
        isBusy = true
        server.threadPool.runIfActive(eventLoop: eventLoop) {
            try database.historyPage(room: room, page: page, limit: count)
        }.whenComplete { [self] result in
            switch result {
            case .success(let slice):
                output?.sendHistory(re: re, room: roomName, slice: slice)
            case .failure(let error):
                server.logger.error("history of #\(roomName) failed: \(error)")
                output?.sendError(ProtocolError(.internal, "the history of #\(roomName) could not be read", re: re))
            }
            resume()
        }
    }

    private func listRooms(re: RequestID?) {
        isBusy = true
        server.roomSummaries(on: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let rooms):
                output?.sendRooms(re: re, rooms: rooms)
            case .failure(let error):
                server.logger.error("listing rooms failed: \(error)")
                output?.sendError(ProtocolError(.internal, "the rooms could not be listed", re: re))
            }
            resume()
        }
    }

    private func who(_ requestedRoom: String, re: RequestID?) {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "\"\(requestedRoom)\" is not a room name", re: re))
            return
        }
        isBusy = true
        server.lookUpRoom(roomName, on: eventLoop) { [self] result in
            switch result {
            case .failure(let error):
                output?.sendError(ProtocolError(error.code, error.message, re: re))
                resume()
            case .success:
                let shard = server.shard(forRoom: roomName)
                shard.eventLoop.submit { shard.memberNames(of: roomName) }
                    .hop(to: eventLoop)
                    .whenComplete { [self] result in
                        output?.sendWho(re: re, room: roomName, members: (try? result.get()) ?? [])
                        resume()
                    }
            }
        }
    }

    // MARK: Messages

    private func say(_ text: String, kind: MessageKind, in requestedRoom: String, user: UserRecord, re: RequestID?) {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "\"\(requestedRoom)\" is not a room name", re: re))
            return
        }
        guard let subscription = subscriptions[roomName] else {
            output?.sendError(ProtocolError(.notInRoom, "join #\(roomName) before speaking in it", re: re))
            return
        }
        if let problem = Names.problem(withText: text, maximumBytes: server.configuration.limits.maxMessageBytes) {
            output?.sendError(ProtocolError(problem.errorCode, problem.message, re: re))
            return
        }
        if var limiter = rateLimiter {
            let allowed = limiter.take(now: .now())
            rateLimiter = limiter
            guard allowed else {
                output?.sendError(ProtocolError(.rateLimited, "too many messages: slow down (the message was not stored)", re: re))
                return
            }
        }
        let room = subscription.room
        let draft = MessageDraft(roomID: room.id, userID: user.id, kind: kind, text: text)
        let shardIndex = server.shardIndex(forRoom: roomName)
        let sessionID = id
        let server = self.server
        let eventLoop = self.eventLoop
        let pendingSays = self.pendingSays
        if pendingSays.value.wrappingAdd(1, ordering: .relaxed).newValue >= Self.pendingSaysLimit {
            pauseReading(.pendingSays)
        }
        server.database.appendMessage(draft) { [weak self] result in
            if pendingSays.value.wrappingSubtract(1, ordering: .relaxed).newValue == Self.pendingSaysLimit / 2 {
                eventLoop.execute { [weak self] in self?.resumeReading(.pendingSays) }
            }
            switch result {
            case .success(let committed):
                let message = ChatMessage(id: committed.id, timestamp: committed.timestamp, room: room.name,
                                          from: user.name, kind: kind, text: text)
                server.dispatcher.dispatch(CommittedDelivery(message: message, senderSessionID: sessionID, re: re), toShard: shardIndex)
            case .failure(let error):
                server.logger.error("storing a message of \(user.name) in #\(room.name) failed: \(error)")
                eventLoop.execute { [weak self] in
                    self?.output?.sendError(ProtocolError(.internal, "the message could not be stored", re: re))
                    self?.output?.flush()
                }
            }
        }
    }

    // MARK: Delivery (called by subscriptions on this loop)

    func write(_ broadcast: Broadcast) {
        output?.write(broadcast.buffers(for: id))
    }

    func flush() {
        output?.flush()
    }

    /// A member that cannot keep up is disconnected before its backlog can grow without bound.
    func checkBuffered(bytes: Int) {
        if bytes > server.configuration.limits.maxOutboundBytes { slowConsumer() }
    }

    func slowConsumer() {
        guard !isClosedPhase else { return }
        server.logger.notice("slow consumer \(userName.isEmpty ? peer : userName): disconnected")
        output?.sendError(ProtocolError(.slowConsumer, "you read too slowly: more than \(server.configuration.limits.maxOutboundBytes) bytes were waiting"))
        close()
    }

    // MARK: Ending

    private var isClosedPhase: Bool {
        if case .closed = phase { true } else { false }
    }

    private func quit(reason: String?) {
        output?.sendBye()
        end(reason: reason)
        output?.close()
    }

    /// Closes the connection (flushing what was written first).
    func close() {
        end(reason: nil)
        output?.close()
    }

    /// Leaves every room (saving read markers), then frees the name: in that order, so a new
    /// login under the same name joins after this session's departure reached each room.
    func end(reason: String?) {
        guard !isClosedPhase else { return }
        let user = self.user
        phase = .closed
        inbox = []
        inboxHead = 0
        for (roomName, subscription) in subscriptions {
            subscription.close()
            guard let user else { continue }
            let marker = subscription.lastSentID
            let shard = server.shard(forRoom: roomName)
            shard.eventLoop.execute {
                shard.leave(subscription, marker: marker, userID: user.id, reason: reason)
            }
        }
        subscriptions = [:]
        if let user {
            server.registry.release(name: user.name, sessionID: id)
            server.database.recordLogout(userID: user.id) { _ in }
        }
    }

    /// The connection is gone: nothing more can be sent.
    func detach() {
        end(reason: nil)
        output = nil
    }

    // MARK: Idleness

    /// Called by the idle sweep: pings a quiet client, drops a silent one.
    func checkIdle(now: NIODeadline, timeout: TimeAmount) {
        let silence = now - lastHeard
        if silence >= timeout {
            server.logger.info("idle timeout: \(userName.isEmpty ? peer : userName)")
            close()
        } else if silence.nanoseconds >= timeout.nanoseconds / 2 && !pingSent {
            pingSent = true
            output?.sendPing()
            output?.flush()
        }
    }

    func sendShutdown(reason: String) {
        output?.sendShutdown(reason: reason)
        close()
    }
}

/// Compares secrets in time that does not depend on where they differ.
func constantTimeEquals(_ given: String, _ expected: String) -> Bool {
    let lhs = Array(given.utf8)
    let rhs = Array(expected.utf8)
    var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
    for index in 0..<max(lhs.count, rhs.count) {
        difference |= (index < lhs.count ? lhs[index] : 0) ^ (index < rhs.count ? rhs[index] : 0)
    }
    return difference == 0
}

/// A token bucket: `burst` messages at once, refilled at `ratePerSecond`.
struct TokenBucket {
    let ratePerSecond: Double
    let burst: Double
    private var tokens: Double
    private var updated: NIODeadline

    init(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.tokens = burst
        self.updated = .now()
    }

    mutating func take(now: NIODeadline) -> Bool {
        let elapsed = Double((now - updated).nanoseconds) / 1e9
        tokens = min(burst, tokens + max(0, elapsed) * ratePerSecond)
        updated = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

extension EventLoop {
    /// Runs `body` now when already on this loop, else as the loop's next task. Every hop from a
    /// room to a member uses this, so what one room sends one member keeps its order.
    func run(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}
