import ChatProtocol
import CSQLiteTuning
import Foundation
import GRDB

/// The chat history in one SQLite file (or in memory for tests): every read and write the server
/// and the admin tool need, named for what it is for. Writes from the server go through one
/// group-commit writer; reads use the pool's concurrent readers.
public final class ChatDatabase: ChatStore {
    /// How hard a commit is pushed to disk (`database.durability`).
    public enum Durability: String, Sendable {
        /// WAL, `synchronous=NORMAL`: survives a crash of the process.
        case normal
        /// WAL, `synchronous=FULL`: also survives a crash of the machine.
        case full
    }

    let writer: any DatabaseWriter
    let reader: any DatabaseReader
    let committer: GroupCommitter
    /// Runs WAL checkpoints off the writer, for a server's database (nil elsewhere).
    let checkpointer: WALCheckpointer?
    /// The file, or nil in memory.
    public let path: String?
    public let isReadOnly: Bool

    private init(writer: any DatabaseWriter, path: String?, isReadOnly: Bool, checkpointer: WALCheckpointer? = nil) {
        self.writer = writer
        self.reader = writer
        self.path = path
        self.isReadOnly = isReadOnly
        self.committer = GroupCommitter(writer: writer)
        self.checkpointer = checkpointer
    }

    /// Opens (creating when missing) the database at `path` for reading and writing, and applies
    /// the migrations it lacks. `checkpointsInBackground` (for a long-running writer: the server)
    /// moves WAL checkpoints from the commits to a thread of their own (`WALCheckpointer`).
    public static func open(path: String, durability: Durability = .normal, checkpointsInBackground: Bool = false) throws -> ChatDatabase {
        var configuration = baseConfiguration()
        let synchronous = durability == .full ? "FULL" : "NORMAL"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            if checkpointsInBackground { try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pool = try DatabasePool(path: path, configuration: configuration)
        try Migrations.apply(to: pool)
        let checkpointer = checkpointsInBackground ? try WALCheckpointer(path: path) : nil
        return ChatDatabase(writer: pool, path: path, isReadOnly: false, checkpointer: checkpointer)
    }

    /// Opens an existing database for reading only: safe beside a running server, and never
    /// creates a missing file. A WAL database in a folder that cannot be written (a read-only
    /// mount, a backup on a read-only share) is opened as immutable, which SQLite allows without
    /// the `-shm` file it cannot create, as long as no change waits in the write-ahead log.
    public static func openReadOnly(path: String) throws -> ChatDatabase {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StorageError.databaseNotFound(path: path)
        }
        var configuration = baseConfiguration()
        configuration.readonly = true
        let reader: any DatabaseWriter
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try pool.read { db in _ = try Row.fetchOne(db, sql: "SELECT 1 FROM sqlite_master LIMIT 1") }
            reader = pool
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CANTOPEN && !folderIsWritable(of: path) {
            let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
            guard wal == 0 else { throw StorageError.uncheckpointedInReadOnlyFolder(path: path) }
            reader = try DatabaseQueue(path: immutableURI(path), configuration: configuration)
        }
        let pending = try reader.read { db in try Migrations.pending(db) }
        if !pending.isEmpty { throw StorageError.pendingMigrations(pending) }
        try reader.read { db in try Migrations.verifyChecksums(db) }
        return ChatDatabase(writer: reader, path: path, isReadOnly: true)
    }

    /// Whether this process may create files beside `path` (as SQLite must for `-shm`).
    private static func folderIsWritable(of path: String) -> Bool {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return access(folder, W_OK) == 0
    }

    /// `path` as an SQLite URI opening it immutable (URIs are enabled in `sqliteTuning`).
    private static func immutableURI(_ path: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        let absolute = URL(fileURLWithPath: path).path
        return "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: allowed) ?? absolute) + "?immutable=1"
    }

    /// A fresh, migrated database in memory.
    public static func inMemory() throws -> ChatDatabase {
        let queue = try DatabaseQueue(configuration: baseConfiguration())
        try Migrations.apply(to: queue)
        return ChatDatabase(writer: queue, path: nil, isReadOnly: false)
    }

    /// Process-wide SQLite settings, applied once before the first connection opens.
    private static let sqliteTuning: Void = {
        _ = chat_sqlite_disable_memory_statistics()
        _ = chat_sqlite_enable_uri_filenames()
    }()

    private static func baseConfiguration() -> Configuration {
        _ = sqliteTuning
        var configuration = Configuration()
        // Writers from another process (chat-admin beside the server) wait rather than fail.
        configuration.busyMode = .timeout(30)
        configuration.maximumReaderCount = 4
        return configuration
    }

    /// Finishes the queued writes, then stops accepting new ones.
    public func close() {
        committer.shutdown()
        checkpointer?.stop()
    }

    /// Calls `observe` with the number of jobs and the seconds of every group commit (metrics).
    public func observeCommits(_ observe: @escaping @Sendable (_ jobs: Int, _ seconds: Double) -> Void) {
        committer.observeCommits(observe)
    }

    /// Writes waiting for the next group commit.
    public var writerQueueDepth: Int { committer.queueDepth }

    /// The longest the writer's queue has been since the last call (or since the start).
    public func takeWriterQueuePeak() -> Int { committer.takePeakQueueDepth() }

    /// Returns once everything handed to the writer before this call is committed.
    public func waitForPendingWrites() async throws {
        try await committer.run { _, _ in }
    }

    public var location: String { path ?? "memory" }

    /// The migrations recorded in the database, in order.
    public func appliedMigrations() throws -> [String] {
        try reader.read { db in try Migrations.applied(db) }
    }
}
