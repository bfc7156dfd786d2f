import ChatProtocol
import GRDB

/// Which messages a search, an export or a prune is about. Times are milliseconds since the
/// epoch; `since` is inclusive, `until` exclusive.
public struct MessageFilter: Sendable, Equatable {
    public var room: String?
    public var user: String?
    public var since: Int64?
    public var until: Int64?
    /// Which direct messages may match besides the rooms' messages.
    public var directMessages: DirectMessages

    /// Direct messages are private: the admin tool sees them all, a user only its own.
    public enum DirectMessages: Sendable, Equatable {
        case all
        case none
        /// Only the conversations of this user id.
        case of(Int64)
        /// Only the conversation of these two user ids.
        case between(Int64, Int64)
    }

    public init(room: String? = nil, user: String? = nil, since: Int64? = nil, until: Int64? = nil, directMessages: DirectMessages = .all) {
        self.room = room
        self.user = user
        self.since = since
        self.until = until
        self.directMessages = directMessages
    }

    /// SQL conditions on `m` (messages), `r` (rooms) and `u` (users), and their arguments.
    func conditions() -> (sql: [String], arguments: StatementArguments) {
        var sql: [String] = []
        var arguments = StatementArguments()
        // Conversations are rooms named '@…' (migration 0002): the name tells, without a join.
        switch directMessages {
        case .all:
            break
        case .none:
            sql.append("substr(r.name, 1, 1) <> '@'")
        case .of(let userID):
            sql.append("(substr(r.name, 1, 1) <> '@' OR m.room_id IN (SELECT room_id FROM conversations WHERE user_low = ? OR user_high = ?))")
            arguments += [userID, userID]
        case .between(let first, let second):
            sql.append("m.room_id = (SELECT room_id FROM conversations WHERE user_low = ? AND user_high = ?)")
            arguments += [min(first, second), max(first, second)]
        }
        if let room {
            sql.append("r.name = ?")
            arguments += [room]
        }
        if let user {
            sql.append("u.name = ?")
            arguments += [user]
        }
        if let since {
            sql.append("m.ts >= ?")
            arguments += [since]
        }
        if let until {
            sql.append("m.ts < ?")
            arguments += [until]
        }
        return (sql, arguments)
    }
}

/// A search hit: the message, and its text with the matched words between `highlightStart`
/// and `highlightEnd` markers.
public struct SearchHit: Sendable, Equatable {
    public var message: ChatMessage
    public var highlightedText: String

    public init(message: ChatMessage, highlightedText: String) {
        self.message = message
        self.highlightedText = highlightedText
    }

    public static let highlightStart = "\u{1}"
    public static let highlightEnd = "\u{2}"
}

extension ChatDatabase {
    /// Full-text search (FTS5 query syntax), newest first, at most `limit` hits (nil: all).
    /// A query SQLite cannot parse is `StorageError.invalidSearchQuery`.
    public func search(_ query: String, filter: MessageFilter = MessageFilter(), limit: Int? = nil) throws -> [SearchHit] {
        let (conditions, filterArguments) = filter.conditions()
        let sql = """
            SELECT \(Self.messageColumns), highlight(messages_fts, 0, char(1), char(2))
            FROM messages_fts
            JOIN messages m ON m.id = messages_fts.rowid
            \(Self.messageJoins)
            WHERE messages_fts MATCH ?\(conditions.map { " AND \($0)" }.joined())
            ORDER BY messages_fts.rowid DESC
            LIMIT ?
            """
        var arguments: StatementArguments = [query]
        arguments += filterArguments
        arguments += [limit ?? -1]
        do {
            return try reader.read { db in
                try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                    SearchHit(message: Self.message(row), highlightedText: row[7])
                }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR {
            throw StorageError.invalidSearchQuery(query: query, reason: error.message ?? "syntax error")
        }
    }

    /// The columns `message(_:)` reads, from `m` and the tables of `messageJoins`. A direct
    /// message's recipient (the other user of the conversation, or the author itself) is looked
    /// up only for rows of a conversation: exports and searches of rooms pay nothing for it.
    static let messageColumns = """
        m.id, m.ts, r.name, u.name, m.kind, m.text,
        CASE WHEN substr(r.name, 1, 1) = '@' THEN (
            SELECT t.name FROM conversations c
            JOIN users t ON t.id = CASE WHEN c.user_low = m.user_id THEN c.user_high ELSE c.user_low END
            WHERE c.room_id = m.room_id) END
        """

    /// Joins a message `m` to its room `r` and author `u`.
    static let messageJoins = """
        JOIN rooms r ON r.id = m.room_id
        JOIN users u ON u.id = m.user_id
        """

    /// A message from a row of `messageColumns`.
    static func message(_ row: Row) -> ChatMessage {
        let to: String? = row[6]
        return ChatMessage(id: row[0], timestamp: row[1], room: to == nil ? row[2] : "", from: row[3], to: to,
                           kind: MessageKind(rawValue: row[4]) ?? .text, text: row[5])
    }
}
