import ChatProtocol
import Logging
import NIOCore
import Storage

/// The rooms owned by one event loop and everything about them: membership, presence, fan-out
/// of committed messages. Only ever touched on `eventLoop`, so it needs no locks.
package final class RoomShard: @unchecked Sendable {
    /// A room in memory: present only while it has members (or a read marker being saved).
    package final class Room {
        package let name: String
        /// Every session in the room, by session id (an account may be in it several times).
        package var members: [Int: Subscription] = [:]
        /// How many sessions of each user (by key) are in the room: the room lists a user once,
        /// and presence tells of its first arrival and last departure only.
        package var sessionsPerUser: [String: Int] = [:]
        /// Members grouped by the index of their event loop, for one hop per loop in a fan-out.
        package var membersByLoop: [[Subscription]]
        /// Read markers of members who just left, until their write is committed, so a quick
        /// rejoin (even from another connection) replays from the right place.
        package var departedMarkers: [String: Int64] = [:]
        package var pendingMarkerWrites = 0
        /// Member names in the order they joined: a join appends, no re-sorting per join.
        package var memberNames: [String] = []
        /// Presence not yet sent (each joiner's own join is marked: it is not sent that).
        package var pendingPresence: [RoomEvent] = []
        package var isPresenceFlushScheduled = false
        /// How many members speak each wire format: a run is encoded once for each of these.
        package var formatCounts: [WireFormat: Int] = [:]

        package init(name: String, loopCount: Int) {
            self.name = name
            self.membersByLoop = Array(repeating: [], count: loopCount)
        }

        package var isIdle: Bool { members.isEmpty && pendingMarkerWrites == 0 && pendingPresence.isEmpty }
    }

    /// What a joiner needs from the room.
    package struct JoinAcceptance: Sendable {
        package let members: [String]
        /// Messages up to this id are the replay's; later ones arrive live.
        package let boundary: Int64
        /// The read marker of a departure not yet committed, if any.
        package let pendingMarker: Int64?
        package let wasAlreadyMember: Bool
    }

    package let index: Int
    package let eventLoop: any EventLoop
    package unowned let server: ServerContext
    private var rooms: [String: Room] = [:]
    /// The newest message id this shard has processed. Messages reach a shard in id order, so
    /// every message of its rooms up to here has been committed and delivered (or had no one
    /// to go to), and every later one is still on its way: the exactly-once join boundary.
    private(set) var watermark: Int64
    /// Sessions on this loop, for the idle sweep and shutdown.
    package var sessions: [Int: Session] = [:]

    package init(index: Int, eventLoop: any EventLoop, server: ServerContext, watermark: Int64) {
        self.index = index
        self.eventLoop = eventLoop
        self.server = server
        self.watermark = watermark
    }

    // MARK: Membership

    package func join(_ subscription: Subscription) -> JoinAcceptance {
        eventLoop.assertInEventLoop()
        let room = rooms[subscription.room.name] ?? {
            let room = Room(name: subscription.room.name, loopCount: server.loops.count)
            rooms[room.name] = room
            return room
        }()
        if room.members[subscription.sessionID] != nil {
            return JoinAcceptance(members: allMemberNames(of: room), boundary: watermark, pendingMarker: nil, wasAlreadyMember: true)
        }
        room.members[subscription.sessionID] = subscription
        room.membersByLoop[subscription.loopIndex].append(subscription)
        room.formatCounts[subscription.format, default: 0] += 1
        let sessions = room.sessionsPerUser[subscription.userKey, default: 0] + 1
        room.sessionsPerUser[subscription.userKey] = sessions
        if sessions == 1 {
            room.memberNames.append(subscription.displayName)
            server.announcePresence(room: room.name, name: subscription.displayName, joined: true)
            // Already in the room on another node: its members here know.
            if !server.isPresentElsewhere(room: room.name, userKey: subscription.userKey) {
                queuePresence(in: room, name: subscription.displayName, event: .join, isQuit: false, reason: nil, joiner: subscription.sessionID)
            }
            server.logger.info("join #\(room.name) \(subscription.displayName)")
        }
        return JoinAcceptance(
            members: allMemberNames(of: room), boundary: watermark,
            pendingMarker: room.departedMarkers[subscription.userKey], wasAlreadyMember: false)
    }

    /// Removes a member, tells the others (with the quit reason, if any) and saves its read marker.
    package func leave(_ subscription: Subscription, marker: Int64, userID: Int64, isQuit: Bool, reason: String?) {
        eventLoop.assertInEventLoop()
        guard let room = rooms[subscription.room.name],
              let member = room.members[subscription.sessionID], member === subscription else { return }
        room.members[subscription.sessionID] = nil
        room.membersByLoop[subscription.loopIndex].removeAll { $0 === subscription }
        let speakers = room.formatCounts[subscription.format, default: 1] - 1
        room.formatCounts[subscription.format] = speakers > 0 ? speakers : nil
        let sessions = room.sessionsPerUser[subscription.userKey, default: 1] - 1
        room.sessionsPerUser[subscription.userKey] = sessions > 0 ? sessions : nil
        if sessions == 0 {
            if let index = room.memberNames.firstIndex(of: subscription.displayName) { room.memberNames.remove(at: index) }
            server.announcePresence(room: room.name, name: subscription.displayName, joined: false, isQuit: isQuit, reason: reason)
            if !server.isPresentElsewhere(room: room.name, userKey: subscription.userKey) {
                queuePresence(in: room, name: subscription.displayName, event: .leave, isQuit: isQuit, reason: reason, joiner: nil)
            }
            server.logger.info("leave #\(room.name) \(subscription.displayName)\(reason.map { " (\($0))" } ?? "")")
        }

        // Each of an account's sessions saves what it was sent; the stored marker keeps the newest.
        room.departedMarkers[subscription.userKey] = max(marker, room.departedMarkers[subscription.userKey] ?? 0)
        room.pendingMarkerWrites += 1
        let userKey = subscription.userKey
        let roomName = room.name
        server.database.setReadMarker(userID: userID, roomID: subscription.room.id, lastID: marker) { [self] result in
            if case .failure(let error) = result {
                server.logger.error("saving the read marker of \(userKey) in #\(roomName) failed: \(error)")
            }
            eventLoop.execute { [self] in
                guard let room = rooms[roomName] else { return }
                room.pendingMarkerWrites -= 1
                if room.departedMarkers[userKey] == marker { room.departedMarkers[userKey] = nil }
                dropIfIdle(room)
            }
        }
    }

    // MARK: Presence

    /// Presence is sent in runs, like messages: frames queue in the room and go out together
    /// at the end of this loop turn (or before the room's next messages, to keep their order).
    /// A join storm of N clients then costs a few runs per member, not N² single frames.
    private func queuePresence(in room: Room, name: String, event: ServerFrame.PresenceEvent, isQuit: Bool, reason: String?, joiner: Int?) {
        room.pendingPresence.append(.presence(RoomEvent.Presence(
            room: room.name, name: name, event: event, isQuit: isQuit, reason: reason, timestamp: Timestamp.now(), joinerSessionID: joiner)))
        guard !room.isPresenceFlushScheduled else { return }
        room.isPresenceFlushScheduled = true
        let roomName = room.name
        let flush: @Sendable () -> Void = { [self] in
            guard let room = rooms[roomName] else { return }
            room.isPresenceFlushScheduled = false
            flushPresence(in: room)
            dropIfIdle(room)
        }
        // In a big room, joins and leaves gather for a moment: one write per member for a
        // whole burst of them. Messages flush what is pending first, so order is kept.
        if room.members.count > Self.presenceBatchingThreshold {
            eventLoop.scheduleTask(in: Self.presenceBatchingDelay, flush)
        } else {
            eventLoop.execute(flush)
        }
    }

    package static let presenceBatchingThreshold = 64
    package static let presenceBatchingDelay = TimeAmount.milliseconds(20)

    private func flushPresence(in room: Room) {
        guard !room.pendingPresence.isEmpty else { return }
        let events = room.pendingPresence
        room.pendingPresence = []
        // Only the others hear of a join, and a joiner hears only of what came after it (its
        // `joined` list already had the rest): each joiner's run starts after its own join.
        fanOut(Broadcast(room: room.name, events: events, formats: room.formatCounts.keys, allocator: server.allocator), in: room)
    }

    private func dropIfIdle(_ room: Room) {
        if room.isIdle { rooms[room.name] = nil }
    }

    package func memberNames(of roomName: String) -> [String] {
        guard let room = rooms[roomName] else { return server.remoteMembers(of: roomName, excluding: [:]).map(\.name) }
        return allMemberNames(of: room)
    }

    /// The members here, in the order they joined, then those only on other nodes.
    private func allMemberNames(of room: Room) -> [String] {
        room.memberNames + server.remoteMembers(of: room.name, excluding: room.sessionsPerUser).map(\.name)
    }

    package func memberCounts() -> [String: Int] {
        rooms.compactMapValues { room in
            room.sessionsPerUser.isEmpty ? nil : room.sessionsPerUser.count + server.remoteMembers(of: room.name, excluding: room.sessionsPerUser).count
        }
    }

    /// A user appeared in or vanished from a room on the other nodes (`ServerContext`): its
    /// members here hear of it, unless the user is in the room here too.
    package func remotePresence(_ change: PresenceChange) {
        eventLoop.assertInEventLoop()
        guard let room = rooms[change.room], !room.members.isEmpty,
              room.sessionsPerUser[Names.userKey(change.name)] == nil else { return }
        queuePresence(in: room, name: change.name, event: change.joined ? .join : .leave, isQuit: change.isQuit,
                      reason: change.reason, joiner: nil)
    }

    // MARK: Delivery

    /// Fans out committed messages, in id order, to the members of their rooms.
    package func deliver(_ deliveries: [CommittedDelivery]) {
        eventLoop.assertInEventLoop()
        guard let last = deliveries.last else { return }
        watermark = max(watermark, last.message.id)
        let logMessages = server.configuration.log.messages
        // Consecutive messages of one room go out as one run: one write per member.
        var start = deliveries.startIndex
        while start < deliveries.endIndex {
            let roomName = deliveries[start].message.room
            var end = start + 1
            while end < deliveries.endIndex, deliveries[end].message.room == roomName { end += 1 }
            let run = deliveries[start..<end]
            if logMessages {
                for delivery in run {
                    let message = delivery.message
                    server.logger.info("#\(message.room) <\(message.from)> \(message.kind == .action ? "* " : "")\(message.text)")
                }
            }
            if let room = rooms[roomName], !room.members.isEmpty {
                flushPresence(in: room)
                fanOut(Broadcast.messages(run, room: roomName, formats: room.formatCounts.keys, allocator: server.allocator), in: room)
            }
            start = end
        }
    }

    /// An event that is not stored (IRC `TAGMSG`) to the room's members now, after the room's
    /// pending presence.
    package func relay(_ event: RoomEvent, in roomName: String) {
        eventLoop.assertInEventLoop()
        guard let room = rooms[roomName], !room.members.isEmpty else { return }
        flushPresence(in: room)
        fanOut(Broadcast(room: roomName, events: [event], formats: room.formatCounts.keys, allocator: server.allocator), in: room)
    }

    /// One post per event loop with members, never an await per recipient: a slow member only
    /// ever slows itself (its own outbound buffer, watched by its connection).
    /// Each loop gets its own copy of the run (the shard's own loop the original), so no
    /// reference count is shared between threads on the per-member path.
    private func fanOut(_ broadcast: Broadcast, in room: Room) {
        for (loopIndex, members) in room.membersByLoop.enumerated() where !members.isEmpty {
            let run = loopIndex == index ? broadcast : broadcast.copyForAnotherLoop(allocator: server.allocator)
            server.outboxes[loopIndex].post(LoopOutbox.Item(broadcast: run, members: members))
        }
    }
}
