import ChatProtocol
import Foundation
import PostgresNIO
import Storage

/// The server's reads and writes (`ChatStore`) on PostgreSQL: the same answers as the SQLite
/// store gives, from the schema in `migrations/postgres/`.
extension PostgresStore {
    // MARK: Writes

    public func appendMessage(_ draft: MessageDraft, completion: @escaping @Sendable (Result<CommittedMessage, any Error>) -> Void) {
        committer.submit(.room(draft, completion))
    }

    public func appendDirectMessage(from sender: UserRecord, to recipientName: String, kind: MessageKind, text: String, nonce: String?,
                                    completion: @escaping @Sendable (Result<CommittedDirectMessage, any Error>) -> Void) {
        committer.submit(.direct(sender: sender, recipient: recipientName, kind: kind, text: text, nonce: nonce, completion))
    }

    public func recordLogin(name: String, completion: @escaping @Sendable (Result<UserRecord, any Error>) -> Void) {
        complete(completion) { try await self.upsertUser(name: name) }
    }

    public func recordLogout(userID: Int64, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        complete(completion) {
            try await self.client.query("UPDATE users SET last_seen = \(Timestamp.now()) WHERE id = \(userID)", logger: self.logger)
        }
    }

    public func registerAccount(userID: Int64, password: PasswordHash, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        complete(completion) { try await self.insertAccount(userID: userID, password: password) }
    }

    func insertAccount(userID: Int64, password: PasswordHash) async throws {
        let now = Timestamp.now()
        let rows = try await client.query("""
            INSERT INTO accounts (user_id, algorithm, salt, hash, cost, block_size, parallelism, created_at, updated_at)
            VALUES (\(userID), 'scrypt', \(Data(password.salt)), \(Data(password.hash)), \(password.cost), \(password.blockSize),
                    \(password.parallelism), \(now), \(now))
            ON CONFLICT (user_id) DO NOTHING
            RETURNING (SELECT name FROM users WHERE id = \(userID))
            """, logger: logger)
        for try await _ in rows.decode(String.self) { return }
        let name = try await fetchUserName(id: userID) ?? String(userID)
        throw StorageError.accountExists(name: name)
    }

