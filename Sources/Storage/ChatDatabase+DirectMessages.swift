import ChatProtocol
import GRDB

/// A direct message as committed: its id and time, and the recipient as stored.
public struct CommittedDirectMessage: Sendable, Equatable {
    public var message: CommittedMessage
    public var recipient: UserRecord

    public init(message: CommittedMessage, recipient: UserRecord) {
        self.message = message
        self.recipient = recipient
    }
}

extension ChatDatabase {
    /// Stores a direct message from `sender` to the user named `recipientName` in the next group
    /// commit, creating their conversation on the first one. Fails with `StorageError.noSuchUser`
    /// when the database does not know the recipient.
    public func appendDirectMessage(from sender: UserRecord, to recipientName: String, kind: MessageKind, text: String, nonce: String?,
                                    completion: @escaping @Sendable (Result<CommittedDirectMessage, any Error>) -> Void) {
        committer.submit(lane: sender.id, { db, timestamp in
            let statement = try db.cachedStatement(sql: "SELECT id, name FROM users WHERE name = ?")
            statement.setUncheckedArguments([recipientName])
            guard let row = try Row.fetchOne(statement) else { throw StorageError.noSuchUser(name: recipientName) }
            let recipient = UserRecord(id: row[0], name: row[1])
            // The sender's record may have been erased (`forget`) while it is online: make it again.
            var author = sender
            var recreated: UserRecord?
            if try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)", arguments: [sender.id])! {
                author = try Self.upsertUser(name: sender.name, timestamp: timestamp, db)
                recreated = author
            }
            let recipientID = Names.userKey(recipient.name) == Names.userKey(sender.name) ? author.id : recipient.id
            let room = try Self.ensureConversation(author.id, recipientID, timestamp: timestamp, db)
            var message = try Self.insert(MessageDraft(roomID: room.id, userID: author.id, kind: kind, text: text, nonce: nonce), timestamp: timestamp, db)
            message.recreatedAuthor = recreated
            return CommittedDirectMessage(message: message, recipient: recipient)
        }, completion: completion)
    }

    static func ensureConversation(_ first: Int64, _ second: Int64, timestamp: Int64, _ db: Database) throws -> RoomRecord {
        let (low, high) = (min(first, second), max(first, second))
        let lookup = try db.cachedStatement(sql: "SELECT room_id FROM conversations WHERE user_low = ? AND user_high = ?")
        lookup.setUncheckedArguments([low, high])
        let name = RoomRecord.conversationName(low, high)
        if let roomID = try Int64.fetchOne(lookup) { return RoomRecord(id: roomID, name: name) }
        let room = try upsertRoom(name: name, timestamp: timestamp, db)
        try db.execute(sql: "INSERT INTO conversations (room_id, user_low, user_high) VALUES (?, ?, ?)", arguments: [room.id, low, high])
        return room
    }

    /// The conversation between two users, if either ever wrote to the other.
    public func conversation(between first: Int64, and second: Int64) throws -> RoomRecord? {
        try reader.read { db in
            try Int64.fetchOne(db, sql: "SELECT room_id FROM conversations WHERE user_low = ? AND user_high = ?",
                               arguments: [min(first, second), max(first, second)])
                .map { RoomRecord(id: $0, name: RoomRecord.conversationName(first, second)) }
        }
    }

    /// The hidden room names of every conversation, oldest first (for grouped exports).
    public func conversationRoomNames() throws -> [String] {
        try reader.read { db in
            try String.fetchAll(db, sql: "SELECT r.name FROM conversations c JOIN rooms r ON r.id = c.room_id ORDER BY c.room_id")
        }
    }

    /// The users `userID` has direct messages with, and the newest message id of each, newest first.
    public func conversations(of userID: Int64) throws -> [(with: String, lastID: Int64, lastTimestamp: Int64)] {
        try reader.read { db in
            try Row.fetchAll(db, sql: """
                SELECT name, last_id, (SELECT ts FROM messages WHERE id = last_id) FROM (
                    SELECT u.name AS name, (SELECT MAX(m.id) FROM messages m WHERE m.room_id = c.room_id) AS last_id
                    FROM conversations c
                    JOIN users u ON u.id = CASE WHEN c.user_low = ?1 THEN c.user_high ELSE c.user_low END
                    WHERE c.user_low = ?1 OR c.user_high = ?1)
                WHERE last_id IS NOT NULL ORDER BY last_id DESC
                """, arguments: [userID]).map { (with: $0[0], lastID: $0[1], lastTimestamp: $0[2]) }
        }
    }
}
