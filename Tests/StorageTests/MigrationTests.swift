import Foundation
import GRDB
import Testing
@testable import Storage

@Suite struct MigrationTests {
    /// The folder `migrations/` of this package, found from this source file.
    static let migrationsFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "migrations")

    @Test func embeddedMigrationsAreExactlyTheFilesInMigrationsFolder() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.migrationsFolder.path)
            .filter { $0.hasSuffix(".sql") }.sorted()
        #expect(!files.isEmpty)
        #expect(Migrations.all.map(\.name) == files.map { String($0.dropLast(4)) })
        for (file, embedded) in zip(files, Migrations.all) {
            let content = try String(contentsOf: Self.migrationsFolder.appending(path: file), encoding: .utf8)
            #expect(embedded.sql == content, "migration \(file) differs from what the binaries apply")
        }
    }

    @Test func migrationFilesAreNumberedInOrder() throws {
        for (index, migration) in Migrations.all.enumerated() {
            let number = String(format: "%04d_", index + 1)
            #expect(migration.name.hasPrefix(number), "\(migration.name) should start with \(number)")
        }
    }

    @Test func migrationsAreAppliedOnceAndRecordedByName() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("chat.sqlite")
        let first = try ChatDatabase.open(path: path)
        #expect(try first.appliedMigrations() == Migrations.all.map(\.name))
        first.close()
        // Reopening applies nothing again (the tables exist, a second CREATE would fail).
        let second = try ChatDatabase.open(path: path)
        #expect(try second.appliedMigrations() == Migrations.all.map(\.name))
        #expect(try second.migrate() == [])
    }

    @Test func aDatabaseFromANewerBuildIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("chat.sqlite")
        _ = try ChatDatabase.open(path: path)
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('9999_future')")
        }
        #expect(throws: StorageError.unknownMigrations(["9999_future"])) {
            try ChatDatabase.open(path: path)
        }
    }

    @Test func readOnlyOpenNeverCreatesAMissingFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("missing.sqlite")
        #expect(throws: StorageError.databaseNotFound(path: path)) {
            try ChatDatabase.openReadOnly(path: path)
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// Every shipped migration, by the SHA-256 of its text. A shipped migration is never edited:
    /// a change of schema is a new numbered file, added here once it ships.
    static let shipped: [String: String] = [
        "0001_initial": "034bf10457d0a1a2a822bd880b957edb0a79aa6fee66cda8abcf3993538b12b4",
        "0002_accounts_and_direct_messages": "f7df222515ddb4fd278593eca330be86104de3de2773d2e7d6066327b2c8c7f6",
        "0003_message_nonces": "c1ec8147ffe37540c0d3426a5b5f5292c675fe8b8f7eed41d27435bf9d4471cc",
    ]

    @Test func shippedMigrationsAreNeverEdited() throws {
        for migration in Migrations.all {
            let checksum = try #require(Self.shipped[migration.name], "\(migration.name) is new: add its checksum to MigrationTests.shipped when it ships")
            #expect(MigrationChecksum.of(migration.sql) == checksum, "\(migration.name) was edited after it shipped: add a new migration instead")
        }
    }

    /// The migrator records each applied migration's checksum and refuses, by name, a database
    /// whose applied migration was another text than this build's file.
    @Test func aDatabaseThatAppliedAnotherTextOfAMigrationIsRefusedByName() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("chat.sqlite")
        try ChatDatabase.open(path: path).close()
        let queue = try DatabaseQueue(path: path)
        let recorded = try queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM migration_checksums ORDER BY name") }
        #expect(recorded == Migrations.all.map(\.name))
        try queue.write { db in
            try db.execute(sql: "UPDATE migration_checksums SET sha256 = 'edited' WHERE name = '0002_accounts_and_direct_messages'")
        }
        try queue.close()
        let expected = StorageError.changedMigration(name: "0002_accounts_and_direct_messages", recorded: "edited",
                                                     file: MigrationChecksum.of(Migrations.all[1].sql))
        #expect(throws: expected) { try ChatDatabase.open(path: path) }
        #expect(throws: expected) { try ChatDatabase.openReadOnly(path: path) }
        #expect(expected.description.contains("0002_accounts_and_direct_messages"))
    }

    /// A database from before checksums were recorded gets them on its next open.
    @Test func checksumsAreRecordedForADatabaseThatHadNone() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("chat.sqlite")
        try ChatDatabase.open(path: path).close()
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "DROP TABLE migration_checksums") }
        try queue.close()
        try ChatDatabase.open(path: path).close()
        let reopened = try DatabaseQueue(path: path)
        let rows = try reopened.read { db in try Row.fetchAll(db, sql: "SELECT name, sha256 FROM migration_checksums ORDER BY name") }
        #expect(rows.map { $0["name"] as String } == Migrations.all.map(\.name))
        #expect(rows.map { $0["sha256"] as String } == Migrations.all.map { MigrationChecksum.of($0.sql) })
    }
}
