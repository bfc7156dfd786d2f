import Dispatch
import GRDB
import Synchronization

/// Moves SQLite's WAL checkpoints off the writer. By default the connection that commits past
/// 1,000 WAL pages runs the checkpoint inside its commit: it copies pages into the database file
/// and fsyncs both files, and on a real disk that stalled the group-commit writer, and so every
/// message waiting for it, for up to half a second (docs/performance.md). The writer's automatic
/// checkpoints are off instead, and a connection of this type's own runs a PASSIVE checkpoint
/// (which never waits for readers or the writer) once a second on a thread of its own (every
/// 250 ms made more fsyncs and a worse DM p99: 3.7-6.9 ms against 2.2-3.6 ms).
final class WALCheckpointer: Sendable {
    static let interval = DispatchTimeInterval.seconds(1)

    private let connection: DatabaseQueue
    private let queue = DispatchQueue(label: "chat.storage.checkpoint", qos: .utility)
    private let isStopped = Mutex(false)

    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        connection = try DatabaseQueue(path: path, configuration: configuration)
        scheduleNext()
    }

    /// One tick: a PASSIVE checkpoint, then the next tick, until stopped (the pending tick holds
    /// the checkpointer until then).
    private func scheduleNext() {
        queue.asyncAfter(deadline: .now() + Self.interval) { [self] in
            guard !isStopped.withLock({ $0 }) else { return }
            // A failed checkpoint (busy, I/O) is retried at the next tick; the WAL just grows a little.
            _ = try? connection.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)") }
            scheduleNext()
        }
    }

    /// Stops the ticks and checkpoints everything, truncating the WAL (at shutdown, after the
    /// writer's last commit).
    func stop() {
        let wasStopped = isStopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !wasStopped else { return }
        queue.sync {
            _ = try? connection.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
            try? connection.close()
        }
    }
}
