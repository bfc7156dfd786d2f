import ChatProtocol
import NIOCore
import Storage

/// Reading what was said: direct-message history, the list of conversations, and search.
/// Stored direct messages are for accounts only: a guest name passes to whoever uses it next.
package extension Session {
    func directHistory(with otherName: String, page: HistoryPage, limit: Int?, user: UserRecord, re: RequestID?) {
        guard requireAccount(re: re) else { return }
        let history = server.configuration.history
        let count = min(limit ?? history.onJoin, history.maxReplay)
        let database = server.database
        read(re: re, failure: "the conversation with \(otherName) could not be read") {
            guard let other = try database.user(named: otherName) else {
                throw ProtocolError(.noSuchUser, "there is no user \(otherName)", re: re)
            }
            return (other, try database.directHistoryPage(between: user, and: other, page: page, limit: count))
        } answer: { output, found in
            output.sendHistory(re: re, subject: .conversation(with: found.0.name), slice: found.1)
        }
    }

    func listConversations(user: UserRecord, re: RequestID?) {
        guard requireAccount(re: re) else { return }
        let database = server.database
        read(re: re, failure: "the conversations could not be listed") {
            try database.conversations(of: user.id).map { ServerFrame.ConversationSummary(with: $0.with, lastID: $0.lastID, lastTimestamp: $0.lastTimestamp) }
        } answer: { output, conversations in
            output.sendConversations(re: re, conversations)
        }
    }

    func search(_ request: SearchRequest, user: UserRecord, re: RequestID?) {
        if request.with != nil, !requireAccount(re: re) { return }
        let roomName = request.room.map { Names.canonicalRoom($0) }
        if let room = request.room, roomName == .some(nil) {
            output?.sendError(ProtocolError(.invalidRoom, "\"\(room)\" is not a room name", re: re))
            return
        }
        let limit = min(request.limit ?? min(50, server.configuration.history.maxReplay), server.configuration.history.maxReplay)
        let database = server.database
        let isAccount = self.isAccount
        read(re: re, failure: "the search could not be run") {
            let roomName = roomName ?? nil
            var filter = MessageFilter(room: roomName, user: request.from, directMessages: isAccount ? .of(user.id) : .none)
            if let roomName, try database.room(named: roomName) == nil {
                throw ProtocolError(.noSuchRoom, "there is no room #\(roomName)", re: re)
            }
            if let otherName = request.with {
                guard let other = try database.user(named: otherName) else {
                    throw ProtocolError(.noSuchUser, "there is no user \(otherName)", re: re)
                }
                filter.directMessages = .between(user.id, other.id)
            }
            do {
                let hits = try database.search(request.query, filter: filter, limit: limit + 1)
                return (hits.prefix(limit).map(\.message), hits.count > limit)
            } catch let StorageError.invalidSearchQuery(_, reason) {
                throw ProtocolError(.badRequest, "the search query does not parse: \(reason)", re: re)
            }
        } answer: { output, found in
            output.sendSearch(re: re, messages: found.0, more: found.1)
        }
    }

    /// Whether the session is an account; otherwise answers `account_required`.
    private func requireAccount(re: RequestID?) -> Bool {
        guard isAccount else {
            output?.sendError(ProtocolError(.accountRequired,
                "stored direct messages are for accounts only: register this name, or log in with its account password", re: re))
            return false
        }
        return true
    }

    /// Runs a database read off the event loop, then answers on it (a `ProtocolError` thrown by
    /// `work` is the answer; anything else is logged and answered `internal`). Later requests
    /// wait, so answers keep the order of requests.
    private func read<Value: Sendable>(re: RequestID?, failure: String, _ work: @escaping @Sendable () throws -> Value,
                                       answer: @escaping @Sendable (any SessionOutput, Value) -> Void) {
        isBusy = true
        server.threadPool.runIfActive(eventLoop: eventLoop, work).whenComplete { [self] result in
            defer { resume() }
            guard case .active = phase, let output else { return }
            switch result {
            case .success(let value):
                answer(output, value)
            case .failure(let error as ProtocolError):
                output.sendError(error)
            case .failure(let error):
                server.logger.error("\(failure): \(error)")
                output.sendError(ProtocolError(.internal, failure, re: re))
            }
        }
    }
}
