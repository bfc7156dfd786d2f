import ChatProtocol
import Logging
import PostgresNIO

/// Messages on PostgreSQL (`database.postgres`), for several chat-server nodes on one database.
///
/// This is the first part of issue 14: the schema (`migrations/postgres/`), users and rooms, and
/// appends whose ids follow commit order across any number of connections and processes (the
/// guarantee the room fan-out between nodes needs), with reads by id range. It is not wired into
/// chat-server yet.
public final class PostgresStore: Sendable {
    /// A message to store.
    public struct Draft: Sendable {
        public let roomID: Int64
        public let userID: Int64
        public let kind: MessageKind
        public let text: String

        public init(roomID: Int64, userID: Int64, kind: MessageKind = .text, text: String) {
            self.roomID = roomID
            self.userID = userID
            self.kind = kind
            self.text = text
        }
    }

    /// A stored message as read back.
    public struct Stored: Sendable, Equatable {
        public let id: Int64
        public let roomID: Int64
        public let userID: Int64
        public let timestamp: Int64
        public let kind: MessageKind
        public let text: String
    }

    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger

    /// Connects (a pool of up to `connections`) to the database at `host:port`.
    public init(host: String, port: Int, username: String, password: String? = nil, database: String,
                connections: Int = 8, logger: Logger? = nil) {
        let logger = logger ?? {
            // The pool warns when a first lease races its own start: quiet unless asked.
            var logger = Logger(label: "postgres")
            logger.logLevel = .error
            return logger
        }()
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password,
                                                         database: database, tls: .disable)
        configuration.options.maximumConnections = connections
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        runner = Task { await client.run() }
    }

    /// Closes the pool.
    public func shutdown() async {
        runner.cancel()
        _ = await runner.value
    }

    /// Applies the migrations not applied yet, in order, and returns their names. Several nodes
    /// starting at once apply each migration exactly once: one transaction, serialized by a
    /// transaction-scoped advisory lock (PostgreSQL's DDL is transactional).
    @discardableResult
    public func migrate() async throws -> [String] {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7411)", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied bigint NOT NULL)",
                                       logger: logger)
            var done: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: logger).decode(String.self) {
                done.insert(name)
            }
            var applied: [String] = []
            for migration in Self.migrations where !done.contains(migration.name) {
                for statement in Self.statements(of: migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (name, applied) VALUES (\(migration.name), \(Timestamp.now()))",
                                           logger: logger)
                applied.append(migration.name)
            }
            return applied
        }
    }

    /// A migration's statements, one by one (the extended protocol takes one at a time): split at
    /// the semicolons that end lines, `--` comments dropped. Migrations keep to that shape.
    static func statements(of sql: String) -> [String] {
        let lines = sql.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
        var statements: [String] = []
        var current = ""
        for line in lines {
            current += line + "\n"
            if line.trimmingCharacters(in: .whitespaces).hasSuffix(";") {
                statements.append(current.trimmingCharacters(in: .whitespacesAndNewlines))
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return statements
    }

    /// Every migration this build carries, in order: name (without `.sql`) and SQL.
    public static var migrations: [(name: String, sql: String)] {
        EmbeddedMigrations.all.map { (String($0.name.dropLast(".sql".count)), $0.text) }
    }

    /// The id of the user `name` (case-insensitive), created on first use.
    public func user(named name: String) async throws -> Int64 {
        let now = Timestamp.now()
        let rows = try await client.query("""
            INSERT INTO users (name, name_key, first_seen, last_seen) VALUES (\(name), \(name.lowercased()), \(now), \(now))
            ON CONFLICT (name_key) DO UPDATE SET last_seen = EXCLUDED.last_seen
            RETURNING id
            """, logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw PostgresStoreError("no user id returned")
    }

    /// The id of the room `name`, created on first use.
    public func room(named name: String) async throws -> Int64 {
        let rows = try await client.query("""
            INSERT INTO rooms (name, created) VALUES (\(name), \(Timestamp.now()))
            ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
            RETURNING id
            """, logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw PostgresStoreError("no room id returned")
    }

    /// Stores `drafts` in one transaction and returns their ids and time, in order. The ids come
    /// from the one-row `message_ids` counter: its row lock makes every other committer wait
    /// until this transaction is visible, so ids are handed out in commit order and a reader
    /// never sees an id before all smaller ones.
    public func append(_ drafts: [Draft]) async throws -> [(id: Int64, timestamp: Int64)] {
        guard !drafts.isEmpty else { return [] }
        let now = Timestamp.now()
        let count = Int64(drafts.count)
        let rooms = drafts.map(\.roomID), users = drafts.map(\.userID)
        let kinds = drafts.map { Int16($0.kind == .action ? 1 : 0) }, texts = drafts.map(\.text)
        // One statement in an explicit transaction: the ids (the counter's row lock, held until
        // this commits), the rows, and the announcement of the range (delivered to listeners only
        // once this commits, in commit order). Explicit, so the answer comes after COMMIT has
        // completed: an implicit transaction's rows arrive before its commit.
        return try await client.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                WITH ids AS (
                    UPDATE message_ids SET last_id = last_id + \(count) RETURNING last_id - \(count) + 1 AS first
                ), inserted AS (
                    INSERT INTO messages (id, room_id, user_id, ts, kind, text)
                    SELECT ids.first - 1 + d.n, d.room, d.usr, \(now), d.kind, d.text
                    FROM ids, unnest(\(rooms)::bigint[], \(users)::bigint[], \(kinds)::smallint[], \(texts)::text[]) WITH ORDINALITY
                        AS d(room, usr, kind, text, n)
                    RETURNING 1
                ), announced AS (
                    SELECT pg_notify(\(Self.commitChannel), ids.first::text || '-' || (ids.first + \(count) - 1)::text) FROM ids
                )
                SELECT ids.first, (SELECT count(*) FROM inserted) FROM ids, announced
                """, logger: logger)
            var first: Int64?
            for try await (id, inserted) in rows.decode((Int64, Int64).self) {
                guard inserted == count else { throw PostgresStoreError("stored \(inserted) of \(count) messages") }
                first = id
            }
            guard let first else { throw PostgresStoreError("no ids returned") }
            return (0..<drafts.count).map { (first + Int64($0), now) }
        }
    }

    /// The notification channel every append announces its ids on: the payload is `first-last`.
    public static let commitChannel = "chat_commits"

    /// Calls `onCommit` with the ids of every append committed from now on, by any node, in
    /// commit order (which is id order: the ranges follow each other without gaps), until the
    /// task is cancelled or `onCommit` throws. `onListening` is called once the listener is
    /// registered: appends committed after it are all announced. Only the small range travels;
    /// the messages are read by id range (`messages(after:upTo:)`).
    public func listenForCommits(onListening: @Sendable () -> Void = {},
                                 _ onCommit: @Sendable (ClosedRange<Int64>) async throws -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: Self.commitChannel) { notifications in
                onListening()
                for try await notification in notifications {
                    let bounds = notification.payload.split(separator: "-").compactMap { Int64($0) }
                    guard bounds.count == 2, bounds[0] <= bounds[1] else { continue }
                    try await onCommit(bounds[0]...bounds[1])
                }
            }
        }
    }

    /// The messages with ids in `after+1 ... upTo`, oldest first, at most `limit`: how a node reads
    /// what another node committed (the range a notification names).
    public func messages(after: Int64, upTo: Int64 = .max, limit: Int = 10_000) async throws -> [Stored] {
        let rows = try await client.query("""
            SELECT id, room_id, user_id, ts, kind, text FROM messages
            WHERE id > \(after) AND id <= \(upTo) ORDER BY id LIMIT \(limit)
            """, logger: logger)
        var stored: [Stored] = []
        for try await (id, room, user, ts, kind, text) in rows.decode((Int64, Int64, Int64, Int64, Int16, String).self) {
            stored.append(Stored(id: id, roomID: room, userID: user, timestamp: ts, kind: kind == 1 ? .action : .text, text: text))
        }
        return stored
    }

    /// The newest committed id (0 when none).
    public func newestMessageID() async throws -> Int64 {
        let rows = try await client.query("SELECT last_id FROM message_ids", logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        return 0
    }
}

public struct PostgresStoreError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
