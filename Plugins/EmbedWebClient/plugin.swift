import Foundation
import PackagePlugin

/// Compiles the package's `web/` folder (the browser client: HTML, CSS, JavaScript written by
/// hand) into the target as Swift string literals, so chat-server serves it from the binary.
@main
struct EmbedWebClient: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let webDirectory = context.package.directoryURL.appending(path: "web")
        let files = try FileManager.default
            .contentsOfDirectory(at: webDirectory, includingPropertiesForKeys: nil)
            .filter { ["html", "css", "js", "svg", "webmanifest"].contains($0.pathExtension) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedWebClient.swift")
        return [
            .buildCommand(
                displayName: "Embedding the web client (\(files.count) files) into \(target.name)",
                executable: try context.tool(named: "embed-files").url,
                arguments: [output.path, "EmbeddedWebClient"] + files.map(\.path),
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
