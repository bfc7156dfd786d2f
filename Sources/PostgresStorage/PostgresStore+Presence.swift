import ChatProtocol
import Foundation
import PostgresNIO
import Storage
import Synchronization

/// Presence across nodes: the `presence` table says who is in which room on which node, and
/// every change is announced on `chat_presence`. A node holds the advisory lock (7412, its id)
/// on its lease connection while it runs; the nodes sweep the rows of nodes whose lock is gone
/// (a crash) and announce those users as gone.
extension PostgresStore {
    public static let presenceChannel = "chat_presence"
    /// The first key of the node locks (the second is the node's id).
    static let nodeLockClass: Int32 = 7412
    /// How often the nodes look for crashed nodes; a node is swept after two looks in a row
    /// found it gone (so a node reconnecting after a database restart is not).
    static let sweepInterval = Duration.seconds(3)

    /// This node's id (0 until it follows presence).
    public var nodeID: Int { node.id.load(ordering: .relaxed) }

    public func announcePresence(_ change: PresenceChange) {
        let start = node.queue.withLock { queue -> Bool in
            guard !queue.isClosed else { return false }
            queue.changes.append(change)
            guard queue.canWrite, !queue.isWriting else { return false }
            queue.isWriting = true
            return true
        }
        if start { Task { await self.writeAnnouncements() } }
    }

