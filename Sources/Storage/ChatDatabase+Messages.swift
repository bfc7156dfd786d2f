import ChatProtocol
import GRDB

/// A message to store: the server has checked the room, the author and the text.
public struct MessageDraft: Sendable, Equatable {
    public var roomID: Int64
    public var userID: Int64
    public var kind: MessageKind
    public var text: String
    /// The author's name: when the user record is gone (`chat-admin forget` while the author
    /// is online), the message is stored under a new record of that name instead of failing.
    public var authorName: String?
    /// The client's nonce (PROTOCOL.md, Sending exactly once): when the author has a message with
    /// it from the last 24 hours, that message is the answer and nothing is stored.
    public var nonce: String?

    public init(roomID: Int64, userID: Int64, kind: MessageKind, text: String, authorName: String? = nil, nonce: String? = nil) {
        self.roomID = roomID
        self.userID = userID
        self.kind = kind
        self.text = text
        self.authorName = authorName
        self.nonce = nonce
    }
}

/// How long a nonce keeps a message from being stored twice.
public let nonceLifetime: Int64 = 24 * 3600 * 1000

/// The message a store found holding a draft's nonce (the same author's), and what that means
/// for the draft: SQLite and PostgreSQL decide it alike.
public struct NonceHolder: Sendable {
    public var id: Int64
    public var timestamp: Int64
    public var roomID: Int64
    public var kind: MessageKind
    public var text: String

    public init(id: Int64, timestamp: Int64, roomID: Int64, kind: MessageKind, text: String) {
        self.id = id
        self.timestamp = timestamp
        self.roomID = roomID
        self.kind = kind
        self.text = text
    }

    /// Whether it still holds the nonce at `now` (for 24 hours); else the nonce is free again.
    public func holdsNonce(at now: Int64) -> Bool {
        timestamp > now - nonceLifetime
    }

    /// The answer to `draft`, whose `nonce` this message holds: the message as committed, or
    /// `StorageError.nonceReused` when it is in another room or conversation.
    public func answer(to draft: MessageDraft, nonce: String) throws -> CommittedMessage {
        guard roomID == draft.roomID else { throw StorageError.nonceReused(nonce: nonce) }
        return CommittedMessage(id: id, timestamp: timestamp, original: OriginalMessage(kind: kind, text: text))
    }
}

/// A message the same author had committed with the same nonce: what it said.
public struct OriginalMessage: Sendable, Equatable {
    public var kind: MessageKind
    public var text: String

    public init(kind: MessageKind, text: String) {
        self.kind = kind
        self.text = text
    }
}

/// What the commit gave a message: its id and time (and the author's record, when it had to
/// be made again).
public struct CommittedMessage: Sendable, Equatable {
    public var id: Int64
    public var timestamp: Int64
    /// Set when the author's user record had been erased and was created anew.
    public var recreatedAuthor: UserRecord?
    /// Set when the draft's nonce named a message committed before: `id` and `timestamp` are
    /// that message's, nothing new was stored, and this is what it said.
    public var original: OriginalMessage?

    public init(id: Int64, timestamp: Int64, recreatedAuthor: UserRecord? = nil, original: OriginalMessage? = nil) {
        self.id = id
        self.timestamp = timestamp
        self.recreatedAuthor = recreatedAuthor
        self.original = original
    }
}

extension ChatDatabase {
    /// Stores `draft` in the next group commit; `completion` runs once it is committed (on the
    /// writer's thread: hand work elsewhere quickly).
    public func appendMessage(_ draft: MessageDraft, completion: @escaping @Sendable (Result<CommittedMessage, any Error>) -> Void) {
        committer.submit(lane: draft.userID, { db, timestamp in try Self.insert(draft, timestamp: timestamp, db) }, completion: completion)
    }

    /// Stores `draft` and returns it as committed.
    public func appendMessage(_ draft: MessageDraft) async throws -> CommittedMessage {
        try await committer.run { db, timestamp in try Self.insert(draft, timestamp: timestamp, db) }
    }

    /// Stores `drafts` in order, in one transaction.
    public func appendMessages(_ drafts: [MessageDraft]) async throws -> [CommittedMessage] {
        try await committer.run { db, timestamp in
            try drafts.map { try Self.insert($0, timestamp: timestamp, db) }
        }
    }

    static func insert(_ draft: MessageDraft, timestamp: Int64, _ db: Database) throws -> CommittedMessage {
        if let nonce = draft.nonce, let earlier = try Row.fetchOne(
            db, sql: "SELECT id, ts, room_id, kind, text FROM messages WHERE user_id = ? AND nonce = ?", arguments: [draft.userID, nonce]) {
            let holder = NonceHolder(id: earlier[0], timestamp: earlier[1], roomID: earlier[2],
                                     kind: MessageKind(rawValue: earlier[3]) ?? .text, text: earlier[4])
            if holder.holdsNonce(at: timestamp) { return try holder.answer(to: draft, nonce: nonce) }
            try db.execute(sql: "UPDATE messages SET nonce = NULL WHERE id = ?", arguments: [holder.id])
        }
        let statement = try db.cachedStatement(
            sql: "INSERT INTO messages (room_id, user_id, kind, ts, text, nonce) VALUES (?, ?, ?, ?, ?, ?)")
        statement.setUncheckedArguments([draft.roomID, draft.userID, draft.kind.rawValue, timestamp, draft.text, draft.nonce])
        do {
            try statement.execute()
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY {
            // Only the failed statement was undone; the batch's transaction goes on.
            guard let name = draft.authorName, try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)",
                                                                  arguments: [draft.userID])! else { throw error }
            let author = try upsertUser(name: name, timestamp: timestamp, db)
            var retry = draft
            retry.userID = author.id
            retry.authorName = nil
            var committed = try insert(retry, timestamp: timestamp, db)
            committed.recreatedAuthor = author
            return committed
        }
        return CommittedMessage(id: db.lastInsertedRowID, timestamp: timestamp)
    }

    /// The newest message id of the whole database (0 when empty).
    public func newestMessageID() throws -> Int64 {
        try reader.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM messages") ?? 0 }
    }
}
