import Crypto
import GRDB

/// The schema: `migrations/NNNN_name.sql`, compiled in at build time, applied in order, each once,
/// recorded in the database under its file name.
public enum Migrations {
    /// Every migration this build carries, in order: name (file name without `.sql`) and SQL.
    public static var all: [(name: String, sql: String)] {
        EmbeddedMigrations.all.map { (String($0.name.dropLast(".sql".count)), $0.text) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator().disablingDeferredForeignKeyChecks()
        for migration in all {
            migrator.registerMigration(migration.name) { db in
                try db.execute(sql: migration.sql)
            }
        }
        return migrator
    }

    /// Applies what is missing; refuses a database written by a newer build, and one whose
    /// applied migration differs from this build's file of the same name (a shipped migration
    /// was edited). Each applied migration's checksum is recorded the first time it is seen.
    static func apply(to writer: any DatabaseWriter) throws {
        let migrator = migrator
        let unknown = try writer.read { db in
            try migrator.appliedIdentifiers(db).subtracting(migrator.migrations)
        }
        if !unknown.isEmpty { throw StorageError.unknownMigrations(unknown.sorted()) }
        try writer.read { db in try verifyChecksums(db) }
        try migrator.migrate(writer)
        try writer.write { db in
            // The migrator's own bookkeeping, beside GRDB's `grdb_migrations`: not schema.
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS migration_checksums (name TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
            let files = Dictionary(all.map { ($0.name, MigrationChecksum.of($0.sql)) }, uniquingKeysWith: { first, _ in first })
            for name in try migrator.appliedMigrations(db) {
                guard let checksum = files[name] else { continue }
                try db.execute(sql: "INSERT OR IGNORE INTO migration_checksums (name, sha256) VALUES (?, ?)", arguments: [name, checksum])
            }
        }
    }

    /// Throws `StorageError.changedMigration` for the first applied migration whose recorded
    /// checksum differs from this build's file.
    static func verifyChecksums(_ db: Database) throws {
        guard try db.tableExists("migration_checksums") else { return }
        let recorded = try Row.fetchAll(db, sql: "SELECT name, sha256 FROM migration_checksums ORDER BY name")
        try MigrationChecksum.verify(recorded: recorded.map { ($0["name"], $0["sha256"]) }, against: all)
    }

    /// The names of the migrations applied to a database, in order.
    public static func applied(_ db: Database) throws -> [String] {
        try migrator.appliedMigrations(db)
    }

    static func pending(_ db: Database) throws -> [String] {
        let applied = try migrator.appliedIdentifiers(db)
        return migrator.migrations.filter { !applied.contains($0) }
    }
}

/// The identity of a migration's text: a shipped migration is never edited, and a database
/// remembers the checksum of every migration it applied so an edit is refused by name.
public enum MigrationChecksum {
    /// The SHA-256 of the migration's text, in lower-case hex.
    public static func of(_ sql: String) -> String {
        SHA256.hash(data: Array(sql.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// Throws `StorageError.changedMigration` for the first recorded migration (name, checksum)
    /// whose file in `migrations` has another checksum.
    public static func verify(recorded: [(name: String, checksum: String)], against migrations: [(name: String, sql: String)]) throws {
        let files = Dictionary(migrations.map { ($0.name, $0.sql) }, uniquingKeysWith: { first, _ in first })
        for entry in recorded.sorted(by: { $0.name < $1.name }) {
            guard let sql = files[entry.name] else { continue }
            let actual = of(sql)
            if actual != entry.checksum {
                throw StorageError.changedMigration(name: entry.name, recorded: entry.checksum, file: actual)
            }
        }
    }
}
