import Foundation
import PackagePlugin

/// Compiles files of the package into a target as Swift string literals, so the executables carry
/// them wherever they are copied (no resource bundle): the SQLite migrations (`migrations/*.sql`)
/// into Storage, the PostgreSQL ones (`migrations/postgres/*.sql`) into PostgresStorage, and the
/// browser client (`web/`: HTML, CSS, JavaScript written by hand) into WebFace.
/// SwiftPM asks the plugin for its commands again only when the package changes: after adding a
/// file (a new migration) to an existing build folder, `touch Package.swift` before building, or
/// the build goes on embedding the old list. A fresh clone is always right.
@main
struct EmbedFiles: BuildToolPlugin {
    /// Per target: the folder, the file extensions taken from it, and the enum generated.
    static let embeddings: [String: (folder: String, extensions: Set<String>, enumName: String)] = [
        "Storage": ("migrations", ["sql"], "EmbeddedMigrations"),
        "PostgresStorage": ("migrations/postgres", ["sql"], "EmbeddedMigrations"),
        "WebFace": ("web", ["html", "css", "js", "svg", "webmanifest"], "EmbeddedWebClient"),
    ]

    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let embedding = Self.embeddings[target.name] else { return [] }
        let folder = context.package.directoryURL.appending(path: embedding.folder)
        let files = try FileManager.default
            .contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { embedding.extensions.contains($0.pathExtension) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "\(embedding.enumName).swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) files of \(embedding.folder) into \(target.name)",
                executable: try context.tool(named: "embed-files").url,
                arguments: [output.path, embedding.enumName] + files.map(\.path),
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
