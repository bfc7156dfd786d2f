import ChatProtocol
import GRDB

/// Which messages a search, an export or a prune is about. Times are milliseconds since the
/// epoch; `since` is inclusive, `until` exclusive.
public struct MessageFilter: Sendable, Equatable {
    public var room: String?
    public var user: String?
    public var since: Int64?
    public var until: Int64?

    public init(room: String? = nil, user: String? = nil, since: Int64? = nil, until: Int64? = nil) {
        self.room = room
        self.user = user
        self.since = since
        self.until = until
    }

    /// SQL conditions on `m` (messages), `r` (rooms) and `u` (users), and their arguments.
    func conditions() -> (sql: [String], arguments: StatementArguments) {
        var sql: [String] = []
        var arguments = StatementArguments()
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

    public static let highlightStart = "\u{1}"
    public static let highlightEnd = "\u{2}"
}

extension ChatDatabase {
    /// Full-text search (FTS5 query syntax), newest first, at most `limit` hits (nil: all).
    /// A query SQLite cannot parse is `StorageError.invalidSearchQuery`.
    public func search(_ query: String, filter: MessageFilter = MessageFilter(), limit: Int? = nil) throws -> [SearchHit] {
        let (conditions, filterArguments) = filter.conditions()
        let sql = """
            SELECT m.id, m.ts, r.name, u.name, m.kind, m.text,
                   highlight(messages_fts, 0, char(1), char(2))
            FROM messages_fts
            JOIN messages m ON m.id = messages_fts.rowid
            JOIN rooms r ON r.id = m.room_id
            JOIN users u ON u.id = m.user_id
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
                    SearchHit(message: Self.message(row), highlightedText: row[6])
                }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR {
            throw StorageError.invalidSearchQuery(query: query, reason: error.message ?? "syntax error")
        }
    }

    /// A message from a row of `id, ts, room, from, kind, text`.
    static func message(_ row: Row) -> ChatMessage {
        ChatMessage(id: row[0], timestamp: row[1], room: row[2], from: row[3],
                    kind: MessageKind(rawValue: row[4]) ?? .text, text: row[5])
    }
}
