import ChatConfiguration
import ChatProtocol
import NIOCore
import Storage
import Synchronization

/// One client's conversation with the server, whatever its wire protocol: login, rooms,
/// history, messages, limits. Lives on one event loop and is only touched there.
package final class Session: @unchecked Sendable {
    package enum Inbound {
        case frame(ClientFrame)
        case error(ProtocolError)

        /// A `say`: it may go ahead of the acknowledgements of the says before it.
        package var isSay: Bool {
            if case .frame(let frame) = self, case .say = frame.request { true } else { false }
        }
    }

    package enum Phase {
        case awaitingLogin
        case active(UserRecord)
        case closed
    }

    package let id: Int
    package let loopIndex: Int
    package let eventLoop: any EventLoop
    package unowned let server: ServerContext
    /// Strong for the same reason as `Subscription.session`; `detach()` breaks the cycle when the
    /// connection closes.
    package var output: (any SessionOutput)?
    package let peer: String
    /// The client's IP address (without port): the key of per-address limits.
    package let address: String

    package var phase = Phase.awaitingLogin
    /// Whether the name was opened with an account password (or registered in this session).
    package var isAccount = false
    /// How this session holds its name across nodes (shared store only): an account's lease is
    /// shared, a guest's exclusive.
    package var nameLease: NameLease?
    package enum NameLease { case shared, exclusive }
    /// Wrong account passwords on this connection: the third closes it.
    package var failedLogins = 0
    /// Closes the connection if it has not logged in by then (`limits.loginTimeoutSeconds`).
    package var loginDeadline: Scheduled<Void>?

    /// The wire format the session's rooms and direct messages are encoded in for it, fixed at
    /// login (IRC capabilities that change tags apply to room runs from the next login).
    /// Written before the session is registered under its name, read by the writer's thread
    /// through the registry's lock afterwards.
    nonisolated(unsafe) package private(set) var wireFormat: WireFormat

    package func fixWireFormat() {
        if let output { wireFormat = output.wireFormat }
    }

    /// Whether the session got past login (admission counts it as waiting until then).
    package var hasLoggedIn = false
    package var subscriptions: [String: Subscription] = [:]
    package var rateLimiter: TokenBucket?
    /// Requests wait here while an earlier one is still being answered, so answers keep the
    /// order of requests.
    private var inbox: [Inbound] = []
    private var inboxHead = 0
    package var isBusy = false
    private static let inboxHighWater = 256

    /// Messages handed to the writer and not yet committed. At `pendingSaysLimit` the session
    /// handles nothing more and stops reading its socket until one commits: a flooding client is
    /// held back by TCP, the writer's queue holds at most this many of its messages, and
    /// everybody else's logins and messages are committed between them.
    package let pendingSays = Counter()
    package static let pendingSaysLimit = 32

    package var isAtSayLimit: Bool { pendingSays.value.load(ordering: .relaxed) >= Self.pendingSaysLimit }

    /// A count shared with the writer's completions (a class: `Atomic` cannot be captured).
    package final class Counter: Sendable {
        package let value = Atomic<Int>(0)
    }

    /// Why reading from the client is paused; it resumes when no reason is left.
    package struct ReadPauses: OptionSet {
        package let rawValue: UInt8
        package init(rawValue: UInt8) { self.rawValue = rawValue }
        package static let inbox = ReadPauses(rawValue: 1)
        package static let pendingSays = ReadPauses(rawValue: 2)
    }
    private var readPauses: ReadPauses = []

    package func pauseReading(_ reason: ReadPauses) {
        let wasReading = readPauses.isEmpty
        readPauses.insert(reason)
        if wasReading { output?.setReading(false) }
    }

    package func resumeReading(_ reason: ReadPauses) {
        guard readPauses.contains(reason) else { return }
        readPauses.remove(reason)
        if readPauses.isEmpty { output?.setReading(true) }
    }

    /// Acknowledgements this session owes its client (Session+Acknowledgements.swift).
    var acksOwed = 0

    /// Written to by a loop outbox's drain and not yet flushed.
    package var isAwaitingFlush = false

    /// When the client was last heard from, and whether a ping is outstanding.
    private(set) var lastHeard: NIODeadline = .now()
    private var pingSent = false

    package init(id: Int, loopIndex: Int, eventLoop: any EventLoop, server: ServerContext, output: any SessionOutput, peer: String, address: String) {
        self.wireFormat = output.wireFormat
        self.id = id
        self.loopIndex = loopIndex
        self.eventLoop = eventLoop
        self.server = server
        self.output = output
        self.peer = peer
        self.address = address
        if let rate = server.configuration.limits.rate {
            rateLimiter = TokenBucket(ratePerSecond: rate.messagesPerSecond, burst: Double(rate.burst))
        }
        let loginTimeout = server.configuration.limits.loginTimeoutSeconds
        if loginTimeout > 0 {
            loginDeadline = eventLoop.scheduleTask(in: .seconds(Int64(loginTimeout))) { [weak self] in self?.loginTimedOut() }
        }
    }

    package var userName: String {
        if case .active(let user) = phase { user.name } else { "" }
    }

    package var user: UserRecord? {
        if case .active(let user) = phase { user } else { nil }
    }

    // MARK: Input

    /// A frame (or a framing error) from the client, in order.
    /// The client said something (any line, even one its adapter answers by itself).
    package func heard() {
        lastHeard = .now()
        pingSent = false
    }

    package func receive(_ inbound: Inbound) {
        heard()
        if case .closed = phase { return }
        if isBusy || inboxHead < inbox.count || isAtSayLimit || (acksOwed > 0 && !inbound.isSay) {
            inbox.append(inbound)
            if inbox.count - inboxHead >= Self.inboxHighWater { pauseReading(.inbox) }
            return
        }
        handle(inbound)
    }

    /// Whether requests wait in the inbox.
    var hasQueuedRequests: Bool { inboxHead < inbox.count }

    /// Handles queued requests until one has to wait for an answer.
    package func resume() {
        isBusy = false
        drainInbox()
    }

    /// One of the session's messages committed after it had reached `pendingSaysLimit`.
    package func sayLimitEased() {
        resumeReading(.pendingSays)
        if !isBusy { drainInbox() }
    }

    /// Handles queued requests in order until one has to wait (for an answer or for the writer).
    func drainInbox() {
        while !isBusy, !isAtSayLimit, inboxHead < inbox.count {
            if case .closed = phase { return }
            let next = inbox[inboxHead]
            if acksOwed > 0 && !next.isSay { break }
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
        case (.login(let name, let password, let accountPassword), .awaitingLogin):
            login(name: name, password: password, accountPassword: accountPassword, re: re)
        case (.login, .active):
            output?.sendError(ProtocolError(.badRequest, "already logged in as \(userName)", re: re))
        case (_, .awaitingLogin):
            output?.sendError(ProtocolError(.notLoggedIn, "log in first: send {\"type\":\"login\",\"name\":...}", re: re))
        case (.register(let password), .active(let user)):
            register(password: password, user: user, re: re)
        case (.join(let room, let replay), .active(let user)):
            join(room, replay: replay, user: user, re: re)
        case (.leave(let room), .active(let user)):
            leave(room, user: user, re: re)
        case (.say(.room(let room), let text, let kind, let tags, let nonce), .active(let user)):
            say(text, kind: kind, in: room, user: user, clientTags: tags, nonce: nonce, re: re)
        case (.say(.user(let recipient), let text, let kind, let tags, let nonce), .active(let user)):
            sayDirect(text, kind: kind, to: recipient, user: user, clientTags: tags, nonce: nonce, re: re)
        case (.tagMessage(let target, let tags), .active(let user)):
            relayTags(tags, to: target, user: user, re: re)
        case (.history(.room(let room), let page, let limit), .active):
            history(room, page: page, limit: limit, re: re)
        case (.history(.user(let other), let page, let limit), .active(let user)):
            directHistory(with: other, page: page, limit: limit, user: user, re: re)
        case (.conversations, .active(let user)):
            listConversations(user: user, re: re)
        case (.search(let request), .active(let user)):
            search(request, user: user, re: re)
        case (.rooms, .active):
            listRooms(re: re)
        case (.who(let room), .active):
            who(room, re: re)
        case (.markRead(let room, let time), .active(let user)):
            markRead(room, time: time, user: user, re: re)
        }
    }

    // MARK: Delivery (called by subscriptions on this loop)

    package func write(_ broadcast: Broadcast) {
        output?.write(broadcast, sessionID: id, flush: false)
        if !broadcast.personal.isEmpty { wroteOwnEvents(of: broadcast) }
    }

    package func flush() {
        output?.flush()
    }

    /// `flush` at the end of a fan-out pass (`ConnectionWriter.flushFromFanOut`).
    package func flushFromFanOut() {
        if let writer = output?.sharedWriter { writer.flushFromFanOut() } else { output?.flush() }
    }

    /// A member that cannot keep up is disconnected before its backlog can grow without bound.
    package func checkBuffered(bytes: Int) {
        if bytes > server.configuration.limits.maxOutboundBytes { slowConsumer() }
    }

    /// Writes a direct message (encoded once per wire format of its recipients) and flushes it.
    package func writeDirect(_ broadcast: Broadcast) {
        guard case .active = phase else { return }
        output?.write(broadcast, sessionID: id, flush: true)
        wroteOwnEvents(of: broadcast)
    }

    /// How long a slow consumer has to read what was already queued, the `slow_consumer` error
    /// last, before the connection closes anyway (its backlog is held that long, no longer).
    package static let slowConsumerAllowance = TimeAmount.seconds(10)

    package func slowConsumer() {
        guard !isClosedPhase else { return }
        server.logger.notice("slow consumer \(userName.isEmpty ? peer : userName): disconnected")
        server.metrics.slowConsumerDisconnects.increment()
        // Nothing more is delivered; the error goes after what is queued, and the connection
        // closes once the client has read it (or after the allowance).
        end(reason: nil)
        output?.sendFinalError(ProtocolError(.slowConsumer, "you read too slowly: more than \(server.configuration.limits.maxOutboundBytes) bytes were waiting"),
                               within: Self.slowConsumerAllowance)
    }

    // MARK: Ending

    package var isClosedPhase: Bool {
        if case .closed = phase { true } else { false }
    }

    package func quit(reason: String?) {
        output?.sendBye()
        end(reason: reason)
        output?.close()
    }

    /// Closes the connection (flushing what was written first).
    package func close() {
        end(reason: nil)
        output?.close()
    }

    /// Leaves every room (saving read markers), then frees the name: in that order, so a new
    /// login under the same name joins after this session's departure reached each room.
    package func end(reason: String?) {
        guard !isClosedPhase else { return }
        let user = self.user
        phase = .closed
        loginDeadline?.cancel()
        loginDeadline = nil
        inbox = []
        inboxHead = 0
        for (roomName, subscription) in subscriptions {
            subscription.close()
            guard let user else { continue }
            let marker = subscription.lastSentID
            let shard = server.shard(forRoom: roomName)
            shard.eventLoop.execute {
                shard.leave(subscription, marker: marker, userID: user.id, isQuit: true, reason: reason)
            }
        }
        subscriptions = [:]
        if let user {
            releaseName(user.name)
            server.database.recordLogout(userID: user.id) { _ in }
        }
    }

    /// The connection is gone: nothing more can be sent.
    package func detach() {
        end(reason: nil)
        output = nil
    }

    // MARK: Idleness

    /// Called by the idle sweep: pings a quiet client, drops a silent one.
    package func checkIdle(now: NIODeadline, timeout: TimeAmount) {
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

    package func sendShutdown(reason: String) {
        output?.sendShutdown(reason: reason)
        close()
    }
}

/// Compares secrets in time that does not depend on where they differ.
package func constantTimeEquals(_ given: String, _ expected: String) -> Bool {
    Storage.constantTimeEquals(Array(given.utf8), Array(expected.utf8))
}

/// A token bucket: `burst` messages at once, refilled at `ratePerSecond`.
package struct TokenBucket {
    package let ratePerSecond: Double
    package let burst: Double
    private var tokens: Double
    private var updated: NIODeadline

    package init(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.tokens = burst
        self.updated = .now()
    }

    package mutating func take(now: NIODeadline) -> Bool {
        let elapsed = Double((now - updated).nanoseconds) / 1e9
        tokens = min(burst, tokens + max(0, elapsed) * ratePerSecond)
        updated = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

package extension EventLoop {
    /// Runs `body` now when already on this loop, else as the loop's next task. Every hop from a
    /// room to a member uses this, so what one room sends one member keeps its order.
    func run(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}
