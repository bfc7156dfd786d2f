import ChatProtocol
import GRDB

extension ChatDatabase {
    /// Calls `body` with every message matching `filter`, in id order, reading one row at a
    /// time in a single consistent snapshot: memory stays flat however large the transcript.
    public func forEachMessage(matching filter: MessageFilter = MessageFilter(), _ body: (ChatMessage) throws -> Void) throws {
        let (conditions, arguments) = filter.conditions()
        let sql = """
            SELECT \(Self.messageColumns)
            FROM messages m
            \(Self.messageJoins)
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY m.id
            """
        try reader.read { db in
            let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try rows.next() {
                try body(Self.message(row))
            }
        }
    }

    /// How many messages match `filter`.
    public func countMessages(matching filter: MessageFilter = MessageFilter()) throws -> Int {
        let (conditions, arguments) = filter.conditions()
        return try reader.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM messages m
                \(Self.messageJoins)
                \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
                """, arguments: arguments) ?? 0
        }
    }
}
