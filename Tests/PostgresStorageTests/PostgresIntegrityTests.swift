import ChatProtocol
import Foundation
import Logging
import ChatTestSupport
import PostgresNIO
import PostgresStorage
import Storage
import Synchronization
import Testing

/// Messages have no foreign keys on PostgreSQL (migration 0005: the checks ran per row under the
/// id counter's lock). An append checks its rooms and author itself, once per id, with the lock a
/// foreign key check takes; `forget` locks what it deletes. These tests hold the counter's lock
/// by hand to stop a real append between its check and its commit, and show that no message
/// outlives its room or author, and that an append naming neither is refused.
@Suite(.serialized) struct PostgresIntegrityTests {
    @Test func anAppendNamingAMissingRoomOrAuthorIsRefusedAndTakesNoID() async throws {
        let cluster = try PostgresCluster.onSharedCluster()
        defer { cluster.stop() }
        let store = cluster.store(connections: 2)
        try await store.migrate()
        let alice = try await store.userID(named: "alice")
        let lobby = try await store.roomID(named: "lobby")
        await #expect(throws: (any Error).self, "a room that does not exist") {
            try await store.append([.init(roomID: lobby + 1000, userID: alice, text: "into nowhere")])
        }
        await #expect(throws: (any Error).self, "an author that does not exist") {
            try await store.append([.init(roomID: lobby, userID: alice, text: "fine"), .init(roomID: lobby, userID: alice + 1000, text: "nobody")])
        }
        #expect(try await store.append([.init(roomID: lobby, userID: alice, text: "hello")]).map(\.id) == [1],
                "refused appends take no id and store nothing")
        #expect(try await store.messages(after: 0).map(\.text) == ["hello"])
        #expect(try store.integrityProblems().isEmpty)
        await store.shutdown()
    }

    /// Bob answers Alice in their conversation while Alice is forgotten. Bob's append has checked
    /// the room and waits for the id counter (held here); `forget` then has to wait for it, and
    /// deletes the answer with the conversation, rather than delete the room under it.
    @Test func forgetWaitsForAnAppendIntoARoomItDeletesAndLeavesNoOrphan() async throws {
        let cluster = try PostgresCluster.onSharedCluster()
        defer { cluster.stop() }
        let store = cluster.store(connections: 4)
        try await store.migrate()
        let bob = try await store.userID(named: "bob")
        _ = try await store.userID(named: "alice")
        let alice = try #require(try store.user(named: "alice"))
        _ = try await withCheckedThrowingContinuation { continuation in
            store.appendDirectMessage(from: alice, to: "bob", kind: .text, text: "hi bob") { continuation.resume(with: $0) }
        }
        let conversation = try #require(try store.conversation(between: alice.id, and: bob)).id

        let logger = Logger(label: "integrity-test") { _ in SwiftLogNoOpLogHandler() }
        let configuration = PostgresConnection.Configuration(host: "127.0.0.1", port: cluster.port, username: "chat",
                                                             password: nil, database: cluster.database, tls: .disable)
        let holder = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        let observer = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
        func waiters() async throws -> Int {
            var count = 0
            for try await n in try await observer.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                logger: logger).decode(Int.self) { count = n }
            return count
        }
        func waitForWaiters(_ expected: Int, _ what: String) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while try await waiters() < expected {
                guard ContinuousClock.now < deadline else { throw PostgresStoreTestError("timed out waiting for \(what)") }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        try await holder.query("BEGIN", logger: logger)
        try await holder.query("SELECT last_id FROM message_ids FOR UPDATE", logger: logger)
        let answer = Task { try await store.append([.init(roomID: conversation, userID: bob, text: "hi alice")]) }
        try await waitForWaiters(1, "the append to wait for the id counter")

        let forgotten = Mutex<Result<ForgetResult, any Error>?>(nil)
        let forgetting = Thread { let result = Result { try store.forgetUser(named: "alice", dryRun: false) }; forgotten.withLock { $0 = result } }
        forgetting.start()
        try await waitForWaiters(2, "forget to wait for the append")
        #expect(forgotten.withLock { $0 == nil }, "forget waits while an append into its conversation is under way")

        try await holder.query("ROLLBACK", logger: logger)
        _ = try await answer.value
        let deadline = ContinuousClock.now + .seconds(60)
        while forgotten.withLock({ $0 == nil }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let result = try #require(try forgotten.withLock { $0 }?.get(), "forget finished")
        #expect(result.user == "alice")
        #expect(result.messages == 1 && result.receivedDirectMessages == 1, "forget counted Bob's answer: it ran after it")
        #expect(try await store.messages(after: 0).isEmpty, "both messages of the conversation went with it")
        #expect(try store.integrityProblems().isEmpty)
        try await holder.close()
        try await observer.close()
        await store.shutdown()
    }
}
