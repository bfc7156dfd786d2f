/// Storage failures a caller can act on; everything else is a `DatabaseError` from SQLite.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A read-only open of a file that does not exist (it is never created).
    case databaseNotFound(path: String)
    /// The FTS5 query does not parse; `reason` is SQLite's explanation.
    case invalidSearchQuery(query: String, reason: String)
    /// The database was written by a newer version of this software.
    case unknownMigrations([String])
    /// A migration the database applied differs from this build's file of the same name: a
    /// shipped migration was edited. The checksums are SHA-256 in hex.
    case changedMigration(name: String, recorded: String, file: String)
    /// A `say` whose nonce the author gave another message, in another room or conversation,
    /// within the last 24 hours.
    case nonceReused(nonce: String)
    /// The database did not say whether the write committed (a deadline passed, or the connection
    /// went, while it ran): the caller cannot tell stored from not stored.
    case unknownOutcome
    /// The database lacks migrations that a read-only open cannot apply.
    case pendingMigrations([String])
    /// The group-commit writer has been shut down.
    case closed
    /// The name is an account already.
    case accountExists(name: String)
    /// A direct message to a name the database does not know.
    case noSuchUser(name: String)
    /// A WAL database in a folder this process cannot write, with changes not yet checkpointed
    /// into the main file: they can be read only where the `-shm` index can be created.
    case uncheckpointedInReadOnlyFolder(path: String)

    public var description: String {
        switch self {
        case .databaseNotFound(let path):
            "no database at \(path)"
        case .invalidSearchQuery(let query, let reason):
            "invalid search query \"\(query)\": \(reason)"
        case .unknownMigrations(let names):
            "the database has migrations this program does not know (\(names.joined(separator: ", "))): it was written by a newer version"
        case .changedMigration(let name, let recorded, let file):
            "migration \(name) was applied as a different text (checksum \(recorded.prefix(12))…) than this program's file (\(file.prefix(12))…): shipped migrations must not be edited; restore the file or add a new migration"
        case .nonceReused(let nonce):
            "the nonce \"\(nonce)\" was used for another message in the last 24 hours"
        case .unknownOutcome:
            "the database did not say whether the message was stored"
        case .pendingMigrations(let names):
            "the database needs migrations \(names.joined(separator: ", ")): run `chat-admin migrate` or start the server"
        case .closed:
            "the database is closed"
        case .accountExists(let name):
            "\(name) is an account already"
        case .uncheckpointedInReadOnlyFolder(let path):
            "\(path) is in a folder that cannot be written and has changes still in its write-ahead log: read it where it can be written, or stop the server that writes it so it checkpoints"
        case .noSuchUser(let name):
            "there is no user \(name)"
        }
    }
}
