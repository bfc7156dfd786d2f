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

    /// Applies what is missing; refuses a database written by a newer build.
    static func apply(to writer: any DatabaseWriter) throws {
        let migrator = migrator
        let unknown = try writer.read { db in
            try migrator.appliedIdentifiers(db).subtracting(migrator.migrations)
        }
        if !unknown.isEmpty { throw StorageError.unknownMigrations(unknown.sorted()) }
        try migrator.migrate(writer)
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
