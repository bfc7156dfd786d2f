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
}
