import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL database for one test, from Debian's packages (`.ci/run` installs them).
/// Either a cluster of its own (`init()`: `Scripts/postgres.sh` runs initdb into a fresh folder
/// and starts it on a free loopback port), for a test that stops and restarts the server; or a
/// fresh database on the test run's one shared cluster (`onSharedCluster()`), which saves every
/// other test an initdb and a server start. `stop()` removes what the test was given.
public final class PostgresCluster: Sendable {
    public let folder: String
    public let port: Int
    /// The database the test uses.
    public let database: String
    /// Whether the server is this test's own (to pause, resume and remove), not the shared one.
    private let ownsServer: Bool

    public init() throws {
        folder = "/tmp/chat-pg-\(UUID().uuidString.prefix(8))"
        database = "chat"
        ownsServer = true
        try Self.script(["start", folder])
        // The port comes back in a file, not a pipe: the server outlives the script and would
        // hold a pipe's write end (inherited) open forever.
        let written = try String(contentsOfFile: folder + "/port", encoding: .utf8)
        guard let port = Int(written.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw PostgresClusterError("Scripts/postgres.sh start wrote no port: \(written)")
        }
        self.port = port
    }

    private init(sharing server: PostgresCluster, database: String) {
        folder = server.folder
        port = server.port
        self.database = database
        ownsServer = false
    }

    /// A new, empty database on the shared cluster, started by the first test that asks and
    /// stopped when the test process exits.
    public static func onSharedCluster() throws -> PostgresCluster {
        let server = try shared.get()
        let database = "test_\(UUID().uuidString.prefix(8).lowercased())"
        try script(["createdb", server.folder, database])
        return PostgresCluster(sharing: server, database: database)
    }

    private static let shared: Result<PostgresCluster, any Error> = {
        let result = Result { try PostgresCluster() }
        if case .success = result {
            // A closure that captures nothing: atexit takes a C function pointer.
            atexit { if case .success(let cluster) = PostgresCluster.shared { cluster.stopServer() } }
        }
        return result
    }()

    /// A URL for `database.postgres`.
    public var url: String { "postgres://chat@127.0.0.1:\(port)/\(database)" }

    /// Stops the server (fast mode: open connections are cut), keeping its data and port. Only
    /// on a cluster of the test's own.
    public func pause() throws {
        precondition(ownsServer, "pause() needs a cluster of the test's own: PostgresCluster()")
        try Self.script(["pause", folder])
    }

    /// Starts the server again after `pause`.
    public func resume() throws {
        precondition(ownsServer, "resume() needs a cluster of the test's own: PostgresCluster()")
        try Self.script(["resume", folder])
    }

    /// Removes what the test was given: its cluster, or its database on the shared one.
    public func stop() {
        if ownsServer {
            stopServer()
        } else {
            _ = try? Self.script(["dropdb", folder, database])
        }
    }

    private func stopServer() {
        _ = try? Self.script(["stop", folder])
    }

    /// Runs `Scripts/postgres.sh` to its end. Not with Foundation's `Process`: the server the script
    /// starts outlives it, and Process then never noticed the script's own exit here. Nor with
    /// `system()`, which would hand the server every descriptor of the test process.
    private static func script(_ arguments: [String]) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let log = "/tmp/chat-pg-script-\(UUID().uuidString.prefix(8)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = try spawnAndWait(["/bin/bash", root.appending(path: "Scripts/postgres.sh").path] + arguments, outputPath: log)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw PostgresClusterError("Scripts/postgres.sh \(arguments[0]) failed (\(status)): \(text)")
        }
    }
}


public struct PostgresClusterError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
