import ChatProtocol
import Foundation
import PostgresNIO
import Storage

/// What `chat-admin` does, on PostgreSQL: the same commands and answers as on SQLite.
extension PostgresStore: AdminStore {
    // MARK: Transcripts

    /// The columns `message(_:)` reads, and the joins they need.
    static let messageSelect = """
        SELECT m.id, m.ts, r.name, u.name, m.kind, m.text,
            \(recipientColumn)
        FROM messages m JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id
        """

    /// Pages of 5,000 by id (keyset), so memory stays flat however long the transcript. Each page
    /// is its own snapshot: messages committed while it runs may be included, never out of order.
    public func forEachMessage(matching filter: MessageFilter, _ body: (ChatMessage) throws -> Void) throws {
        var after: Int64 = 0
        while true {
            let from = after
            let page = try blocking {
                var first = PostgresBindings()
                first.append(from)
                var query = try Self.filtered(filter, extra: ["m.id > $1"], binds: first)
                query.sql += " ORDER BY m.id LIMIT 5000"
                return try await self.messages(PostgresQuery(unsafeSQL: Self.messageSelect + query.sql, binds: query.binds))
            }
            for message in page { try body(message) }
            guard page.count == 5_000, let last = page.last else { return }
            after = last.id
        }
    }

    public func countMessages(matching filter: MessageFilter) throws -> Int {
        try blocking {
            let query = try Self.filtered(filter)
            let rows = try await self.client.query(PostgresQuery(unsafeSQL: """
                SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id
                """ + query.sql, binds: query.binds), logger: self.logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// ` WHERE` and its bindings for `filter` on `m` (messages), `r` (rooms) and `u` (users),
    /// after `extra` conditions, which use the bindings already in `binds`.
    static func filtered(_ filter: MessageFilter, extra: [String] = [], binds: PostgresBindings = PostgresBindings()) throws
        -> (sql: String, binds: PostgresBindings) {
        var binds = binds
        var conditions = extra
        func bind(_ value: some PostgresEncodable & Sendable) throws -> String {
            try binds.append(value)
            return "$\(binds.count)"
        }
        switch filter.directMessages {
        case .all: break
        case .none: conditions.append("NOT r.is_direct")
        case .of(let userID):
            let user = try bind(userID)
            conditions.append("(NOT r.is_direct OR m.room_id IN (SELECT room_id FROM conversations WHERE user_low = \(user) OR user_high = \(user)))")
        case .between(let first, let second):
            conditions.append("m.room_id = (SELECT room_id FROM conversations WHERE user_low = \(try bind(min(first, second))) AND user_high = \(try bind(max(first, second))))")
        }
        if let room = filter.room { conditions.append("r.name = \(try bind(room))") }
        if let user = filter.user { conditions.append("u.name_key = \(try bind(Names.userKey(user)))") }
        if let since = filter.since { conditions.append("m.ts >= \(try bind(since))") }
        if let until = filter.until { conditions.append("m.ts < \(try bind(until))") }
        return (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "), binds)
    }

    func messages(_ query: PostgresQuery) async throws -> [ChatMessage] {
        let rows = try await client.query(query, logger: logger)
        var messages: [ChatMessage] = []
        for try await row in rows.decode((Int64, Int64, String, String, Int16, String, String?).self) {
            messages.append(Self.message(row))
        }
        return messages
    }

    public func conversationRoomNames() throws -> [String] {
        try blocking {
            let rows = try await self.client.query(
                "SELECT r.name FROM conversations c JOIN rooms r ON r.id = c.room_id ORDER BY c.room_id", logger: self.logger)
            var names: [String] = []
            for try await name in rows.decode(String.self) { names.append(name) }
            return names
        }
    }

    // MARK: Statistics

    public func statistics() throws -> Statistics {
        try blocking {
            try await self.client.withTransaction(logger: self.logger) { connection in
                // One snapshot for every figure.
                try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: self.logger)
                func activity(_ sql: String) async throws -> [ActivitySummary] {
                    var found: [ActivitySummary] = []
                    let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: self.logger)
                    for try await (name, count, first, last) in rows.decode((String, Int64, Int64?, Int64?).self) {
                        found.append(ActivitySummary(name: name, messages: Int(count), firstMessage: first, lastMessage: last))
                    }
                    return found
                }
                let perRoom = try await activity("""
                    SELECT r.name, coalesce(g.n, 0), g.first, g.last FROM rooms r LEFT JOIN (
                        SELECT room_id, count(*) AS n, min(ts) AS first, max(ts) AS last FROM messages GROUP BY room_id
                    ) g ON g.room_id = r.id WHERE NOT r.is_direct ORDER BY coalesce(g.n, 0) DESC, r.name
                    """)
                let perUser = try await activity("""
                    SELECT u.name, coalesce(g.n, 0), g.first, g.last FROM users u LEFT JOIN (
                        SELECT user_id, count(*) AS n, min(ts) AS first, max(ts) AS last FROM messages GROUP BY user_id
                    ) g ON g.user_id = u.id ORDER BY coalesce(g.n, 0) DESC, u.name
                    """)
                var perDay: [DailyCount] = []
                for try await (day, count) in try await connection.query(
                    "SELECT ts / 86400000 AS day, count(*) FROM messages GROUP BY day ORDER BY day", logger: self.logger
                ).decode((Int64, Int64).self) {
                    perDay.append(DailyCount(day: day, messages: Int(count)))
                }
                for try await (messages, users, rooms, first, last) in try await connection.query("""
                    SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM users), (SELECT count(*) FROM rooms WHERE NOT is_direct),
                           (SELECT ts FROM messages ORDER BY id LIMIT 1), (SELECT ts FROM messages ORDER BY id DESC LIMIT 1)
                    """, logger: self.logger).decode((Int64, Int64, Int64, Int64?, Int64?).self) {
                    return Statistics(messages: Int(messages), users: Int(users), rooms: Int(rooms), firstMessage: first, lastMessage: last,
                                      perRoom: perRoom, perUser: perUser, perDay: perDay)
                }
                throw PostgresStoreError("no statistics returned")
            }
        }
    }

    public func users() throws -> [UserSummary] {
        try blocking {
            let rows = try await self.client.query("""
                SELECT u.name, u.first_seen, u.last_seen, (SELECT count(*) FROM messages m WHERE m.user_id = u.id)
                FROM users u ORDER BY u.name_key
                """, logger: self.logger)
            var users: [UserSummary] = []
            for try await (name, first, last, count) in rows.decode((String, Int64, Int64, Int64).self) {
                users.append(UserSummary(name: name, firstSeen: first, lastSeen: last, messages: Int(count)))
            }
            return users
        }
    }

    // MARK: Accounts

    public func account(named name: String) throws -> AccountRecord? {
        try loginLookup(name: name).account
    }

    public func addAccount(name: String, password: PasswordHash) throws -> UserRecord {
        try blocking {
            let user = try await self.upsertUser(name: name)
            try await self.insertAccount(userID: user.id, password: password)
            return user
        }
    }

    public func changePassword(name: String, password: PasswordHash) throws -> Bool {
        try blocking {
            let rows = try await self.client.query("""
                UPDATE accounts SET salt = \(Data(password.salt)), hash = \(Data(password.hash)), cost = \(password.cost),
                    block_size = \(password.blockSize), parallelism = \(password.parallelism), updated_at = \(Timestamp.now())
                WHERE user_id = (SELECT id FROM users WHERE name_key = \(Names.userKey(name))) RETURNING user_id
                """, logger: self.logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    public func removeAccount(name: String) throws -> Bool {
        try blocking {
            let rows = try await self.client.query("""
                DELETE FROM accounts WHERE user_id = (SELECT id FROM users WHERE name_key = \(Names.userKey(name))) RETURNING user_id
                """, logger: self.logger)
            for try await _ in rows.decode(Int64.self) { return true }
            return false
        }
    }

    public func accounts() throws -> [AccountSummary] {
        try blocking {
            let rows = try await self.client.query("""
                SELECT u.name, a.created_at, u.last_seen FROM accounts a JOIN users u ON u.id = a.user_id ORDER BY u.name_key
                """, logger: self.logger)
            var accounts: [AccountSummary] = []
            for try await (name, created, seen) in rows.decode((String, Int64, Int64).self) {
                accounts.append(AccountSummary(name: name, createdAt: created, lastSeen: seen))
            }
            return accounts
        }
    }

    // MARK: Maintenance

    public func deleteMessages(ids: [Int64], dryRun: Bool) throws -> [Int64] {
        try blocking {
            let rows = dryRun
                ? try await self.client.query("SELECT id FROM messages WHERE id = ANY(\(ids)) ORDER BY id", logger: self.logger)
                : try await self.client.query("DELETE FROM messages WHERE id = ANY(\(ids)) RETURNING id", logger: self.logger)
            var found = Set<Int64>()
            for try await id in rows.decode(Int64.self) { found.insert(id) }
            // In the order asked, as the SQLite store answers.
            return ids.filter { found.contains($0) }
        }
    }

    public func forgetUser(named name: String, dryRun: Bool) throws -> ForgetResult {
        try blocking {
            try await self.client.withTransaction(logger: self.logger) { connection in
                var found: (Int64, String)?
                for try await row in try await connection.query(
                    "SELECT id, name FROM users WHERE name_key = \(Names.userKey(name)) FOR UPDATE", logger: self.logger
                ).decode((Int64, String).self) { found = row }
                guard let (userID, storedName) = found else { return ForgetResult(user: nil, messages: 0, readMarkers: 0) }
                // Messages have no foreign keys (migration 0005): an append checks its rooms
                // and author FOR KEY SHARE. Locking the user (above) and the conversations'
                // rooms waits for appends already past that check and makes later ones fail, so
                // the counts below are final and no message lands between the deletes.
                try await connection.query("""
                    SELECT 1 FROM rooms WHERE id IN (SELECT room_id FROM conversations WHERE user_low = \(userID) OR user_high = \(userID))
                    FOR UPDATE
                    """, logger: self.logger)
                var counts: (Int64, Int64, Int64) = (0, 0, 0)
                for try await row in try await connection.query("""
                    SELECT (SELECT count(*) FROM messages WHERE user_id = \(userID)),
                           (SELECT count(*) FROM read_markers WHERE user_id = \(userID)),
                           (SELECT count(*) FROM messages WHERE user_id <> \(userID) AND room_id IN
                               (SELECT room_id FROM conversations WHERE user_low = \(userID) OR user_high = \(userID)))
                    """, logger: self.logger).decode((Int64, Int64, Int64).self) { counts = row }
                if !dryRun {
                    // Both sides of every conversation go: the user's direct messages are the user's record too.
                    for statement: PostgresQuery in [
                        "CREATE TEMP TABLE forgotten_rooms ON COMMIT DROP AS SELECT room_id FROM conversations WHERE user_low = \(userID) OR user_high = \(userID)",
                        "DELETE FROM messages WHERE room_id IN (SELECT room_id FROM forgotten_rooms)",
                        "DELETE FROM read_markers WHERE room_id IN (SELECT room_id FROM forgotten_rooms)",
                        "DELETE FROM conversations WHERE room_id IN (SELECT room_id FROM forgotten_rooms)",
                        "DELETE FROM rooms WHERE id IN (SELECT room_id FROM forgotten_rooms)",
                        "DELETE FROM messages WHERE user_id = \(userID)",
                        "DELETE FROM read_markers WHERE user_id = \(userID)",
                        "DELETE FROM users WHERE id = \(userID)",
                    ] {
                        try await connection.query(statement, logger: self.logger)
                    }
                }
                return ForgetResult(user: storedName, messages: Int(counts.0), receivedDirectMessages: Int(counts.2), readMarkers: Int(counts.1))
            }
        }
    }

    /// `pg_dump` in its custom format (restore with `pg_restore`): a consistent snapshot taken
    /// while the nodes go on writing.
    public func backup(to path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else { throw PostgresStoreError("\(path) exists already") }
        guard let dump = Self.pgDump() else {
            throw PostgresStoreError("pg_dump is not installed (Debian: apt-get install postgresql-client)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dump)
        process.arguments = ["--format=custom", "--no-owner", "--file", path,
                             "--host", connection.host, "--port", String(connection.port), "--username", connection.user, connection.database]
        var environment = ProcessInfo.processInfo.environment
        if let password = connection.password { environment["PGPASSWORD"] = password }
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw PostgresStoreError("pg_dump failed: \(String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// `pg_dump` on the PATH, or the newest in Debian's versioned folders.
    static func pgDump() -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/pg_dump" }
        let versioned = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .sorted { $0.compare($1, options: .numeric) == .orderedDescending }
            .map { "/usr/lib/postgresql/\($0)/bin/pg_dump" }
        return (path + versioned).first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public func integrityProblems() throws -> [String] {
        try blocking {
            var problems: [String] = []
            let checks: [(String, PostgresQuery)] = [
                ("messages with an id beyond the id counter", "SELECT count(*) FROM messages WHERE id > (SELECT last_id FROM message_ids)"),
                ("id counter rows (must be 1)", "SELECT abs(count(*) - 1) FROM message_ids"),
                ("direct conversations whose room is not marked direct",
                 "SELECT count(*) FROM conversations c JOIN rooms r ON r.id = c.room_id WHERE NOT r.is_direct"),
                ("direct rooms without a conversation",
                 "SELECT count(*) FROM rooms r WHERE r.is_direct AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.room_id = r.id)"),
                ("messages whose search vector is stale", "SELECT count(*) FROM messages WHERE search IS DISTINCT FROM to_tsvector('simple', text)"),
                ("messages whose room does not exist",
                 "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.id = m.room_id)"),
                ("messages whose author does not exist",
                 "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id)"),
            ]
            for (what, query) in checks {
                for try await count in try await self.client.query(query, logger: self.logger).decode(Int64.self) where count > 0 {
                    problems.append("\(what): \(count)")
                }
            }
            return problems
        }
    }

    public func appliedMigrations() throws -> [String] {
        try blocking { try await self.appliedMigrations() }
    }
}
