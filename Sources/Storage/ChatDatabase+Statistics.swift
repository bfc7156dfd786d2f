import GRDB

/// Activity of one room or one user.
public struct ActivitySummary: Sendable, Equatable {
    public var name: String
    public var messages: Int
    /// Milliseconds since the epoch of the first and last message (nil without messages).
    public var firstMessage: Int64?
    public var lastMessage: Int64?

    public init(name: String, messages: Int, firstMessage: Int64?, lastMessage: Int64?) {
        self.name = name
        self.messages = messages
        self.firstMessage = firstMessage
        self.lastMessage = lastMessage
    }
}

/// A user with its activity.
public struct UserSummary: Sendable, Equatable {
    public var name: String
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var messages: Int

    public init(name: String, firstSeen: Int64, lastSeen: Int64, messages: Int) {
        self.name = name
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.messages = messages
    }
}

/// Messages of one UTC day.
public struct DailyCount: Sendable, Equatable {
    /// Days since 1970-01-01.
    public var day: Int64
    public var messages: Int

    public init(day: Int64, messages: Int) {
        self.day = day
        self.messages = messages
    }
}

/// Everything `chat-admin stats` shows.
public struct Statistics: Sendable, Equatable {
    public var messages: Int
    public var users: Int
    public var rooms: Int
    public var firstMessage: Int64?
    public var lastMessage: Int64?
    public var perRoom: [ActivitySummary]
    public var perUser: [ActivitySummary]
    public var perDay: [DailyCount]

    public init(messages: Int, users: Int, rooms: Int, firstMessage: Int64?, lastMessage: Int64?, perRoom: [ActivitySummary], perUser: [ActivitySummary], perDay: [DailyCount]) {
        self.messages = messages
        self.users = users
        self.rooms = rooms
        self.firstMessage = firstMessage
        self.lastMessage = lastMessage
        self.perRoom = perRoom
        self.perUser = perUser
        self.perDay = perDay
    }
}

extension ChatDatabase {
    /// Totals, per-room, per-user and per-day counts, in one consistent snapshot.
    public func statistics() throws -> Statistics {
        try reader.read { db in
            // Message times follow ids, so a group's first and last times are those of its
            // smallest and largest ids: the covering indexes answer without reading the table.
            func activity(_ sql: String) throws -> [ActivitySummary] {
                try Row.fetchAll(db, sql: sql).map { row in
                    ActivitySummary(name: row[0], messages: row[1], firstMessage: row[2], lastMessage: row[3])
                }
            }
            let perRoom = try activity("""
                SELECT r.name, COALESCE(g.n, 0),
                       (SELECT ts FROM messages WHERE id = g.first_id), (SELECT ts FROM messages WHERE id = g.last_id)
                FROM rooms r LEFT JOIN (
                    SELECT room_id, COUNT(*) AS n, MIN(id) AS first_id, MAX(id) AS last_id FROM messages GROUP BY room_id
                ) g ON g.room_id = r.id
                WHERE r.id NOT IN (SELECT room_id FROM conversations)
                ORDER BY COALESCE(g.n, 0) DESC, r.name
                """)
            let perUser = try activity("""
                SELECT u.name, COALESCE(g.n, 0),
                       (SELECT ts FROM messages WHERE id = g.first_id), (SELECT ts FROM messages WHERE id = g.last_id)
                FROM users u LEFT JOIN (
                    SELECT user_id, COUNT(*) AS n, MIN(id) AS first_id, MAX(id) AS last_id FROM messages GROUP BY user_id
                ) g ON g.user_id = u.id
                ORDER BY COALESCE(g.n, 0) DESC, u.name
                """)
            let perDay = try Row.fetchAll(db, sql: """
                SELECT ts / 86400000 AS day, COUNT(*) FROM messages GROUP BY day ORDER BY day
                """).map { DailyCount(day: $0[0], messages: $0[1]) }
            let bounds = try Row.fetchOne(db, sql: """
                SELECT COUNT(*), (SELECT ts FROM messages ORDER BY id LIMIT 1), (SELECT ts FROM messages ORDER BY id DESC LIMIT 1)
                FROM messages
                """)
            return Statistics(
                messages: bounds?[0] ?? 0,
                users: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") ?? 0,
                rooms: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rooms WHERE id NOT IN (SELECT room_id FROM conversations)") ?? 0,
                firstMessage: bounds?[1], lastMessage: bounds?[2],
                perRoom: perRoom, perUser: perUser, perDay: perDay)
        }
    }

    /// Every user with first/last seen and message count, by name.
    public func users() throws -> [UserSummary] {
        try reader.read { db in
            try Row.fetchAll(db, sql: """
                SELECT u.name, u.first_seen, u.last_seen, (SELECT COUNT(*) FROM messages m WHERE m.user_id = u.id)
                FROM users u ORDER BY u.name COLLATE NOCASE
                """).map { UserSummary(name: $0[0], firstSeen: $0[1], lastSeen: $0[2], messages: $0[3]) }
        }
    }
}
