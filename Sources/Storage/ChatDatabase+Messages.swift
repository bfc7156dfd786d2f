import ChatProtocol
import GRDB

/// A message to store: the server has checked the room, the author and the text.
public struct MessageDraft: Sendable, Equatable {
    public var roomID: Int64
    public var userID: Int64
    public var kind: MessageKind
    public var text: String

    public init(roomID: Int64, userID: Int64, kind: MessageKind, text: String) {
        self.roomID = roomID
        self.userID = userID
        self.kind = kind
        self.text = text
    }
}

/// What the commit gave a message: its id and time.
public struct CommittedMessage: Sendable, Equatable {
    public var id: Int64
    public var timestamp: Int64
}

extension ChatDatabase {
    /// Stores `draft` in the next group commit; `completion` runs once it is committed (on the
    /// writer's thread: hand work elsewhere quickly).
    public func appendMessage(_ draft: MessageDraft, completion: @escaping @Sendable (Result<CommittedMessage, any Error>) -> Void) {
        committer.submit({ db, timestamp in try Self.insert(draft, timestamp: timestamp, db) }, completion: completion)
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
        let statement = try db.cachedStatement(
            sql: "INSERT INTO messages (room_id, user_id, kind, ts, text) VALUES (?, ?, ?, ?, ?)")
        statement.setUncheckedArguments([draft.roomID, draft.userID, draft.kind.rawValue, timestamp, draft.text])
        try statement.execute()
        return CommittedMessage(id: db.lastInsertedRowID, timestamp: timestamp)
    }

    /// The newest message id of the whole database (0 when empty).
    public func newestMessageID() throws -> Int64 {
        try reader.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM messages") ?? 0 }
    }
}
