import ChatProtocol
import Foundation
import Logging
import ChatTestSupport
import PostgresNIO
import PostgresStorage
import Storage
import Testing

/// Answers that never lie on PostgreSQL: a commit whose outcome the database did not tell is
/// `unknownOutcome` (never "not stored"), a resend with the same nonce is answered with what was
/// stored, and times follow ids whatever the nodes' clocks say.
@Suite(.serialized) struct PostgresExactlyOnceTests {
    func connection(to cluster: PostgresCluster, logger: Logger) async throws -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(host: "127.0.0.1", port: cluster.port, username: "chat",
                                                             password: nil, database: cluster.database, tls: .disable)
        return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
    }

    func append(_ draft: MessageDraft, to store: PostgresStore) async -> Result<CommittedMessage, any Error> {
        await withCheckedContinuation { continuation in
            store.appendMessage(draft) { continuation.resume(returning: $0) }
        }
    }

    /// The id counter's lock is held from outside past the commit deadline: the sender hears
    /// `unknownOutcome`. Once the lock goes, the resend with the same nonce is answered with the
    /// one stored message, whether or not the first try committed after all.
    @Test func aStalledCommitIsAnUnknownOutcomeAndTheResendIsStoredOnce() async throws {
        let cluster = try PostgresCluster.onSharedCluster()
        defer { cluster.stop() }
        // Long enough for the nonce lookup before the append on a busy machine; the append then
        // waits for the lock past it.
        let store = cluster.store(connections: 4, commitDeadline: .seconds(3))
        try await store.migrate()
        let alice = try await store.userID(named: "alice")
        let lobby = try await store.roomID(named: "lobby")
        let logger = Logger(label: "exactly-once-test") { _ in SwiftLogNoOpLogHandler() }
        let holder = try await connection(to: cluster, logger: logger)
        try await holder.query("BEGIN", logger: logger)
        try await holder.query("SELECT last_id FROM message_ids FOR UPDATE", logger: logger)

        let draft = MessageDraft(roomID: lobby, userID: alice, kind: .text, text: "said once", nonce: "n-1")
        let first = await append(draft, to: store)
        #expect(throws: StorageError.unknownOutcome, "not \"not stored\": the append may still commit") { try first.get() }

        try await holder.query("ROLLBACK", logger: logger)
        try await holder.close()
        let resent = try await append(draft, to: store).get()
        let stored = try await store.messages(after: 0).filter { $0.text == "said once" }
        #expect(stored.count == 1)
        #expect(stored.first?.id == resent.id)
        // A third try, now that it is surely stored, is answered with it too.
        let third = try await append(MessageDraft(roomID: lobby, userID: alice, kind: .text, text: "typed again", nonce: "n-1"), to: store).get()
        #expect(third.id == resent.id && third.original == OriginalMessage(kind: .text, text: "said once"))
        #expect(try await store.messages(after: 0).count == 1)
        await store.shutdown()
    }

    @Test func nonceRulesHoldOnPostgres() async throws {
        let cluster = try PostgresCluster.onSharedCluster()
        defer { cluster.stop() }
        let store = cluster.store(connections: 4)
        try await store.migrate()
        let alice = try await store.userID(named: "alice"), bob = try await store.userID(named: "bob")
        let lobby = try await store.roomID(named: "lobby"), dev = try await store.roomID(named: "dev")
        // Several in one batch, two with the same nonce: stored once.
        let drafts = [
            MessageDraft(roomID: lobby, userID: alice, kind: .text, text: "a", nonce: "x"),
            MessageDraft(roomID: lobby, userID: bob, kind: .text, text: "b", nonce: "x"),
            MessageDraft(roomID: lobby, userID: alice, kind: .text, text: "a again", nonce: "x"),
            MessageDraft(roomID: lobby, userID: alice, kind: .text, text: "plain"),
        ]
        let results = await withTaskGroup(of: (Int, Result<CommittedMessage, any Error>).self) { group in
            for (index, draft) in drafts.enumerated() { group.addTask { (index, await append(draft, to: store)) } }
            var results: [Int: Result<CommittedMessage, any Error>] = [:]
            for await (index, result) in group { results[index] = result }
            return results
        }
        let ids = try (0..<4).map { try results[$0]!.get().id }
        #expect(ids[0] == ids[2], "alice's nonce named one message")
        #expect(Set(ids).count == 3, "bob's nonce is his own; the plain message is new")
        #expect(try await store.messages(after: 0).count == 3)
        // The same nonce in another room: refused.
        await #expect(throws: StorageError.nonceReused(nonce: "x")) {
            try await append(MessageDraft(roomID: dev, userID: alice, kind: .text, text: "elsewhere", nonce: "x"), to: store).get()
        }
        // After 24 hours the nonce is free again.
        let logger = Logger(label: "exactly-once-test") { _ in SwiftLogNoOpLogHandler() }
        let admin = try await connection(to: cluster, logger: logger)
        try await admin.query("UPDATE messages SET ts = ts - \(nonceLifetime + 1000) WHERE nonce = 'x'", logger: logger)
        try await admin.close()
        let fresh = try await append(MessageDraft(roomID: dev, userID: alice, kind: .text, text: "a day later", nonce: "x"), to: store).get()
        #expect(fresh.original == nil && !ids.contains(fresh.id))
        await store.shutdown()
    }

    /// Two nodes, one clock an hour behind, the other an hour ahead, appending in turn: times
    /// never go backwards in id order, so reads by time find what came after.
    @Test func timesFollowIdsAcrossNodesWithSkewedClocks() async throws {
        let cluster = try PostgresCluster.onSharedCluster()
        defer { cluster.stop() }
        let behind = cluster.store(connections: 2), ahead = cluster.store(connections: 2)
        try await behind.migrate()
        let alice = try await behind.userID(named: "alice")
        let lobby = try await behind.roomID(named: "lobby")
        let hour: Int64 = 3_600_000
        var appended: [(id: Int64, timestamp: Int64)] = []
        for round in 0..<6 {
            let node = round.isMultiple(of: 2) ? ahead : behind
            let skew = round.isMultiple(of: 2) ? hour : -hour
            appended += try await node.append([.init(roomID: lobby, userID: alice, text: "round \(round)")], now: Timestamp.now() + skew)
        }
        #expect(appended.map(\.id) == appended.map(\.id).sorted())
        #expect(appended.map(\.timestamp) == appended.map(\.timestamp).sorted(), "times in id order: \(appended)")
        let stored = try await behind.messages(after: 0)
        #expect(stored.map(\.timestamp) == appended.map(\.timestamp), "what is stored is what was answered")
        for entry in appended {
            #expect(try behind.firstID(atOrAfter: .time(entry.timestamp)) <= entry.id, "a read from a message's time includes it")
        }
        await behind.shutdown()
        await ahead.shutdown()
    }
}
