import Foundation
import PackagePlugin

/// Compiles the package's `migrations/*.sql` (SQLite, for Storage) or `migrations/postgres/*.sql`
/// (for PostgresStorage) into the target as Swift string literals, so the executables carry their
/// schema with them wherever they are copied (no resource bundle).
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let folder = target.name == "PostgresStorage" ? "migrations/postgres" : "migrations"
        let migrationsDirectory = context.package.directoryURL.appending(path: folder)
        let sqlFiles = try FileManager.default
            .contentsOfDirectory(at: migrationsDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(sqlFiles.count) migrations into \(target.name)",
                executable: try context.tool(named: "embed-files").url,
                arguments: [output.path, "EmbeddedMigrations"] + sqlFiles.map(\.path),
                inputFiles: sqlFiles,
                outputFiles: [output]
            )
        ]
    }
}
