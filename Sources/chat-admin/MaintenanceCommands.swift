import ArgumentParser
import Foundation
import Storage

struct Backup: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(abstract: "A consistent copy of the database, taken while the server runs.")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Argument(help: "The new file (must not exist).")
    var file: String

    func run() async throws {
        try reporting {
            // lstat, not stat: a dangling symbolic link "does not exist" for stat, and SQLite
            // would follow it and write wherever it points.
            var status = stat()
            guard lstat(file, &status) != 0 else {
                throw Failure("\(file) already exists (or is a link); choose a new file")
            }
            let store = try database.openReadOnly()
            do {
                try store.backup(to: file)
            } catch {
                // Never leave a partial copy behind (a full disk stops VACUUM INTO midway).
                try? FileManager.default.removeItem(atPath: file)
                throw Failure("backup to \(file) failed: \(error)")
            }
            if try database.postgresURL() != nil {
                print("backed up \(try database.location()) to \(file) (pg_dump's custom format: restore with pg_restore)")
            } else {
                let copy = try ChatDatabase.openReadOnly(path: file)
                print("backed up \(grouped(try copy.countMessages())) messages to \(file)")
            }
        }
    }
}

struct Prune: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(abstract: "Delete messages older than a time (and their search index entries).")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Option(help: ArgumentHelp("Delete messages before this time (exclusive).", valueName: "T"))
    var before: TimeArgument
    @Option(help: "Only in this room.")
    var room: String?
    @Flag(help: "Only count what would be deleted.")
    var dryRun = false

    func run() async throws {
        try reporting {
            let store = dryRun ? try database.openReadOnly() : try database.openForWriting()
            let count = try store.prune(before: before.milliseconds, room: room.map(canonicalRoomName), dryRun: dryRun)
            let scope = room.map { " in #\(canonicalRoomName($0))" } ?? ""
            print("\(dryRun ? "would prune" : "pruned") \(grouped(count)) messages\(scope) before \(timeText(before.milliseconds))")
        }
    }
}

struct Delete: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(abstract: "Delete messages by id (and their search index entries).")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Argument(help: "Message ids.")
    var ids: [Int64]
    @Flag(help: "Only report what would be deleted.")
    var dryRun = false

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one message id") }
    }

    func run() async throws {
        try reporting {
            let store = dryRun ? try database.openReadOnly() : try database.openForWriting()
            let found = try store.deleteMessages(ids: ids, dryRun: dryRun)
            let missing = ids.filter { !found.contains($0) }
            print("\(dryRun ? "would delete" : "deleted") \(found.count) message\(found.count == 1 ? "" : "s")\(found.isEmpty ? "" : ": " + found.map(String.init).joined(separator: " "))")
            if !missing.isEmpty {
                print("not found: \(missing.map(String.init).joined(separator: " "))")
            }
        }
    }
}

struct Forget: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Erase a user: every message, direct conversations (both sides), read markers, account and the user record.")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Argument(help: "The user name (any case).")
    var user: String
    @Flag(help: "Only count what would be erased.")
    var dryRun = false

    func run() async throws {
        try reporting {
            let store = dryRun ? try database.openReadOnly() : try database.openForWriting()
            let result = try store.forgetUser(named: user, dryRun: dryRun)
            guard let name = result.user else { throw Failure("no user named \(user)") }
            print("\(dryRun ? "would forget" : "forgot") \(name): \(grouped(result.messages)) messages, \(grouped(result.receivedDirectMessages)) direct messages received, \(result.readMarkers) read markers")
        }
    }
}

struct Check: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the database's integrity and its search index.",
        discussion: "Changes nothing, but SQLite runs the index check as a write: it waits for the server's writer.")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions

    func run() async throws {
        try reporting {
            if try database.postgresURL() != nil { return try report(try database.openReadOnly().integrityProblems()) }
            let path = try database.path()
            // Opening for writing would apply the migrations: a file that is not (yet) a chat
            // database must be reported, not turned into one.
            let applied: [String]
            do {
                applied = try ChatDatabase.appliedMigrations(atPath: path)
            } catch {
                throw Failure("\(path) is not a chat database: \(error)")
            }
            guard !applied.isEmpty else { throw Failure("\(path) is not a chat database (it has no schema)") }
            try report(try database.openForWriting().integrityProblems())
        }
    }

    private func report(_ problems: [String]) throws {
        if problems.isEmpty {
            print("ok")
        } else {
            for problem in problems { print(problem) }
            throw Failure("\(problems.count) problem\(problems.count == 1 ? "" : "s") found")
        }
    }
}

struct Migrate: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the schema migrations the database lacks.")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions

    func run() async throws {
        try reporting {
            let before: [String]
            if let url = try database.postgresURL() {
                // Opened without migrating first, to tell what the migration then applied.
                let store = try database.openPostgres(url, migrating: false, allowingPending: true)
                before = try store.appliedMigrations()
            } else {
                let path = try database.path()
                guard FileManager.default.fileExists(atPath: path) else { throw Failure("no database at \(path)") }
                before = try ChatDatabase.appliedMigrations(atPath: path)
            }
            // Opening for writing applies what is missing; report what that was.
            let store = try database.openForWriting()
            let applied = try store.appliedMigrations().filter { !before.contains($0) }
            print(applied.isEmpty ? "up to date (\(before.last ?? "no migrations"))" : "applied \(applied.joined(separator: ", "))")
        }
    }
}
