import ChatProtocol
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ChatTestSupport
import PostgresNIO
import PostgresStorage
import Storage
import Synchronization
import Testing

extension PostgresCluster {
    func store(connections: Int = 8, commitDeadline: Duration = .seconds(5)) -> PostgresStore {
        // CHAT_TEST_LOG=trace shows the client's log while debugging a test.
        var logger = Logger(label: "postgres") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["CHAT_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return PostgresStore(host: "127.0.0.1", port: port, username: "chat", database: database, connections: connections,
                             commitDeadline: commitDeadline, logger: logger)
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

struct PostgresStoreTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite(.serialized) struct PostgresStoreTests {
    func withCluster(_ body: (PostgresCluster) async throws -> Void) async throws {
        let cluster = try PostgresCluster.onSharedCluster()
        do {
            try await body(cluster)
        } catch {
            cluster.stop()
            throw error
        }
        cluster.stop()
    }

    @Test func migrationsApplyOnceEvenWhenSeveralNodesStartTogether() async throws {
        try await withCluster { cluster in
            let nodes = (0..<3).map { _ in cluster.store(connections: 2) }
            let applied = try await withThrowingTaskGroup(of: [String].self) { group in
                for node in nodes { group.addTask { try await node.migrate() } }
                var all: [String] = []
                for try await names in group { all += names }
                return all
            }
            #expect(applied == PostgresStore.migrations.map(\.name), "each migration applied by exactly one node")
            #expect(try await nodes[0].migrate().isEmpty)
            for node in nodes { await node.shutdown() }
        }
    }

    /// Every shipped PostgreSQL migration, by the SHA-256 of its text (never edited once shipped).
    static let shippedMigrations: [String: String] = [
        "0001_initial": "7bd25abf9e83ddaa0a7539b9b55954ebe8e33fcae76efe6af92ea8795138707d",
        "0002_accounts_and_direct_messages": "76880db52e2f8a8ce348489c2dab3de9a889f3c6cbbb3a4aaf6dea83342511f5",
        "0003_presence": "f9edec8be313990695d50e099a9be991283b23b78226d05555589dfb668c3664",
        "0004_append_procedure": "c8723e81ccd035abf602dd07514dac1003d8560cc22e55f2395bc162d6f14c7d",
        "0005_append_outside_the_lock": "e9e42430509fbf17a672e5d45b781208e1eb929d76841a6fc3589edc45a85b53",
        "0006_nonces_and_monotonic_times": "6ea6310aacd0b92df32e2873b3e0bcf68983e7cf7a302a57ce551080775e8bf8",
    ]

    @Test func shippedMigrationsAreNeverEdited() {
        for migration in PostgresStore.migrations {
            let checksum = Self.shippedMigrations[migration.name]
            #expect(checksum != nil, "\(migration.name) is new: add its checksum to shippedMigrations when it ships")
            #expect(checksum == nil || MigrationChecksum.of(migration.sql) == checksum,
                    "\(migration.name) was edited after it shipped: add a new migration instead")
        }
    }

    @Test func aDatabaseThatAppliedAnotherTextOfAMigrationIsRefusedByName() async throws {
        try await withCluster { cluster in
            let store = cluster.store(connections: 2)
            try await store.migrate()
            let recorded = try await store.recordedMigrationChecksums()
            #expect(recorded.map(\.name).sorted() == PostgresStore.migrations.map(\.name))
            let logger = Logger(label: "migration-test") { _ in SwiftLogNoOpLogHandler() }
            let configuration = PostgresConnection.Configuration(host: "127.0.0.1", port: cluster.port, username: "chat",
                                                                 password: nil, database: cluster.database, tls: .disable)
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            try await connection.query("UPDATE schema_migrations SET checksum = 'edited' WHERE name = '0003_presence'", logger: logger)
            try await connection.close()
            let expected = StorageError.changedMigration(name: "0003_presence", recorded: "edited",
                                                         file: MigrationChecksum.of(PostgresStore.migrations[2].sql))
            await #expect(throws: expected) { try await store.migrate() }
            await store.shutdown()
            await #expect(throws: expected) { try await PostgresStore.open(url: cluster.url, migrating: false) }
            await #expect(throws: expected) { try await PostgresStore.open(url: cluster.url) }
        }
    }

    @Test func storedMessagesReadBackInIDOrder() async throws {
        try await withCluster { cluster in
            let store = cluster.store()
            try await store.migrate()
            let alice = try await store.userID(named: "Alice")
            #expect(try await store.userID(named: "alice") == alice, "names are case-insensitive")
            let lobby = try await store.roomID(named: "lobby")
            let ids = try await store.append([
                .init(roomID: lobby, userID: alice, text: "hello"),
                .init(roomID: lobby, userID: alice, kind: .action, text: "waves"),
            ])
            #expect(ids.map(\.id) == [1, 2])
            let back = try await store.messages(after: 0)
            #expect(back.map(\.text) == ["hello", "waves"] && back.map(\.kind) == [.text, .action])
            #expect(back.allSatisfy { $0.roomID == lobby && $0.userID == alice })
            #expect(try await store.newestMessageID() == 2)
            await store.shutdown()
        }
    }

    /// The order argument of docs/design.md, tested: three "nodes" (pools of their own) commit
    /// batches at once while a reader polls for new ids. Every poll must see exactly the next
    /// ids, with no gap that a slower commit fills later, and the end holds every id once.
    @Test func idsFollowCommitOrderAcrossNodesCommittingAtOnce() async throws {
        try await withCluster { cluster in
            let nodes = (0..<3).map { _ in cluster.store(connections: 4) }
            try await nodes[0].migrate()
            let room = try await nodes[0].roomID(named: "lobby")
            let user = try await nodes[0].userID(named: "writer")
            let reader = cluster.store(connections: 1)
            let writersDone = Counter()
            let perWriter = 40
            let writers = nodes.count * 4

            let gaps = try await withThrowingTaskGroup(of: [String].self) { group in
                for writer in 0..<writers {
                    let node = nodes[writer % nodes.count]
                    group.addTask {
                        for batch in 0..<perWriter {
                            let size = 1 + (writer + batch) % 7
                            _ = try await node.append((0..<size).map { .init(roomID: room, userID: user, text: "w\(writer) b\(batch) m\($0)") })
                        }
                        writersDone.value.wrappingAdd(1, ordering: .relaxed)
                        return []
                    }
                }
                group.addTask {
                    // The reader: each page must continue exactly where the last one ended.
                    var last: Int64 = 0
                    var problems: [String] = []
                    while true {
                        let finished = writersDone.value.load(ordering: .relaxed) == writers
                        let page = try await reader.messages(after: last)
                        for message in page {
                            if message.id != last + 1 { problems.append("saw \(message.id) right after \(last)") }
                            last = message.id
                        }
                        if finished && page.isEmpty { break }
                    }
                    return problems
                }
                var all: [String] = []
                for try await problems in group { all += problems }
                return all
            }
            #expect(gaps.isEmpty, "a reader saw an id before a smaller one: \(gaps.prefix(5))")
            let total = (0..<writers).reduce(0) { sum, writer in sum + (0..<perWriter).reduce(0) { $0 + 1 + (writer + $1) % 7 } }
            let stored = try await reader.messages(after: 0, limit: 100_000)
            #expect(stored.map(\.id) == Array(1...Int64(total)), "every id once, none missing")
            for node in nodes { await node.shutdown() }
            await reader.shutdown()
        }
    }

    /// The fan-out between nodes: every node listens; each commit announces its id range, and the
    /// ranges arrive in commit order with no gap and nothing twice, whichever node committed.
    @Test func everyNodeHearsEveryCommitAsConsecutiveRanges() async throws {
        try await withCluster { cluster in
            let writers = (0..<2).map { _ in cluster.store(connections: 3) }
            let listener = cluster.store(connections: 2)
            try await listener.migrate()
            let room = try await listener.roomID(named: "lobby")
            let user = try await listener.userID(named: "writer")
            let heard = Mutex<[ClosedRange<Int64>]>([])
            let listening = Counter()
            let listen = Task {
                try await listener.listenForCommits(onListening: { listening.value.wrappingAdd(1, ordering: .relaxed) }) { range in
                    heard.withLock { $0.append(range) }
                }
            }
            let registered = ContinuousClock.now + .seconds(30)
            while listening.value.load(ordering: .relaxed) == 0, ContinuousClock.now < registered { try await Task.sleep(for: .milliseconds(5)) }
            try #require(listening.value.load(ordering: .relaxed) == 1, "the listener registered")
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for (index, writer) in writers.enumerated() {
                    for task in 0..<3 {
                        group.addTask {
                            var written = 0
                            for batch in 0..<30 {
                                let size = 1 + (index + task + batch) % 5
                                written += try await writer.append((0..<size).map { .init(roomID: room, userID: user, text: "\(index).\(task).\(batch).\($0)") }).count
                            }
                            return written
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while heard.withLock({ $0.last?.upperBound ?? 0 }) < Int64(total), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            listen.cancel()
            let ranges = heard.withLock { $0 }
            #expect(ranges.first?.lowerBound == 1)
            #expect(ranges.last?.upperBound == Int64(total))
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound + 1 == $1.lowerBound }, "consecutive, in order, once")
            // What a node then reads for the ranges it heard: every message, once, in order.
            let read = try await listener.messages(after: 0, upTo: ranges.last?.upperBound ?? 0, limit: 100_000)
            #expect(read.map(\.id) == Array(1...Int64(total)))
            for writer in writers { await writer.shutdown() }
            await listener.shutdown()
        }
    }
}
