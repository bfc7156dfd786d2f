import ChatProtocol
import GRDB

/// A user as stored: the name as spelled at first login.
public struct UserRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String

    public init(id: Int64, name: String) {
        self.id = id
        self.name = name
    }
}

/// A room as stored.
public struct RoomRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String

    public init(id: Int64, name: String) {
        self.id = id
        self.name = name
    }
    /// The hidden room that holds the direct messages between two users (PROTOCOL.md, Direct
    /// messages): `@<lower id>:<higher id>`, never a valid room name. The same in every store.
    public static func conversationName(_ first: Int64, _ second: Int64) -> String {
        "@\(min(first, second)):\(max(first, second))"
    }
}

extension ChatDatabase {
    /// Records a login by `name` (case-insensitively the same user as before, if any): creates
    /// the user on first sight, updates its last-seen time, and returns it as first spelled.
    public func recordLogin(name: String) async throws -> UserRecord {
        try await committer.run { db, timestamp in try Self.upsertUser(name: name, timestamp: timestamp, db) }
    }

    /// Records a login in the next group commit; `completion` runs after the commit.
    public func recordLogin(name: String, completion: @escaping @Sendable (Result<UserRecord, any Error>) -> Void) {
        committer.submit({ db, timestamp in try Self.upsertUser(name: name, timestamp: timestamp, db) }, completion: completion)
    }

    /// Records that the user was last seen now (at logout).
    public func recordLogout(userID: Int64, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        committer.submit({ db, timestamp in
            try db.execute(sql: "UPDATE users SET last_seen = ? WHERE id = ?", arguments: [timestamp, userID])
        }, completion: completion)
    }

    static func upsertUser(name: String, timestamp: Int64, _ db: Database) throws -> UserRecord {
        let row = try Row.fetchOne(db, sql: """
            INSERT INTO users (name, first_seen, last_seen) VALUES (?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen
            RETURNING id, name
            """, arguments: [name, timestamp, timestamp])
        guard let row else { throw DatabaseError(message: "user upsert returned no row") }
        return UserRecord(id: row[0], name: row[1])
    }

    /// The stored user with this name (case-insensitive), if any.
    public func user(named name: String) throws -> UserRecord? {
        try reader.read { db in
            try Row.fetchOne(db, sql: "SELECT id, name FROM users WHERE name = ?", arguments: [name])
                .map { UserRecord(id: $0[0], name: $0[1]) }
        }
    }

    /// Returns the room named `name`, creating it when missing.
    public func ensureRoom(named name: String) async throws -> RoomRecord {
        try await committer.run { db, timestamp in try Self.upsertRoom(name: name, timestamp: timestamp, db) }
    }

    /// Returns the room named `name` through `completion`, creating it when missing.
    public func ensureRoom(named name: String, completion: @escaping @Sendable (Result<RoomRecord, any Error>) -> Void) {
        committer.submit({ db, timestamp in try Self.upsertRoom(name: name, timestamp: timestamp, db) }, completion: completion)
    }

    static func upsertRoom(name: String, timestamp: Int64, _ db: Database) throws -> RoomRecord {
        let row = try Row.fetchOne(db, sql: """
            INSERT INTO rooms (name, created_at) VALUES (?, ?)
            ON CONFLICT (name) DO UPDATE SET name = excluded.name
            RETURNING id, name
            """, arguments: [name, timestamp])
        guard let row else { throw DatabaseError(message: "room upsert returned no row") }
        return RoomRecord(id: row[0], name: row[1])
    }

    /// The stored room with this (canonical) name, if any.
    public func room(named name: String) throws -> RoomRecord? {
        try reader.read { db in
            try Row.fetchOne(db, sql: "SELECT id, name FROM rooms WHERE name = ?", arguments: [name])
                .map { RoomRecord(id: $0[0], name: $0[1]) }
        }
    }

    /// How many rooms exist (direct conversations not counted).
    public func roomCount() throws -> Int {
        try reader.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rooms WHERE id NOT IN (SELECT room_id FROM conversations)") ?? 0
        }
    }

    /// Whether a user with this name exists, and its account if it is one: what a login needs
    /// to know before it is recorded.
    public func loginLookup(name: String) throws -> (isKnown: Bool, account: AccountRecord?) {
        try reader.read { db in
            let account = try Self.fetchAccount(named: name, db)
            if account != nil { return (true, account) }
            let known = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)", arguments: [name]) ?? false
            return (known, nil)
        }
    }

    /// Every room with its message count, by name.
    public func roomsWithMessageCounts() throws -> [(room: RoomRecord, messages: Int)] {
        try reader.read { db in
            try Row.fetchAll(db, sql: """
                SELECT r.id, r.name, (SELECT COUNT(*) FROM messages m WHERE m.room_id = r.id)
                FROM rooms r WHERE r.id NOT IN (SELECT room_id FROM conversations) ORDER BY r.name
                """).map { (RoomRecord(id: $0[0], name: $0[1]), $0[2]) }
        }
    }

    /// The newest message id of `roomID` that `userID` had been sent when it last left, if any.
    public func readMarker(userID: Int64, roomID: Int64) throws -> Int64? {
        try reader.read { db in
            try Int64.fetchOne(db, sql: "SELECT last_id FROM read_markers WHERE user_id = ? AND room_id = ?",
                               arguments: [userID, roomID])
        }
    }

    /// The time of the newest message of the room the user's read marker covers (IRC's
    /// `MARKREAD`), or nil with no marker or nothing read.
    public func readMarkerTime(userID: Int64, roomID: Int64) throws -> Int64? {
        try reader.read { db in
            try Int64.fetchOne(db, sql: """
                SELECT m.ts FROM messages m
                WHERE m.id = (SELECT MAX(id) FROM messages WHERE room_id = ?2
                              AND id <= (SELECT last_id FROM read_markers WHERE user_id = ?1 AND room_id = ?2))
                """, arguments: [userID, roomID])
        }
    }

    /// Records the read marker in the next group commit.
    public func setReadMarker(userID: Int64, roomID: Int64, lastID: Int64, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        committer.submit({ db, _ in try Self.upsertReadMarker(userID: userID, roomID: roomID, lastID: lastID, db) }, completion: completion)
    }

    /// Records the read marker and returns once it is committed.
    public func setReadMarker(userID: Int64, roomID: Int64, lastID: Int64) async throws {
        try await committer.run { db, _ in try Self.upsertReadMarker(userID: userID, roomID: roomID, lastID: lastID, db) }
    }

    static func upsertReadMarker(userID: Int64, roomID: Int64, lastID: Int64, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO read_markers (user_id, room_id, last_id) VALUES (?, ?, ?)
            ON CONFLICT (user_id, room_id) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)
            """).execute(arguments: [userID, roomID, lastID])
    }
}
