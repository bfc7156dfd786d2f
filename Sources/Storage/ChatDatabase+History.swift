import ChatProtocol
import GRDB

/// A slice of a room's history, oldest first; `more` tells whether further messages qualified.
public struct HistorySlice: Sendable, Equatable {
    public var messages: [ChatMessage]
    public var more: Bool

    public init(messages: [ChatMessage], more: Bool) {
        self.messages = messages
        self.more = more
    }

    /// A slice from up to `limit + 1` messages read in id order (`newestFirst`: descending):
    /// the extra one only tells that more qualified; oldest first either way.
    public init(probed messages: [ChatMessage], limit: Int, newestFirst: Bool) {
        var messages = messages
        more = messages.count > limit
        if more { messages.removeLast() }
        self.messages = newestFirst ? messages.reversed() : messages
    }
}

extension ChatDatabase {
    /// The newest `limit` messages of a room with an id in `(after, upTo]`, oldest first;
    /// `more` is true when older ones in that range were left out. This is the replay a
    /// joiner gets: `upTo` is the last message the room delivered live before the join.
    public func newestMessages(room: RoomRecord, after: Int64 = 0, upTo: Int64 = .max, limit: Int) throws -> HistorySlice {
        guard limit > 0 else {
            let any = try reader.read { db in
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM messages WHERE room_id = ? AND id > ? AND id <= ?)",
                                  arguments: [room.id, after, upTo]) ?? false
            }
            return HistorySlice(messages: [], more: any)
        }
        let messages = try reader.read { db in
            try Self.fetchMessages(db, room: room, sql: """
                SELECT m.id, m.ts, m.kind, m.text, u.name
                FROM messages m CROSS JOIN users u ON u.id = m.user_id
                WHERE m.room_id = ? AND m.id > ? AND m.id <= ?
                ORDER BY m.id DESC LIMIT ?
                """, arguments: [room.id, after, upTo, limit + 1])
        }
        return HistorySlice(probed: messages, limit: limit, newestFirst: true)
    }

    /// The oldest `limit` messages of a room with an id in `(after, upTo]`, oldest first; `more`
    /// is true when newer ones in that range exist beyond them.
    public func oldestMessages(room: RoomRecord, after: Int64, upTo: Int64 = .max, limit: Int) throws -> HistorySlice {
        let messages = try reader.read { db in
            try Self.fetchMessages(db, room: room, sql: """
                SELECT m.id, m.ts, m.kind, m.text, u.name
                FROM messages m CROSS JOIN users u ON u.id = m.user_id
                WHERE m.room_id = ? AND m.id > ? AND m.id <= ?
                ORDER BY m.id ASC LIMIT ?
                """, arguments: [room.id, after, upTo, max(limit, 0) + 1])
        }
        return HistorySlice(probed: messages, limit: limit, newestFirst: false)
    }

    /// The id of the first message at or after the point (one past the newest when none is).
    public func firstID(atOrAfter point: HistoryPoint) throws -> Int64 {
        switch point {
        case .id(let id): return id
        case .time(let time):
            return try reader.read { db in
                try Int64.fetchOne(db, sql: "SELECT MIN(id) FROM messages WHERE ts >= ?", arguments: [time])
                    ?? (Int64.fetchOne(db, sql: "SELECT MAX(id) FROM messages") ?? 0) + 1
            }
        }
    }

    private static func fetchMessages(_ db: Database, room: RoomRecord, sql: String, arguments: StatementArguments) throws -> [ChatMessage] {
        let statement = try db.cachedStatement(sql: sql)
        statement.setUncheckedArguments(arguments)
        var messages: [ChatMessage] = []
        let rows = try Row.fetchCursor(statement)
        while let row = try rows.next() {
            messages.append(ChatMessage(
                id: row[0], timestamp: row[1], room: room.name, from: row[4],
                kind: MessageKind(rawValue: row[2]) ?? .text, text: row[3]))
        }
        return messages
    }
}
