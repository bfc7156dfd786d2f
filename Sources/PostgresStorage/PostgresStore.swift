import ChatProtocol
import Foundation
import Logging
import PostgresNIO
import Storage
import Synchronization

/// The chat history on PostgreSQL (`database.postgres`): any number of chat-server nodes on one
/// database serve as one.
///
/// - Message ids follow commit order across every node (the one-row `message_ids` counter,
///   below), and every append announces its id range with `pg_notify`.
/// - Each node follows every node's commits (`followCommits`): it reads the announced ranges in
///   order and fans them out to its own members, its own messages included.
/// - Live names are leased across nodes with advisory locks (`leaseName`), which PostgreSQL
///   drops by itself when a node's connection dies.
public final class PostgresStore: SharedChatStore {
    /// A message to store.
    public struct Draft: Sendable {
        public let roomID: Int64
        public let userID: Int64
        public let kind: MessageKind
        public let text: String
        /// The client's nonce (`PostgresCommitter` has settled that no message holds it).
        public let nonce: String?

        public init(roomID: Int64, userID: Int64, kind: MessageKind = .text, text: String, nonce: String? = nil) {
            self.roomID = roomID
            self.userID = userID
            self.kind = kind
            self.text = text
            self.nonce = nonce
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

    let client: PostgresClient
    /// This process, in the commit notifications: a node knows its own ranges from the others'.
    let origin = UInt32.random(in: 1...UInt32.max)
    private let runner: Task<Void, Never>
    let logger: Logger
    let committer: PostgresCommitter
    let leases: PostgresNameLeases
    /// This node's presence: its id and its announcements.
    let node = NodePresence()
    /// Requests under way through `complete`.
    let requests = RequestsUnderWay()
    /// Where the database is (for `pg_dump`).
    let connection: PostgresURL
    /// Conversation rooms by their two user ids (low, high): made once, never changed.
    let conversationRooms = Mutex<[PairKey: Int64]>([:])
    struct PairKey: Hashable { let low: Int64, high: Int64 }
    public let location: String

    /// How long a batch of messages may take: past it the senders hear `unknown_outcome` (the
    /// database may still commit the batch; a resend with the same nonce is then answered with
    /// the stored message).
    let commitDeadline: Duration

    /// Connects (a pool of up to `connections`) to the database at `host:port`.
    public init(host: String, port: Int, username: String, password: String? = nil, database: String,
                connections: Int = 8, commitDeadline: Duration = .seconds(5), logger: Logger? = nil) {
        self.commitDeadline = commitDeadline
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
        self.location = "postgres://\(username)@\(host):\(port)/\(database)"
        self.connection = PostgresURL(user: username, password: password, host: host, port: port, database: database)
        runner = Task { await client.run() }
        let connection = PostgresConnection.Configuration(host: host, port: port, username: username, password: password,
                                                          database: database, tls: .disable)
        leases = PostgresNameLeases(configuration: connection, logger: logger)
        committer = PostgresCommitter()
        committer.store = self
    }

    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`) and applies the
    /// migrations it lacks.
    /// `migrating: false` (tools that only read) applies nothing and fails with
    /// `StorageError.pendingMigrations` when the database lacks some.
    public static func open(url: String, migrating: Bool = true, requiringCurrentSchema: Bool = true, connections: Int = 8,
                            logger: Logger? = nil) async throws -> PostgresStore {
        let parts = try PostgresURL(url)
        let store = PostgresStore(host: parts.host, port: parts.port, username: parts.user, password: parts.password,
                                  database: parts.database, connections: connections, logger: logger)
        do {
            if migrating {
                try await store.migrate()
            } else if requiringCurrentSchema {
                let applied = Set(try await store.appliedMigrations())
                let pending = migrations.map(\.name).filter { !applied.contains($0) }
                if !pending.isEmpty { throw StorageError.pendingMigrations(pending) }
                try MigrationChecksum.verify(recorded: try await store.recordedMigrationChecksums(), against: migrations)
            }
        } catch {
            await store.shutdown()
            throw error
        }
        return store
    }

    /// A database URL without its password, for messages and logs.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    /// Closes the pool.
    public func shutdown() async {
        await leases.close()
        runner.cancel()
        _ = await runner.value
    }

    public func close() {
        committer.close()
        node.queue.withLock { $0.isClosed = true }
        let leases = self.leases
        let runner = self.runner
        // The pool's task ends once cancelled; nothing waits for it on a server's way out.
        Task {
            await leases.close()
            runner.cancel()
        }
    }

    // MARK: Migrations

    /// Applies the migrations not applied yet, in order, and returns their names. Several nodes
    /// starting at once apply each migration exactly once: one transaction, serialized by a
    /// transaction-scoped advisory lock (PostgreSQL's DDL is transactional).
    @discardableResult
    public func migrate() async throws -> [String] {
        do {
            return try await applyMigrations()
        } catch let error as PostgresTransactionError {
            // A refusal of ours (unknown or changed migrations) is the error a caller acts on.
            if let refusal = error.closureError as? StorageError { throw refusal }
            throw error
        }
    }

    private func applyMigrations() async throws -> [String] {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7411)", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied bigint NOT NULL)",
                                       logger: logger)
            // The migrator's bookkeeping: each applied migration's SHA-256, recorded when first seen.
            try await connection.query("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text", logger: logger)
            var done: Set<String> = []
            var recorded: [(name: String, checksum: String)] = []
            let rows = try await connection.query("SELECT name, checksum FROM schema_migrations", logger: logger)
            for try await (name, checksum) in rows.decode((String, String?).self) {
                done.insert(name)
                if let checksum { recorded.append((name, checksum)) }
            }
            let known = Set(Self.migrations.map(\.name))
            let unknown = done.subtracting(known).sorted()
            if !unknown.isEmpty { throw StorageError.unknownMigrations(unknown) }
            try MigrationChecksum.verify(recorded: recorded, against: Self.migrations)
            var applied: [String] = []
            for migration in Self.migrations where !done.contains(migration.name) {
                for statement in Self.statements(of: migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (name, applied) VALUES (\(migration.name), \(Timestamp.now()))",
                                           logger: logger)
                applied.append(migration.name)
            }
            for migration in Self.migrations {
                let checksum = MigrationChecksum.of(migration.sql)
                try await connection.query("UPDATE schema_migrations SET checksum = \(checksum) WHERE name = \(migration.name) AND checksum IS NULL",
                                           logger: logger)
            }
            return applied
        }
    }

    /// The migrations recorded in the database, in order.
    public func appliedMigrations() async throws -> [String] {
        var exists = false
        for try await found in try await client.query("SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger).decode(Bool.self) {
            exists = found
        }
        guard exists else { return [] }
        var names: [String] = []
        for try await name in try await client.query("SELECT name FROM schema_migrations ORDER BY name", logger: logger).decode(String.self) {
            names.append(name)
        }
        return names
    }

    /// The checksums recorded for applied migrations (none before the migrator recorded any).
    public func recordedMigrationChecksums() async throws -> [(name: String, checksum: String)] {
        var hasColumn = false
        let probe: PostgresQuery = """
            SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                           AND table_name = 'schema_migrations' AND column_name = 'checksum')
            """
        for try await found in try await client.query(probe, logger: logger).decode(Bool.self) { hasColumn = found }
        guard hasColumn else { return [] }
        var recorded: [(name: String, checksum: String)] = []
        let rows = try await client.query("SELECT name, checksum FROM schema_migrations WHERE checksum IS NOT NULL", logger: logger)
        for try await (name, checksum) in rows.decode((String, String).self) { recorded.append((name, checksum)) }
        return recorded
    }

    /// A migration's statements, one by one (the extended protocol takes one at a time): split at
    /// the semicolons that end lines, outside `$$` bodies; `--` comment lines dropped. Migrations
    /// keep to that shape.
    static func statements(of sql: String) -> [String] {
        let lines = sql.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
        var statements: [String] = []
        var current = ""
        var inBody = false
        for line in lines {
            current += line + "\n"
            if line.components(separatedBy: "$$").count % 2 == 0 { inBody.toggle() }
            if !inBody, line.trimmingCharacters(in: .whitespaces).hasSuffix(";") {
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

    // MARK: Appends

    /// The id of the user `name` (case-insensitive), created on first use.
    public func userID(named name: String) async throws -> Int64 {
        try await upsertUser(name: name).id
    }

    /// The id of the room `name`, created on first use.
    public func roomID(named name: String) async throws -> Int64 {
        try await upsertRoom(name: name, isDirect: false).id
    }

    /// Stores `drafts` in one transaction and returns their ids and time, in order. The ids come
    /// from the one-row `message_ids` counter: its row lock makes every other committer wait
    /// until this transaction is visible, so ids are handed out in commit order and a reader
    /// never sees an id before all smaller ones. The time is `now` (this node's clock) or, when
    /// that is earlier than the previous append's (another node's clock is ahead), that one:
    /// times never go backwards in id order.
    public func append(_ drafts: [Draft], now: Int64 = Timestamp.now(), sending: SendMark? = nil) async throws -> [(id: Int64, timestamp: Int64)] {
        guard !drafts.isEmpty else { return [] }
        let rooms = drafts.map(\.roomID), users = drafts.map(\.userID)
        let kinds = drafts.map { Self.kindCode($0.kind) }, texts = drafts.map(\.text)
        let nonces = drafts.map { $0.nonce ?? "" }
        // One round trip: `append_messages_once` (migration 0006) takes the ids and the time (the
        // counter's row lock, held until its COMMIT), stores the rows, announces the range
        // (delivered to listeners only once committed, in commit order) and commits; its answer
        // comes after.
        let query: PostgresQuery = """
            CALL append_messages_once(\(rooms)::bigint[], \(users)::bigint[], \(kinds)::smallint[], \(texts)::text[], \(nonces)::text[],
                                      \(now), \(String(origin)), NULL, NULL)
            """
        let logger = self.logger
        let answer = try await client.withConnection { connection -> (first: Int64, stamp: Int64)? in
            // From here on the database may commit it, whatever this task hears.
            if let sending, !sending.markSent() { throw CancellationError() }
            var answer: (first: Int64, stamp: Int64)?
            for try await (first, stamp) in try await connection.query(query, logger: logger).decode((Int64, Int64).self) {
                answer = (first, stamp)
            }
            return answer
        }
        guard let answer else { throw PostgresStoreError("no ids returned") }
        return (0..<drafts.count).map { (answer.first + Int64($0), answer.stamp) }
    }

    /// The messages that hold these (author, nonce) pairs, by author and nonce.
    func messages(holdingNonces keys: [(userID: Int64, nonce: String)]) async throws -> [(userID: Int64, nonce: String, holder: NonceHolder)] {
        guard !keys.isEmpty else { return [] }
        let users = keys.map(\.userID), nonces = keys.map(\.nonce)
        let rows = try await client.query("""
            SELECT m.user_id, m.nonce, m.id, m.ts, m.room_id, m.kind, m.text
            FROM messages m JOIN unnest(\(users)::bigint[], \(nonces)::text[]) AS k(user_id, nonce)
                ON m.user_id = k.user_id AND m.nonce = k.nonce
            """, logger: logger)
        var found: [(userID: Int64, nonce: String, holder: NonceHolder)] = []
        for try await row in rows.decode((Int64, String, Int64, Int64, Int64, Int16, String).self) {
            found.append((row.0, row.1, NonceHolder(id: row.2, timestamp: row.3, roomID: row.4, kind: Self.kind(row.5), text: row.6)))
        }
        return found
    }

    /// Frees the nonces of these messages (held longer than 24 hours) for new messages.
    func clearNonces(ofMessages ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await client.query("UPDATE messages SET nonce = NULL WHERE id = ANY(\(ids)::bigint[])", logger: logger)
    }

    static func kindCode(_ kind: MessageKind) -> Int16 { kind == .action ? 1 : 0 }

    /// A message from the columns every message read selects: id, ts, room name, author, kind,
    /// text and `recipientColumn` (a direct message has a recipient and no room).
    static func message(_ row: (id: Int64, ts: Int64, room: String, from: String, kind: Int16, text: String, to: String?)) -> ChatMessage {
        ChatMessage(id: row.id, timestamp: row.ts, room: row.to == nil ? row.room : "", from: row.from, to: row.to,
                    kind: kind(row.kind), text: row.text)
    }

    /// A message's recipient when it is a direct one (the other user of its conversation, or the
    /// author writing to itself), else NULL; on `m` (messages) and `r` (its room).
    static let recipientColumn = """
        CASE WHEN r.is_direct THEN (
            SELECT t.name FROM conversations c
            JOIN users t ON t.id = CASE WHEN c.user_low = m.user_id THEN c.user_high ELSE c.user_low END
            WHERE c.room_id = m.room_id) END
        """
    static func kind(_ code: Int16) -> MessageKind { code == 1 ? .action : .text }

    /// The notification channel every append announces its ids on: the payload is
    /// `first-last/origin`, `origin` the appending process's `origin`.
    public static let commitChannel = "chat_commits"

    /// Calls `onCommit` with the ids of every append committed from now on, by any node, in
    /// commit order (which is id order: the ranges follow each other without gaps), until the
    /// task is cancelled or `onCommit` throws. `onListening` is called once the listener is
    /// registered: appends committed after it are all announced.
    public func listenForCommits(onListening: @Sendable () -> Void = {},
                                 _ onCommit: @Sendable (ClosedRange<Int64>) async throws -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: Self.commitChannel) { notifications in
                onListening()
                for try await notification in notifications {
                    guard let range = Self.range(notification.payload) else { continue }
                    try await onCommit(range)
                }
            }
        }
    }

    static func range(_ payload: String) -> ClosedRange<Int64>? {
        let bounds = payload.split(separator: "/")[0].split(separator: "-").compactMap { Int64($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return nil }
        return bounds[0]...bounds[1]
    }

    /// The messages with ids in `after+1 ... upTo`, oldest first, at most `limit`.
    public func messages(after: Int64, upTo: Int64 = .max, limit: Int = 10_000) async throws -> [Stored] {
        let rows = try await client.query("""
            SELECT id, room_id, user_id, ts, kind, text FROM messages
            WHERE id > \(after) AND id <= \(upTo) ORDER BY id LIMIT \(limit)
            """, logger: logger)
        var stored: [Stored] = []
        for try await (id, room, user, ts, kind, text) in rows.decode((Int64, Int64, Int64, Int64, Int16, String).self) {
            stored.append(Stored(id: id, roomID: room, userID: user, timestamp: ts, kind: Self.kind(kind), text: text))
        }
        return stored
    }

    /// The newest committed id (0 when none).
    public func newestMessageID() async throws -> Int64 {
        let rows = try await client.query("SELECT last_id FROM message_ids", logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        return 0
    }

    // MARK: The commit feed

    /// Every node's commits after `after`, in id order, to `deliver`; see `SharedChatStore`.
    /// A notification only says how far to read: the rows are read by id range, from the last
    /// delivered id, so a lost notification (a reconnect) loses nothing, and one read covers
    /// however many ranges arrived meanwhile.
    public func followCommits(after: Int64, onListening: @escaping @Sendable () -> Void,
                              _ deliver: @escaping @Sendable ([FeedMessage]) -> Void) async {
        let delivered = FeedPosition(after)
        var failures = 0
        while !Task.isCancelled {
            do {
                if delivered.announced { failures = 0 }
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.commitChannel) { notifications in
                        // What committed before the listen took effect is read now.
                        try await self.catchUp(delivered, to: try await self.newestMessageID(), deliver)
                        if !delivered.announced {
                            delivered.announced = true
                            onListening()
                        }
                        for try await notification in notifications {
                            guard let range = Self.range(notification.payload) else { continue }
                            // Another node's range, following on from what was delivered: no
                            // append of this node can be in it, so nothing to wait for.
                            let othersOnly = !notification.payload.hasSuffix("/\(self.origin)") && range.lowerBound == delivered.id + 1
                            try await self.catchUp(delivered, to: range.upperBound, mayIncludeOwn: !othersOnly, deliver)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                failures += 1
                if failures == 1 { logger.error("the commit feed lost the database, reconnecting: \(String(reflecting: error))") }
                try? await Task.sleep(for: .milliseconds(min(2_000, 50 * failures)))
            }
        }
    }

    /// Delivers the messages after `delivered` up to `upTo`, and moves `delivered` there.
    private func catchUp(_ delivered: FeedPosition, to upTo: Int64, mayIncludeOwn: Bool = true,
                         _ deliver: @Sendable ([FeedMessage]) -> Void) async throws {
        var from = delivered.id
        guard upTo > from else { return }
        // This node's appends that may have committed up to here have run their completions
        // (the server registered their authors) before their messages are delivered.
        if mayIncludeOwn { await committer.settled() }
        while from < upTo {
            let page = try await feedMessages(after: from, upTo: upTo, limit: 2_000)
            if !page.isEmpty { deliver(page) }
            from = page.count < 2_000 ? upTo : page.last!.message.id
            delivered.id = from
        }
    }

    func feedMessages(after: Int64, upTo: Int64, limit: Int) async throws -> [FeedMessage] {
        var messages: [FeedMessage] = []
        for try await message in try await client.execute(FeedQuery(after: after, upTo: upTo, limit: Int64(limit)), logger: logger) {
            messages.append(message)
        }
        return messages
    }

    /// The messages a notification announces, with what delivering them needs. Prepared once
    /// per connection (it runs for every notification), and written as index lookups per row:
    /// a join on `users` had the planner merge-scan the whole table.
    struct FeedQuery: PostgresPreparedStatement {
        static let sql = """
            SELECT m.id, m.ts, r.name, (SELECT name FROM users WHERE id = m.user_id), m.kind, m.text,
                \(PostgresStore.recipientColumn),
                EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = m.user_id)
            FROM messages m CROSS JOIN LATERAL (SELECT name, is_direct FROM rooms WHERE id = m.room_id) r
            WHERE m.id > $1 AND m.id <= $2 ORDER BY m.id LIMIT $3
            """
        typealias Row = FeedMessage
        let after: Int64
        let upTo: Int64
        let limit: Int64

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings()
            bindings.append(after)
            bindings.append(upTo)
            bindings.append(limit)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> FeedMessage {
            let (id, ts, room, from, kind, text, to, isAccount) = try row.decode((Int64, Int64, String, String, Int16, String, String?, Bool).self)
            return FeedMessage(message: PostgresStore.message((id, ts, room, from, kind, text, to)), fromAccount: isAccount)
        }
    }

    // MARK: Names across nodes

    public func leaseName(_ key: String, shared: Bool) async throws -> Bool {
        try await leases.lease(key, shared: shared)
    }

    public func releaseName(_ key: String, shared: Bool) async {
        await leases.release(key, shared: shared)
    }

    // MARK: Blocking

    /// Runs `body` and waits for it: the synchronous reads of `ChatStore`, called on a thread
    /// pool's threads (never on an event loop, never on the concurrency pool).
    func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        try Self.waitFor { try await Self.withDeadline(Self.requestDeadline, body) }
    }

    /// Runs `body` and waits for it, from synchronous code. Not on the concurrency pool: a
    /// caller blocking one of its threads (the server at start, chat-admin's commands) would
    /// otherwise wait for a thread it holds itself, for ever on a machine with one core.
    public static func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        Task(executorPreference: BlockingCallExecutor.shared) {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await $runsOnBlockingExecutor.withValue(true) { try await body() }) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Runs `body` and hands its result to `completion`. Counted until it has: the writes a
    /// session owes when it goes (read markers, its logout) are waited for by
    /// `waitForPendingWrites` before the pool closes.
    func complete<T: Sendable>(_ completion: @escaping @Sendable (Result<T, any Error>) -> Void,
                               _ body: @escaping @Sendable () async throws -> T) {
        requests.begin()
        Task {
            defer { requests.end() }
            do { completion(.success(try await Self.withDeadline(Self.requestDeadline, body))) } catch { completion(.failure(error)) }
        }
    }

    /// How long a request may wait for the database (for a connection, while it restarts)
    /// before it fails: the client is told, rather than left waiting.
    static let requestDeadline = Duration.seconds(10)

    /// `body`, or `PostgresStoreError.timedOut` after `limit`: then `body` is cancelled but not
    /// waited for (a task group would wait for it, and a query postgres-nio has sent cannot be
    /// cancelled: the deadline would not hold). A caller that hears `timedOut` cannot tell
    /// whether a write `body` made will still commit.
    static func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = DeadlineRace<T>()
        // The work keeps to the blocking-call executor when its caller is there: a thread that
        // `waitFor` blocks must not wait on the concurrency pool (see `waitFor`).
        let executor: (any TaskExecutor)? = runsOnBlockingExecutor ? BlockingCallExecutor.shared : nil
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation, work: Task(executorPreference: executor) {
                               do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                           },
                           timer: Task(executorPreference: executor) {
                               try? await Task.sleep(for: limit)
                               if !Task.isCancelled { race.finish(.failure(PostgresStoreError.timedOut)) }
                           })
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// Whether the current task is one of `waitFor`'s (inherited by the tasks it makes).
    @TaskLocal static var runsOnBlockingExecutor = false
}

/// The answer of `withDeadline`: the first of the work, the timer and a cancellation resumes the
/// caller; the others are cancelled.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var outcome: Result<T, any Error>?
        var tasks: [Task<Void, Never>] = []
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, work: Task<Void, Never>, timer: Task<Void, Never>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let outcome = state.outcome { return outcome }
            state.continuation = continuation
            state.tasks = [work, timer]
            return nil
        }
        if let early {
            work.cancel()
            timer.cancel()
            continuation.resume(with: early)
        }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard state.outcome == nil else { return (nil, []) }
            state.outcome = result
            defer { state.continuation = nil; state.tasks = [] }
            return (state.continuation, state.tasks)
        }
        for task in tasks { task.cancel() }
        continuation?.resume(with: result)
    }
}

/// Whether an append went out to the database. Before, a failure means it was not stored; after,
/// only the database's answer says. The two sides settle it once: the append marks it sent just
/// before sending (and does not send when it was abandoned), the committer abandons it on failure
/// (and learns whether it was too late).
public final class SendMark: Sendable {
    private static let pending = 0, sent = 1, abandoned = 2
    private let state = Atomic(SendMark.pending)
    public init() {}

    /// The append is about to send: false when it was abandoned (it must not send).
    func markSent() -> Bool {
        state.compareExchange(expected: Self.pending, desired: Self.sent, ordering: .acquiringAndReleasing).exchanged
            || state.load(ordering: .acquiring) == Self.sent
    }

    /// The committer gives up on it: true when it had not been sent (and now never will be).
    public func abandon() -> Bool {
        state.compareExchange(expected: Self.pending, desired: Self.abandoned, ordering: .acquiringAndReleasing).exchanged
            || state.load(ordering: .acquiring) == Self.abandoned
    }
}

/// Counts requests under way, and lets shutdown wait until none is.
final class RequestsUnderWay: Sendable {
    private let state = Mutex<(count: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

    func begin() {
        state.withLock { $0.count += 1 }
    }

    func end() {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in ready { waiter.resume() }
    }

    /// Returns once no request is under way.
    func drained() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state -> Bool in
                if state.count == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}

/// Runs the tasks behind `blocking` on a queue of their own, off the concurrency pool.
final class BlockingCallExecutor: TaskExecutor {
    static let shared = BlockingCallExecutor()
    private let queue = DispatchQueue(label: "postgres-blocking-calls", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// How far the commit feed has delivered: touched only by the feed's one task.
private final class FeedPosition: @unchecked Sendable {
    var id: Int64
    var announced = false
    init(_ id: Int64) { self.id = id }
}

public struct PostgresStoreError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }

    static let timedOut = PostgresStoreError("the database did not answer in time (is it running?)")
}

/// `postgres://user[:password]@host[:port]/database`.
struct PostgresURL {
    var user: String
    var password: String?
    var host: String
    var port: Int
    var database: String

    init(user: String, password: String?, host: String, port: Int, database: String) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
    }

    init(_ url: String) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty else {
            throw PostgresStoreError("database.postgres is not a postgres:// URL: \(url)")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw PostgresStoreError("database.postgres names no database: \(url)") }
        self.user = components.user ?? "postgres"
        self.password = components.password
        self.host = host
        self.port = components.port ?? 5432
        self.database = database
    }
}
