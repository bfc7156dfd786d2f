import ChatProtocol
import NIOCore
import Storage

/// Rooms: join with replay, leave, history pages, the room list and who is in a room.
package extension Session {
    func join(_ requestedRoom: String, replay: ReplayRequest, user: UserRecord, re: RequestID?) {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "a room name is 1 to 32 of a-z, 0-9, '_' or '-' (a leading '#' is dropped)", re: re))
            return
        }
        isBusy = true
        server.resolveRoom(roomName, for: Names.userKey(user.name), on: eventLoop) { [self] result in
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

    func joinAccepted(_ subscription: Subscription, _ acceptance: RoomShard.JoinAcceptance, replay: ReplayRequest, user: UserRecord, re: RequestID?) {
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
        let replayStarted = NIODeadline.now()
        let wantsReadMarker = output?.wantsReadMarkers ?? false
        let future = server.threadPool.runIfActive(eventLoop: eventLoop) { () throws -> (HistorySlice, Int64?) in
            // The marker as it was before this join's replay (which is read from it).
            let markerTime = wantsReadMarker ? try database.readMarkerTime(userID: user.id, roomID: room.id) : nil
            return (try replaySlice(), markerTime)
        }
        @Sendable func replaySlice() throws -> HistorySlice {
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
            var markerTime: Int64?
            switch result {
            case .success(let found):
                (slice, markerTime) = found
            case .failure(let error):
                server.logger.error("replay of #\(room.name) for \(user.name) failed: \(error)")
                output?.sendError(ProtocolError(.internal, "the history of #\(room.name) could not be read"))
                slice = HistorySlice(messages: [], more: true)
            }
            subscription.finishReplay {
                if wantsReadMarker { output?.sendReadMarker(re: nil, room: room.name, time: markerTime) }
                output?.sendHistory(re: nil, room: room.name, slice: slice)
            }
            server.metrics.replayLatency.recordNanoseconds((NIODeadline.now() - replayStarted).nanoseconds)
            // Later requests wait for the replay, so `history` always follows `joined`.
            resume()
        }
    }

    func leave(_ requestedRoom: String, user: UserRecord, re: RequestID?) {
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
            shard.leave(subscription, marker: marker, userID: user.id, isQuit: false, reason: nil)
        }
    }

    func history(_ requestedRoom: String, page: HistoryPage, limit: Int?, re: RequestID?) {
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

    /// Reads a room's read marker, or moves it forward to `time` and tells every session of the
    /// user that keeps markers (IRC `MARKREAD`).
    func markRead(_ requestedRoom: String, time: Int64?, user: UserRecord, re: RequestID?) {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "\"\(requestedRoom)\" is not a room name", re: re))
            return
        }
        isBusy = true
        let database = server.database
        let server = self.server
        server.lookUpRoom(roomName, on: eventLoop) { [self] found in
            guard case .success(let room) = found else {
                if case .failure(let error) = found { output?.sendError(ProtocolError(error.code, error.message, re: re)) }
                return resume()
            }
            // The marker before and after: the user's other sessions hear of a change only.
            let promise = eventLoop.makePromise(of: (before: Int64?, after: Int64?).self)
            if let time {
                server.threadPool.runIfActive(eventLoop: eventLoop) {
                    (try database.lastID(atOrBefore: .time(time)), try database.readMarkerTime(userID: user.id, roomID: room.id))
                }.whenComplete { result in
                    switch result {
                    case .success(let (id, before)):
                        database.setReadMarker(userID: user.id, roomID: room.id, lastID: id) { written in
                            promise.completeWith(written.flatMap { Result { (before, try database.readMarkerTime(userID: user.id, roomID: room.id)) } })
                        }
                    case .failure(let error):
                        promise.fail(error)
                    }
                }
            } else {
                promise.completeWith(server.threadPool.runIfActive(eventLoop: eventLoop) {
                    let marker = try database.readMarkerTime(userID: user.id, roomID: room.id)
                    return (marker, marker)
                })
            }
            promise.futureResult.whenComplete { [self] result in
                switch result {
                case .success(let marker):
                    output?.sendReadMarker(re: re, room: roomName, time: marker.after)
                    if marker.after != marker.before {
                        for other in server.registry.sessions(holding: [user.name]) where other.id != id {
                            other.eventLoop.execute {
                                guard other.output?.wantsReadMarkers == true else { return }
                                other.output?.sendReadMarker(re: nil, room: roomName, time: marker.after)
                                other.output?.flush()
                            }
                        }
                    }
                case .failure(let error):
                    server.logger.error("the read marker of \(user.name) in #\(roomName) failed: \(error)")
                    output?.sendError(ProtocolError(.internal, "the read marker could not be kept", re: re))
                }
                resume()
            }
        }
    }

    func listRooms(re: RequestID?) {
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

    func who(_ requestedRoom: String, re: RequestID?) {
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
}
