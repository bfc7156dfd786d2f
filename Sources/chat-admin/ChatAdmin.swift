import ArgumentParser
import ChatConfiguration
import Foundation
import PostgresStorage
import Storage
import Transcripts

@main
struct ChatAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-admin",
        abstract: "Search, export and look after the transcripts of a chat server.",
        discussion: """
            The database comes from --database, or from the configuration file (--config, default
            ./config.json). Commands that only read open it read-only: safe while the server runs.
            Times (T) are ISO 8601 dates or date-times (UTC unless they carry an offset) or ages
            such as 90m, 36h, 7d. Exit status: 0 done, 1 failed, 64 usage error.
            """,
        subcommands: [
            Search.self, Export.self, Stats.self, Users.self, Rooms.self,
            Account.self, Backup.self, Prune.self, Delete.self, Forget.self, Check.self, Migrate.self,
        ]
    )

    /// SPEC.md puts them before the command (`chat-admin --database x stats`); a command reads
    /// them through `@ParentCommand` (`DatabaseCommand`), and also takes them after its name.
    @OptionGroup var database: DatabaseOptions
}

/// A command that opens the database: `--config`/`--database` before its name (the root's) or
/// after it (its own), not both.
protocol DatabaseCommand {
    var chatAdmin: ChatAdmin { get }
    var ownDatabaseOptions: DatabaseOptions { get }
}

extension DatabaseCommand {
    /// The options given, before the command's name or after it.
    var database: DatabaseOptions {
        ownDatabaseOptions.isEmpty ? chatAdmin.database : ownDatabaseOptions
    }
}

/// Where the database is: `--database`, or the configuration file's `database.path`.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The server's configuration file (default: ./config.json).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("The SQLite database (instead of the configuration's).", valueName: "path"))
    var database: String?

    func validate() throws {
        if config != nil && database != nil {
            throw ValidationError("give --config or --database, not both")
        }
    }

    /// Neither option was given.
    var isEmpty: Bool { config == nil && database == nil }

    /// The server's configuration file, loaded (`--config`, or ./config.json).
    func configuration() throws -> ServerConfiguration {
        do {
            return try ServerConfiguration.load(path: config ?? "config.json", environment: [:])
        } catch {
            throw Failure("\(error)")
        }
    }

    /// The database file's path.
    func path() throws -> String {
        if let database { return database }
        return try configuration().database.path
    }

    /// The server's account rules (password length, hashing cost): the configuration's, or the
    /// defaults when `--database` names a file without one.
    func accountRules() throws -> ServerConfiguration.Accounts {
        guard database == nil else { return ServerConfiguration().accounts }
        return try configuration().accounts
    }

    /// The PostgreSQL database the server uses (`CHAT_DATABASE_URL`, or the configuration's
    /// `database.postgres`), or nil when it keeps its history in SQLite (or `--database` names
    /// a file).
    func postgresURL() throws -> String? {
        guard database == nil else { return nil }
        if let url = ProcessInfo.processInfo.environment["CHAT_DATABASE_URL"], !url.isEmpty { return url }
        return try configuration().database.postgres
    }

    /// Where the history is, for messages: the file, or the database URL without its password.
    func location() throws -> String {
        if let url = try postgresURL() { return PostgresStore.redacted(url) }
        return try path()
    }

    func openReadOnly() throws -> any AdminStore {
        if let url = try postgresURL() { return try openPostgres(url, migrating: false) }
        let path = try path()
        do {
            return try ChatDatabase.openReadOnly(path: path)
        } catch {
            throw Failure("cannot open \(path): \(error)")
        }
    }

    func openForWriting() throws -> any AdminStore {
        if let url = try postgresURL() { return try openPostgres(url, migrating: true) }
        let path = try path()
        do {
            return try ChatDatabase.openExisting(path: path)
        } catch {
            throw Failure("cannot open \(path): \(error)")
        }
    }

    /// PostgreSQL: connects (the tool's commands are synchronous, so this waits for it).
    func openPostgres(_ url: String, migrating: Bool, allowingPending: Bool = false) throws -> PostgresStore {
        do {
            return try PostgresStore.waitFor {
                try await PostgresStore.open(url: url, migrating: migrating, requiringCurrentSchema: !allowingPending, connections: 2)
            }
        } catch {
            throw Failure("cannot open \(PostgresStore.redacted(url)): \(error)")
        }
    }
}

/// Which messages: the filters shared by search and export.
struct FilterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Only this room.", valueName: "room"))
    var room: String?

    @Option(help: ArgumentHelp("Only this user's messages.", valueName: "user"))
    var user: String?

    @Option(help: ArgumentHelp("From this time on (inclusive).", valueName: "T"))
    var since: TimeArgument?

    @Option(help: ArgumentHelp("Before this time (exclusive).", valueName: "T"))
    var until: TimeArgument?

    @Flag(help: "Leave direct messages out (they are included, marked @recipient, by default).")
    var roomsOnly = false

    var filter: MessageFilter {
        MessageFilter(room: room.map(canonicalRoomName), user: user, since: since?.milliseconds, until: until?.milliseconds,
                      directMessages: roomsOnly ? .none : .all)
    }
}

/// Room names as the server stores them: `#Lobby` is `lobby`.
func canonicalRoomName(_ name: String) -> String {
    var name = Substring(name)
    if name.hasPrefix("#") { name = name.dropFirst() }
    return name.lowercased()
}

/// A runtime failure: printed as `chat-admin: message`, exit status 1.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A usage problem found after parsing (a bad search query): exit status 64.
struct UsageFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning failures into a message on stderr and the documented exit status.
    func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
            // `print` buffers: an output that cannot be written (a full disk, /dev/full, a
            // closed pipe) must fail the command, not pass unnoticed.
            if fflush(nil) != 0 {
                throw Failure("cannot write the output: \(String(cString: strerror(errno)))")
            }
        } catch let failure as Failure {
            printError("chat-admin: \(failure)")
            throw ExitCode.failure
        } catch let failure as UsageFailure {
            printError("chat-admin: \(failure)")
            throw ExitCode(64)
        } catch let error as BufferedOutput.WriteError {
            printError("chat-admin: \(error)")
            throw ExitCode.failure
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

extension TranscriptFormat: ExpressibleByArgument {}

/// Whether standard error/output is a terminal (progress bars, colours).
func isTerminal(_ descriptor: Int32) -> Bool {
    isatty(descriptor) == 1
}

/// Colours only on a terminal and without NO_COLOR.
var colorsEnabled: Bool {
    isTerminal(STDOUT_FILENO) && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
}

/// `1234567` as `1,234,567`.
func grouped(_ number: Int) -> String {
    let digits = String(number.magnitude)
    var result = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(digit)
    }
    return number < 0 ? "-" + result : result
}
