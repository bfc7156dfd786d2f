import ChatProtocol
import Foundation
import GRDB

/// What `forget` removed.
public struct ForgetResult: Sendable, Equatable {
    /// The user as stored, nil when no such user exists.
    public var user: String?
    /// The user's own messages, in rooms and direct.
    public var messages: Int
    /// Direct messages others sent the user (erased with the conversations).
    public var receivedDirectMessages: Int = 0
    public var readMarkers: Int

    public init(user: String?, messages: Int, receivedDirectMessages: Int = 0, readMarkers: Int) {
        self.user = user
        self.messages = messages
        self.receivedDirectMessages = receivedDirectMessages
        self.readMarkers = readMarkers
    }
}

extension ChatDatabase {
    /// Rows per transaction when pruning, so a running server's writer is never held up long.
    static let pruneChunk = 5_000

    /// Deletes (or with `dryRun` counts) the messages older than `before` (ms), optionally of one
    /// room, and their search index entries. Returns how many.
    public func prune(before: Int64, room: String? = nil, dryRun: Bool = false) throws -> Int {
        let filter = MessageFilter(room: room, until: before)
        if dryRun { return try countMessages(matching: filter) }
        var total = 0
        while true {
            let deleted = try writer.write { db in
                try db.execute(sql: """
                    DELETE FROM messages WHERE id IN (
                        SELECT m.id FROM messages m JOIN rooms r ON r.id = m.room_id
                        WHERE m.ts < ?\(room == nil ? "" : " AND r.name = ?")
                        ORDER BY m.id LIMIT ?)
                    """, arguments: room == nil ? [before, Self.pruneChunk] : [before, room, Self.pruneChunk])
                return db.changesCount
            }
            total += deleted
            if deleted < Self.pruneChunk { return total }
        }
    }

    /// Deletes (or with `dryRun` finds) the messages with these ids; returns the ids that existed.
    public func deleteMessages(ids: [Int64], dryRun: Bool = false) throws -> [Int64] {
        let work: (Database) throws -> [Int64] = { db in
            var found: [Int64] = []
            for id in ids where try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?)", arguments: [id]) == true {
                if !dryRun { try db.execute(sql: "DELETE FROM messages WHERE id = ?", arguments: [id]) }
                found.append(id)
            }
            return found
        }
        return dryRun ? try reader.read(work) : try writer.write(work)
    }

    /// Erases a user: every message, every read marker and the user record (or with `dryRun`
    /// counts them).
    public func forgetUser(named name: String, dryRun: Bool = false) throws -> ForgetResult {
        let work: (Database) throws -> ForgetResult = { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, name FROM users WHERE name = ?", arguments: [name]) else {
                return ForgetResult(user: nil, messages: 0, readMarkers: 0)
            }
            let userID: Int64 = row[0]
            let messages = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages WHERE user_id = ?", arguments: [userID]) ?? 0
            let markers = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM read_markers WHERE user_id = ?", arguments: [userID]) ?? 0
            let conversations = "SELECT room_id FROM conversations WHERE user_low = ?1 OR user_high = ?1"
            let received = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages WHERE room_id IN (\(conversations)) AND user_id <> ?1",
                                            arguments: [userID]) ?? 0
            if !dryRun {
                // Both sides of every conversation go: the user's direct messages are the user's record too.
                try db.execute(sql: "DELETE FROM messages WHERE room_id IN (\(conversations))", arguments: [userID])
                let rooms = try Int64.fetchAll(db, sql: conversations, arguments: [userID])
                try db.execute(sql: "DELETE FROM conversations WHERE user_low = ?1 OR user_high = ?1", arguments: [userID])
                for room in rooms {
                    try db.execute(sql: "DELETE FROM read_markers WHERE room_id = ?", arguments: [room])
                    try db.execute(sql: "DELETE FROM rooms WHERE id = ?", arguments: [room])
                }
                try db.execute(sql: "DELETE FROM messages WHERE user_id = ?", arguments: [userID])
                try db.execute(sql: "DELETE FROM read_markers WHERE user_id = ?", arguments: [userID])
                try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [userID])
            }
            return ForgetResult(user: row[1], messages: messages, receivedDirectMessages: received, readMarkers: markers)
        }
        return dryRun ? try reader.read(work) : try writer.write(work)
    }

    /// Writes a consistent copy of the database to `path` (which must not exist), while other
    /// connections go on reading and writing.
    public func backup(to path: String) throws {
        // VACUUM cannot run inside a transaction, and GRDB's `read` opens one: VACUUM INTO
        // takes its own read snapshot, so the copy is consistent all the same.
        try reader.unsafeRead { db in
            try db.execute(sql: "VACUUM INTO ?", arguments: [path])
        }
    }

    /// Problems found by SQLite's integrity check and the search index's own check; empty when
    /// the database is sound. FTS5 runs its check as an INSERT command, so this takes the write
    /// lock (waiting for other writers) though it changes nothing.
    public func integrityProblems() throws -> [String] {
        try writer.write { db in
            var problems = try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
            let foreignKeys = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
            problems += foreignKeys.map { "foreign key violation in \($0[0] as String) row \($0[1] as Int64? ?? 0)" }
            do {
                try db.execute(sql: "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
            } catch let error as DatabaseError {
                problems.append("search index: \(error.message ?? "integrity check failed")")
            }
            return problems
        }
    }

    /// Applies the migrations this build has and the database lacks; returns their names.
    public func migrate() throws -> [String] {
        let pending = try writer.read { db in try Migrations.pending(db) }
        try Migrations.apply(to: writer)
        return pending
    }

    /// The migrations recorded in the file at `path`, without applying any.
    public static func appliedMigrations(atPath path: String) throws -> [String] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            try db.tableExists("grdb_migrations") ? try Migrations.applied(db) : []
        }
    }

    /// Opens the database at `path` for reading and writing without creating it, for tools
    /// that change an existing database (prune, delete, forget, migrate).
    public static func openExisting(path: String) throws -> ChatDatabase {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StorageError.databaseNotFound(path: path)
        }
        return try open(path: path)
    }
}
