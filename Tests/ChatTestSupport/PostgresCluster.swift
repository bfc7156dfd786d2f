import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL cluster for one test: `Scripts/postgres.sh` makes it (initdb into a fresh
/// folder, a free loopback port) and removes it. Needs Debian's `postgresql` (`.ci/run`
/// installs it).
public final class PostgresCluster: Sendable {
    public let folder: String
    public let port: Int

    public init() throws {
        folder = "/tmp/chat-pg-\(UUID().uuidString.prefix(8))"
        try Self.script(["start", folder])
        // The port comes back in a file, not a pipe: the server outlives the script and would
        // hold a pipe's write end (inherited) open forever.
        let written = try String(contentsOfFile: folder + "/port", encoding: .utf8)
        guard let port = Int(written.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw PostgresClusterError("Scripts/postgres.sh start wrote no port: \(written)")
        }
        self.port = port
    }

    /// A URL for `database.postgres`.
    public var url: String { "postgres://chat@127.0.0.1:\(port)/chat" }

    /// Stops the server (fast mode: open connections are cut), keeping its data and port.
    public func pause() throws {
        try Self.script(["pause", folder])
    }

    /// Starts the server again after `pause`.
    public func resume() throws {
        try Self.script(["resume", folder])
    }

    public func stop() {
        _ = try? Self.script(["stop", folder])
    }

    /// Runs `Scripts/postgres.sh` to its end. Not with Foundation's `Process`: the server the script
    /// starts outlives it, and Process then never noticed the script's own exit here.
    private static func script(_ arguments: [String]) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let log = "/tmp/chat-pg-script-\(UUID().uuidString.prefix(8)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let command = ([root.appending(path: "Scripts/postgres.sh").path] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let status = system("/bin/bash \(command) </dev/null >'\(log)' 2>&1")
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