    /// Returns once the announcements made so far are written (at most 5 s).
    func announcementsWritten() async {
        let deadline = ContinuousClock.now + .seconds(5)
        while node.queue.withLock({ $0.canWrite && ($0.isWriting || !$0.changes.isEmpty) }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Writes what was announced, in the order made, each time all that waits in one statement
    /// (a join storm of hundreds is a few statements), until nothing waits.
    func writeAnnouncements() async {
        while true {
            let batch = node.queue.withLock { queue -> [PresenceChange] in
                defer { queue.changes = [] }
                if queue.changes.isEmpty { queue.isWriting = false }
                return queue.changes
            }
            if batch.isEmpty { return }
            node.own.withLock { own in
                for change in batch {
                    let key = OwnPresence(room: change.room, userKey: Names.userKey(change.name), name: change.name)
                    if change.joined { own.insert(key) } else { own.remove(key) }
                }
            }
            do {
                try await Self.withDeadline(Self.requestDeadline) { try await self.writePresence(batch) }
            } catch {
                logger.error("announcing \(batch.count) presence changes failed: \(error)")
            }
        }
    }

    /// Stores the final state of each user and room the batch touches, and announces every change
    /// in order. Not synchronously committed: presence is this node's while it runs, so a crash
    /// that lost the last of it would lose nothing that still holds.
    func writePresence(_ batch: [PresenceChange]) async throws {
        let node = nodeID
        guard node != 0, !batch.isEmpty else { return }
        var final: [String: PresenceChange] = [:]
        for change in batch { final[change.room + "\t" + Names.userKey(change.name)] = change }
        let joins = final.values.filter(\.joined), leaves = final.values.filter { !$0.joined }
        let payloads = batch.map { Self.payload(node: node, change: $0) }
        try await client.query("""
            WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
            gone AS (
                DELETE FROM presence p USING unnest(\(leaves.map(\.room))::text[], \(leaves.map { Names.userKey($0.name) })::text[]) AS g(room, key)
                WHERE p.node = \(node) AND p.room = g.room AND p.user_key = g.key),
            stored AS (
                INSERT INTO presence (node, room, user_key, name)
                SELECT \(node), j.room, j.key, j.name
                FROM unnest(\(joins.map(\.room))::text[], \(joins.map { Names.userKey($0.name) })::text[], \(joins.map(\.name))::text[]) AS j(room, key, name)
                ON CONFLICT DO NOTHING)
            SELECT count(pg_notify(\(Self.presenceChannel), p.payload))
            FROM relaxed, unnest(\(payloads)::text[]) WITH ORDINALITY AS p(payload, n)
            """, logger: logger)
    }

    /// `node TAB j|l|q TAB room TAB name TAB reason` (names and rooms have no tabs; the reason
    /// is cut to fit a notification).
    static func payload(node: Int, change: PresenceChange) -> String {
        let kind = change.joined ? "j" : change.isQuit ? "q" : "l"
        let reason = String((change.reason ?? "").replacingOccurrences(of: "\t", with: " ").prefix(300))
        return "\(node)\t\(kind)\t\(change.room)\t\(change.name)\t\(reason)"
    }

    static func change(_ payload: String) -> PresenceChange? {
        let fields = payload.split(separator: "\t", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5, let node = Int(fields[0]), ["j", "l", "q"].contains(fields[1]) else { return nil }
        return PresenceChange(node: node, room: fields[2], name: fields[3], joined: fields[1] == "j", isQuit: fields[1] == "q",
                              reason: fields[4].isEmpty ? nil : fields[4])
    }

    public func followPresence(onListening: @escaping @Sendable () -> Void, _ deliver: @escaping @Sendable (PresenceEvent) -> Void) async {
        var failures = 0
        var listened = false
        let sweeper = Task { await self.sweepCrashedNodes() }
        defer { sweeper.cancel() }
        while !Task.isCancelled {
            do {
                if nodeID == 0 { try await registerNode() }
                let reconnected = listened
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.presenceChannel) { notifications in
                        try await self.leases.holdNode(Int32(self.nodeID))
                        // After a lost connection (a database restart), this node's rows may
                        // have been swept: they are written (and announced) again.
                        if reconnected {
                            try await self.writePresence(self.node.own.withLock { $0 }.map { PresenceChange(room: $0.room, name: $0.name, joined: true) })
                        }
                        deliver(.snapshot(try await self.presenceSnapshot()))
                        if !listened {
                            listened = true
                            onListening()
                        }
                        failures = 0
                        for try await notification in notifications {
                            guard let change = Self.change(notification.payload), change.node != self.nodeID else { continue }
                            deliver(.change(change))
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                failures += 1
                if failures == 1 { logger.error("presence lost the database, reconnecting: \(String(reflecting: error))") }
                try? await Task.sleep(for: .milliseconds(min(2_000, 50 * failures)))
            }
        }
    }

    /// A new row in `nodes`, and its lock taken.
    private func registerNode() async throws {
        let rows = try await client.query("INSERT INTO nodes (started) VALUES (\(Timestamp.now())) RETURNING id", logger: logger)
        for try await id in rows.decode(Int32.self) {
            node.id.store(Int(id), ordering: .relaxed)
            try await leases.holdNode(id)
            // Announcements made before (none, on a server) waited for the id.
            let start = node.queue.withLock { queue -> Bool in
                queue.canWrite = true
                guard !queue.changes.isEmpty, !queue.isWriting else { return false }
                queue.isWriting = true
                return true
            }
            if start { Task { await self.writeAnnouncements() } }
            return
        }
        throw PostgresStoreError("no node id returned")
    }

    /// Who is in which room on the other running nodes.
    func presenceSnapshot() async throws -> [PresenceChange] {
        let rows = try await client.query(PostgresQuery(unsafeSQL: """
            SELECT node, room, name FROM presence
            WHERE node <> \(nodeID) AND node IN (\(Self.liveNodes))
            """), logger: logger)
        var changes: [PresenceChange] = []
        for try await (node, room, name) in rows.decode((Int32, String, String).self) {
            changes.append(PresenceChange(node: Int(node), room: room, name: name, joined: true))
        }
        return changes
    }

    /// The ids of the nodes holding their lock now.
    static let liveNodes = """
        SELECT objid::int FROM pg_locks
        WHERE locktype = 'advisory' AND classid = \(nodeLockClass) AND objsubid = 2 AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """

    /// Every few seconds: the rows of nodes that have lost their lock twice in a row are deleted,
    /// and their users announced as gone (by whichever node deleted them: once).
    private func sweepCrashedNodes() async {
        var suspects: Set<Int32> = []
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.sweepInterval)
            do {
                var gone: Set<Int32> = []
                for try await node in try await client.query(PostgresQuery(unsafeSQL: """
                    SELECT DISTINCT node FROM presence WHERE node <> \(nodeID) AND node NOT IN (\(Self.liveNodes))
                    """), logger: logger).decode(Int32.self) {
                    gone.insert(node)
                }
                for node in gone.intersection(suspects) {
                    try await client.query("""
                        WITH gone AS (DELETE FROM presence WHERE node = \(node) RETURNING room, name)
                        SELECT count(pg_notify(\(Self.presenceChannel), \(String(node)) || E'\\tq\\t' || room || E'\\t' || name || E'\\tserver went away'))
                        FROM gone
                        """, logger: logger)
                }
                suspects = gone
            } catch {
                // The feed reconnects; the next sweep tries again.
            }
        }
    }
}

/// This node's part of presence: its id, and what it announced (written again after a
/// database restart).
final class NodePresence: Sendable {
    let id = Atomic<Int>(0)
    let own = Mutex<Set<OwnPresence>>([])
    /// Announcements waiting to be written, and whether a task writes them.
    let queue = Mutex(Queue())
    struct Queue {
        var changes: [PresenceChange] = []
        var isWriting = false
        /// Set once the node has its id.
        var canWrite = false
        var isClosed = false
    }
}

struct OwnPresence: Hashable, Sendable {
    let room: String
    let userKey: String
    let name: String
}