    public func upgradePassword(userID: Int64, replacing old: PasswordHash, with new: PasswordHash,
                                completion: @escaping @Sendable (Result<Bool, any Error>) -> Void) {
        complete(completion) {
            let rows = try await self.client.query("""
                UPDATE accounts SET salt = \(Data(new.salt)), hash = \(Data(new.hash)), cost = \(new.cost),
                    block_size = \(new.blockSize), parallelism = \(new.parallelism), updated_at = \(Timestamp.now())
                WHERE user_id = \(userID) AND salt = \(Data(old.salt)) AND hash = \(Data(old.hash)) RETURNING user_id
                """, logger: self.logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    public func ensureRoom(named name: String, completion: @escaping @Sendable (Result<RoomRecord, any Error>) -> Void) {
        complete(completion) { try await self.upsertRoom(name: name, isDirect: false) }
    }

    public func setReadMarker(userID: Int64, roomID: Int64, lastID: Int64, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        complete(completion) {
            try await self.client.query("""
                INSERT INTO read_markers (user_id, room_id, last_id) VALUES (\(userID), \(roomID), \(lastID))
                ON CONFLICT (user_id, room_id) DO UPDATE SET last_id = GREATEST(read_markers.last_id, EXCLUDED.last_id)
                """, logger: self.logger)
        }
    }

    public func prune(before: Int64, room: String?, dryRun: Bool) throws -> Int {
        try blocking {
            let rows: PostgresRowSequence
            if dryRun {
                rows = try await self.client.query("""
                    SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id
                    WHERE m.ts < \(before) AND (\(room)::text IS NULL OR r.name = \(room))
                    """, logger: self.logger)
            } else {
                rows = try await self.client.query("""
                    WITH gone AS (
                        DELETE FROM messages m USING rooms r
                        WHERE r.id = m.room_id AND m.ts < \(before) AND (\(room)::text IS NULL OR r.name = \(room))
                        RETURNING 1)
                    SELECT count(*) FROM gone
                    """, logger: self.logger)
            }
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// Returns once the messages handed in, the presence announced and every other request
    /// under way (read markers, logouts, accounts) are done.
    public func waitForPendingWrites() async throws {
        await committer.waitForPendingWrites()
        await announcementsWritten()
        await requests.drained()
    }

    // MARK: Reads

    public func newestMessageID() throws -> Int64 {
        try blocking { try await self.newestMessageID() }
    }

    public func user(named name: String) throws -> UserRecord? {
        try blocking { try await self.fetchUser(named: name) }
    }

    public func room(named name: String) throws -> RoomRecord? {
        try blocking {
            let rows = try await self.client.query("SELECT id, name FROM rooms WHERE name = \(name)", logger: self.logger)
            for try await (id, name) in rows.decode((Int64, String).self) { return RoomRecord(id: id, name: name) }
            return nil
        }
    }

    public func roomCount() throws -> Int {
        try blocking {
            let rows = try await self.client.query("SELECT count(*) FROM rooms WHERE NOT is_direct", logger: self.logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    public func roomsWithMessageCounts() throws -> [(room: RoomRecord, messages: Int)] {
        try blocking {
            let rows = try await self.client.query("""
                SELECT r.id, r.name, (SELECT count(*) FROM messages m WHERE m.room_id = r.id)
                FROM rooms r WHERE NOT r.is_direct ORDER BY r.name
                """, logger: self.logger)
            var rooms: [(room: RoomRecord, messages: Int)] = []
            for try await (id, name, count) in rows.decode((Int64, String, Int64).self) {
                rooms.append((RoomRecord(id: id, name: name), Int(count)))
            }
            return rooms
        }
    }

    public func loginLookup(name: String) throws -> (isKnown: Bool, account: AccountRecord?) {
        try blocking {
            let rows = try await self.client.query("""
                SELECT u.id, u.name, a.salt, a.hash, a.cost, a.block_size, a.parallelism
                FROM users u LEFT JOIN accounts a ON a.user_id = u.id WHERE u.name_key = \(Names.userKey(name))
                """, logger: self.logger)
            for try await (id, name, salt, hash, cost, blockSize, parallelism) in rows.decode(
                (Int64, String, Data?, Data?, Int32?, Int32?, Int32?).self) {
                guard let salt, let hash, let cost, let blockSize, let parallelism else { return (true, nil) }
                let password = PasswordHash(salt: [UInt8](salt), hash: [UInt8](hash), cost: Int(cost), blockSize: Int(blockSize),
                                            parallelism: Int(parallelism))
                return (true, AccountRecord(user: UserRecord(id: id, name: name), password: password))
            }
            return (false, nil)
        }
    }

    public func readMarker(userID: Int64, roomID: Int64) throws -> Int64? {
        try blocking {
            let rows = try await self.client.query(
                "SELECT last_id FROM read_markers WHERE user_id = \(userID) AND room_id = \(roomID)", logger: self.logger)
            for try await id in rows.decode(Int64.self) { return id }
            return nil
        }
    }

    public func readMarkerTime(userID: Int64, roomID: Int64) throws -> Int64? {
        try blocking {
            let rows = try await self.client.query("""
                SELECT m.ts FROM messages m
                WHERE m.id = (SELECT max(id) FROM messages WHERE room_id = \(roomID)
                              AND id <= (SELECT last_id FROM read_markers WHERE user_id = \(userID) AND room_id = \(roomID)))
                """, logger: self.logger)
            for try await ts in rows.decode(Int64.self) { return ts }
            return nil
        }
    }

    public func newestMessages(room: RoomRecord, after: Int64, upTo: Int64, limit: Int) throws -> HistorySlice {
        try blocking {
            let messages = try await self.roomMessages(room, after: after, upTo: upTo, limit: max(limit, 0) + 1, newestFirst: true)
            return HistorySlice(probed: messages, limit: limit, newestFirst: true)
        }
    }

    public func oldestMessages(room: RoomRecord, after: Int64, upTo: Int64, limit: Int) throws -> HistorySlice {
        try blocking {
            let messages = try await self.roomMessages(room, after: after, upTo: upTo, limit: max(limit, 0) + 1, newestFirst: false)
            return HistorySlice(probed: messages, limit: limit, newestFirst: false)
        }
    }

    public func firstID(atOrAfter point: HistoryPoint) throws -> Int64 {
        switch point {
        case .id(let id): return id
        case .time(let time):
            return try blocking {
                let rows = try await self.client.query("""
                    SELECT coalesce((SELECT min(id) FROM messages WHERE ts >= \(time)), (SELECT last_id + 1 FROM message_ids))
                    """, logger: self.logger)
                for try await id in rows.decode(Int64.self) { return id }
                return 1
            }
        }
    }

    public func conversation(between first: Int64, and second: Int64) throws -> RoomRecord? {
        try blocking {
            let (low, high) = (min(first, second), max(first, second))
            let rows = try await self.client.query(
                "SELECT room_id FROM conversations WHERE user_low = \(low) AND user_high = \(high)", logger: self.logger)
            for try await id in rows.decode(Int64.self) { return RoomRecord(id: id, name: RoomRecord.conversationName(low, high)) }
            return nil
        }
    }

    public func conversations(of userID: Int64) throws -> [(with: String, lastID: Int64, lastTimestamp: Int64)] {
        try blocking {
            let rows = try await self.client.query("""
                SELECT name, last_id, (SELECT ts FROM messages WHERE id = last_id) FROM (
                    SELECT u.name AS name, (SELECT max(m.id) FROM messages m WHERE m.room_id = c.room_id) AS last_id
                    FROM conversations c
                    JOIN users u ON u.id = CASE WHEN c.user_low = \(userID) THEN c.user_high ELSE c.user_low END
                    WHERE c.user_low = \(userID) OR c.user_high = \(userID)) AS found
                WHERE last_id IS NOT NULL ORDER BY last_id DESC
                """, logger: self.logger)
            var conversations: [(with: String, lastID: Int64, lastTimestamp: Int64)] = []
            for try await (name, id, ts) in rows.decode((String, Int64, Int64).self) {
                conversations.append((name, id, ts))
            }
            return conversations
        }
    }

    // MARK: Operations

    public func observeCommits(_ observe: @escaping @Sendable (_ jobs: Int, _ seconds: Double) -> Void) {
        committer.observe(observe)
    }

    public var writerQueueDepth: Int { committer.queueDepth }

    // MARK: Helpers

    func upsertUser(name: String) async throws -> UserRecord {
        let now = Timestamp.now()
        let rows = try await client.query("""
            INSERT INTO users (name, name_key, first_seen, last_seen) VALUES (\(name), \(Names.userKey(name)), \(now), \(now))
            ON CONFLICT (name_key) DO UPDATE SET last_seen = EXCLUDED.last_seen
            RETURNING id, name
            """, logger: logger)
        for try await (id, name) in rows.decode((Int64, String).self) { return UserRecord(id: id, name: name) }
        throw PostgresStoreError("no user returned")
    }

    func upsertRoom(name: String, isDirect: Bool) async throws -> RoomRecord {
        let rows = try await client.query("""
            INSERT INTO rooms (name, created, is_direct) VALUES (\(name), \(Timestamp.now()), \(isDirect))
            ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
            RETURNING id, name
            """, logger: logger)
        for try await (id, name) in rows.decode((Int64, String).self) { return RoomRecord(id: id, name: name) }
        throw PostgresStoreError("no room returned")
    }

    func fetchUser(named name: String) async throws -> UserRecord? {
        let rows = try await client.query("SELECT id, name FROM users WHERE name_key = \(Names.userKey(name))", logger: logger)
        for try await (id, name) in rows.decode((Int64, String).self) { return UserRecord(id: id, name: name) }
        return nil
    }

    func fetchUserName(id: Int64) async throws -> String? {
        let rows = try await client.query("SELECT name FROM users WHERE id = \(id)", logger: logger)
        for try await name in rows.decode(String.self) { return name }
        return nil
    }

    /// The conversation room of two users, made on their first direct message.
    func conversationRoom(_ first: Int64, _ second: Int64) async throws -> Int64 {
        let key = PairKey(low: min(first, second), high: max(first, second))
        if let known = conversationRooms.withLock({ $0[key] }) { return known }
        let room = try await upsertRoom(name: RoomRecord.conversationName(key.low, key.high), isDirect: true)
        try await client.query("""
            INSERT INTO conversations (room_id, user_low, user_high) VALUES (\(room.id), \(key.low), \(key.high))
            ON CONFLICT DO NOTHING
            """, logger: logger)
        conversationRooms.withLock { $0[key] = room.id }
        return room.id
    }

    func roomMessages(_ room: RoomRecord, after: Int64, upTo: Int64, limit: Int, newestFirst: Bool) async throws -> [ChatMessage] {
        let rows = newestFirst
            ? try await client.query("""
                SELECT m.id, m.ts, m.kind, m.text, u.name FROM messages m JOIN users u ON u.id = m.user_id
                WHERE m.room_id = \(room.id) AND m.id > \(after) AND m.id <= \(upTo) ORDER BY m.id DESC LIMIT \(limit)
                """, logger: logger)
            : try await client.query("""
                SELECT m.id, m.ts, m.kind, m.text, u.name FROM messages m JOIN users u ON u.id = m.user_id
                WHERE m.room_id = \(room.id) AND m.id > \(after) AND m.id <= \(upTo) ORDER BY m.id ASC LIMIT \(limit)
                """, logger: logger)
        var messages: [ChatMessage] = []
        for try await (id, ts, kind, text, from) in rows.decode((Int64, Int64, Int16, String, String).self) {
            messages.append(ChatMessage(id: id, timestamp: ts, room: room.name, from: from, kind: Self.kind(kind), text: text))
        }
        return messages
    }
}
