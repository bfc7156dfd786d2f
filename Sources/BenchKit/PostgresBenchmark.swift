import ArgumentParser
import Foundation
import PostgresStorage

/// `chat-bench postgres-append`: sustained durable appends on PostgreSQL (issue 14's first target),
/// through `PostgresStore.append`: batches of `--batch` messages, `--writers` at once (across
/// `--nodes` pools, as several chat-server nodes would), each batch one transaction with its ids
/// in commit order and its range announced. The server's own settings decide durability: run it
/// with `synchronous_commit = on` (the default of `Scripts/postgres.sh`).
public struct PostgresAppendBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "postgres-append",
        abstract: "Sustained durable appends on a PostgreSQL database (loopback only).",
        discussion: "Example: chat-bench postgres-append --port 5432 --messages 200000 --batch 256 --writers 4")

    @Option(help: "The PostgreSQL server's port on 127.0.0.1.") var port: Int
    @Option(help: "The database user.") var user = "chat"
    @Option(help: "The database.") var database = "chat"
    @Option(help: "Messages to append.") var messages = 200_000
    @Option(help: "Messages per transaction.") var batch = 256
    @Option(help: "Appends in flight at once.") var writers = 4
    @Option(help: "Pools (nodes) the writers are spread over.") var nodes = 1
    @Option(help: "Bytes of text per message.") var size = 100

    public func validate() throws {
        guard messages >= 1, messages <= 10_000_000 else { throw ValidationError("--messages must be between 1 and 10000000") }
        guard batch >= 1, batch <= 10_000 else { throw ValidationError("--batch must be between 1 and 10000") }
        guard writers >= 1, writers <= 64, nodes >= 1, nodes <= writers else { throw ValidationError("1 <= --nodes <= --writers <= 64") }
        guard size >= 1, size <= 16_000 else { throw ValidationError("--size must be between 1 and 16000") }
    }

    public func run() async throws {
        let stores = (0..<nodes).map { _ in
            PostgresStore(host: "127.0.0.1", port: port, username: user, database: database, connections: max(2, self.writers / self.nodes + 1))
        }
        try await stores[0].migrate()
        let room = try await stores[0].roomID(named: "bench")
        let author = try await stores[0].userID(named: "bench")
        let before = try await stores[0].newestMessageID()
        let words = ["deploy", "friday", "lunch", "build", "release", "coffee", "review", "merge", "test", "ship"]
        let (messages, batch, size, writers) = (self.messages, self.batch, self.size, self.writers)
        let started = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                let store = stores[writer % stores.count]
                group.addTask {
                    var next = writer * batch
                    while next < messages {
                        let count = min(batch, messages - next)
                        let drafts = (0..<count).map { offset -> PostgresStore.Draft in
                            let n = next + offset
                            var text = "\(words[n % words.count]) \(words[(n / 7) % words.count]) \(n) "
                            text += String(repeating: "x", count: max(0, size - text.utf8.count))
                            return PostgresStore.Draft(roomID: room, userID: author, text: text)
                        }
                        _ = try await store.append(drafts)
                        next += writers * batch
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = Date().timeIntervalSince(started)
        let after = try await stores[0].newestMessageID()
        for store in stores { await store.shutdown() }
        let stored = Int(after - before)
        printError(String(format: "postgres-append: %d messages in %.2f s = %.0f/s (batch %d, %d writers, %d nodes)",
                          stored, seconds, Double(stored) / seconds, batch, writers, nodes))
        try printReport(["benchmark": "postgres-append", "messages": stored, "seconds": seconds, "per_second": Double(stored) / seconds,
                         "batch": batch, "writers": writers, "nodes": nodes, "size": size])
    }
}
