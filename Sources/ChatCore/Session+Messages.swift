import ChatProtocol
import Logging
import NIOCore
import Storage

/// Saying things: room messages and direct messages, stored before anyone sees them.
package extension Session {
    /// The membership of `requestedRoom` this session speaks through, or nil after answering
    /// why it cannot (not a room name, not joined).
    private func subscription(toSpeakIn requestedRoom: String, re: RequestID?) -> Subscription? {
        guard let roomName = Names.canonicalRoom(requestedRoom) else {
            output?.sendError(ProtocolError(.invalidRoom, "\"\(requestedRoom)\" is not a room name", re: re))
            return nil
        }
        guard let subscription = subscriptions[roomName] else {
            output?.sendError(ProtocolError(.notInRoom, "join #\(roomName) before speaking in it", re: re))
            return nil
        }
        return subscription
    }

    func say(_ text: String, kind: MessageKind, in requestedRoom: String, user: UserRecord, clientTags: String = "",
             nonce: String? = nil, re: RequestID?) {
        guard let subscription = subscription(toSpeakIn: requestedRoom, re: re), admitMessage(text, re: re) else { return }
        let room = subscription.room
        let draft = MessageDraft(roomID: room.id, userID: user.id, kind: kind, text: text, authorName: user.name, nonce: nonce)
        let author = RoomEvent.Author(sessionID: id, re: re, isAccount: isAccount, clientTags: clientTags)
        let server = self.server
        let settle = trackPendingSay()
        owesAck()
        server.database.appendMessage(draft) { [weak self] result in
            settle()
            switch result {
            case .success(let committed):
                if let original = committed.original {
                    let message = ChatMessage(id: committed.id, timestamp: committed.timestamp, room: room.name,
                                              from: user.name, kind: original.kind, text: original.text)
                    self?.answerResend(message, author: author)
                    return
                }
                server.metrics.messagesStored.increment()
                if let author = committed.recreatedAuthor { self?.adoptRecreatedUser(author) }
                let message = ChatMessage(id: committed.id, timestamp: committed.timestamp, room: room.name,
                                          from: user.name, kind: kind, text: text)
                server.committed(message, author: author)
            case .failure(let error):
                self?.answerFromWriter(Self.storeFailure(error, storing: "a message of \(user.name) in #\(room.name)", logger: server.logger, re: re))
            }
        }
    }

    /// A direct message: stored in the same id sequence, then written to every live session of
    /// the sender (the acknowledging copy carries `re`) and of the recipient.
    func sayDirect(_ text: String, kind: MessageKind, to recipient: String, user: UserRecord, clientTags: String = "",
                   nonce: String? = nil, re: RequestID?) {
        guard Names.isValidUserName(recipient, maximumLength: max(server.configuration.limits.maxNameLength, 64)) else {
            output?.sendError(ProtocolError(.noSuchUser, "there is no user \"\(recipient)\"", re: re))
            return
        }
        guard admitMessage(text, re: re) else { return }
        let author = RoomEvent.Author(sessionID: id, re: re, isAccount: isAccount, clientTags: clientTags)
        let server = self.server
        let settle = trackPendingSay()
        owesAck()
        server.database.appendDirectMessage(from: user, to: recipient, kind: kind, text: text, nonce: nonce) { [weak self] result in
            settle()
            switch result {
            case .success(let committed):
                if let original = committed.message.original {
                    let message = ChatMessage(id: committed.message.id, timestamp: committed.message.timestamp, room: "",
                                              from: user.name, to: committed.recipient.name, kind: original.kind, text: original.text)
                    self?.answerResend(message, author: author)
                    return
                }
                server.metrics.messagesStored.increment()
                if let author = committed.message.recreatedAuthor { self?.adoptRecreatedUser(author) }
                let message = ChatMessage(id: committed.message.id, timestamp: committed.message.timestamp, room: "",
                                          from: user.name, to: committed.recipient.name, kind: kind, text: text)
                server.committed(message, author: author)
            case .failure(StorageError.noSuchUser):
                self?.answerFromWriter(ProtocolError(.noSuchUser, "there is no user \(recipient): nobody has logged in with that name", re: re))
            case .failure(let error):
                self?.answerFromWriter(Self.storeFailure(error, storing: "a direct message of \(user.name) to \(recipient)", logger: server.logger, re: re))
            }
        }
    }

    /// The answer to a `say` the store did not carry out: a nonce used elsewhere, an outcome the
    /// database did not tell (never reported as "not stored": it may have committed), or a fault.
    private static func storeFailure(_ error: any Error, storing what: String, logger: Logger, re: RequestID?) -> ProtocolError {
        switch error {
        case StorageError.nonceReused(let nonce):
            return ProtocolError(.badRequest, "the nonce \"\(nonce)\" was used for another message in the last 24 hours", re: re)
        case StorageError.unknownOutcome:
            logger.warning("storing \(what): the database did not say whether it committed")
            return ProtocolError(.unknownOutcome, "the database did not confirm whether the message was stored: send it again with the same nonce", re: re)
        default:
            logger.error("storing \(what) failed: \(error)")
            return ProtocolError(.internal, "the message could not be stored", re: re)
        }
    }

    /// A `say` whose nonce named a message already stored: nothing new was stored or sent to
    /// anyone; this session gets that message as its acknowledgement (with this request's `re`).
    private func answerResend(_ message: ChatMessage, author: RoomEvent.Author) {
        eventLoop.execute { [weak self] in
            guard let self, let output else { return }
            let run = Broadcast(room: message.room, events: [.message(message, author: author)], formats: [output.wireFormat],
                                allocator: server.allocator)
            writeDirect(run)
        }
    }

    /// IRC `TAGMSG`: client-only tags (typing notices, reactions) relayed now to the room's
    /// members, or to the sessions of the recipient and of the sender, and never stored. They may
    /// overtake this client's own messages that are still being stored.
    func relayTags(_ clientTags: String, to target: MessageTarget, user: UserRecord, re: RequestID?) {
        let author = RoomEvent.Author(sessionID: id, re: re, isAccount: isAccount, clientTags: clientTags)
        switch target {
        case .room(let requestedRoom):
            guard let roomName = subscription(toSpeakIn: requestedRoom, re: re)?.room.name else { return }
            let event = RoomEvent.tags(RoomEvent.TagMessage(room: roomName, to: nil, from: user.name, timestamp: Timestamp.now()), author: author)
            let shard = server.shard(forRoom: roomName)
            shard.eventLoop.execute { shard.relay(event, in: roomName) }
        case .user(let recipient):
            guard let holder = Names.isValidUserName(recipient, maximumLength: 64) ? server.registry.holder(of: recipient) : nil else {
                output?.sendError(ProtocolError(.noSuchUser, "\(recipient) is not online", re: re))
                return
            }
            let event = RoomEvent.tags(RoomEvent.TagMessage(room: "", to: holder.name, from: user.name, timestamp: Timestamp.now()), author: author)
            server.deliverDirect(event, between: [user.name, holder.name])
        }
    }

    /// The user record was erased (`chat-admin forget`) while this session was online and made
    /// again for its next message: later messages and read markers use the new record.
    private func adoptRecreatedUser(_ user: UserRecord) {
        eventLoop.execute { [weak self] in
            guard let self, case .active = phase else { return }
            phase = .active(user)
            server.logger.notice("\(user.name) was forgotten while online; the next message made the user again")
        }
    }

    /// The text rules and the rate limit, shared by every kind of message; answers the refusal.
    private func admitMessage(_ text: String, re: RequestID?) -> Bool {
        if let problem = Names.problem(withText: text, maximumBytes: server.configuration.limits.maxMessageBytes) {
            output?.sendError(ProtocolError(problem.errorCode, problem.message, re: re))
            return false
        }
        if var limiter = rateLimiter {
            let allowed = limiter.take(now: .now())
            rateLimiter = limiter
            guard allowed else {
                server.metrics.rateLimited.increment()
                output?.sendError(ProtocolError(.rateLimited, "too many messages: slow down (the message was not stored)", re: re))
                return false
            }
        }
        return true
    }

    /// Counts a message handed to the writer; at the limit the session stops reading and
    /// handling requests (see `pendingSaysLimit`). Returns what the writer's completion calls once
    /// the message is settled.
    private func trackPendingSay() -> @Sendable () -> Void {
        let pendingSays = self.pendingSays
        let eventLoop = self.eventLoop
        if pendingSays.value.wrappingAdd(1, ordering: .relaxed).newValue >= Self.pendingSaysLimit {
            pauseReading(.pendingSays)
        }
        return { [weak self] in
            if pendingSays.value.wrappingSubtract(1, ordering: .relaxed).newValue == Self.pendingSaysLimit - 1 {
                eventLoop.execute { [weak self] in self?.sayLimitEased() }
            }
        }
    }

    /// An error for a say the writer refused, sent from the session's loop: it stands for the
    /// acknowledgement owed.
    private func answerFromWriter(_ error: ProtocolError) {
        eventLoop.execute { [weak self] in
            self?.output?.sendError(error)
            self?.output?.flush()
            self?.settleAck()
        }
    }
}
