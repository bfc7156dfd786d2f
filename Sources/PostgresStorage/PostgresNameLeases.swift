import Logging
import PostgresNIO

/// Live names across nodes: a session-level advisory lock per name, on one connection of this
/// node's own. A guest's lease is exclusive, an account's shared (its sessions on several nodes
/// share the name, never with a guest). PostgreSQL counts a session's locks and drops them all
/// when the session ends: a node that dies gives its names back by itself.
///
/// The lock key is `hashtextextended(name key, 0)`, 64 bits: two names colliding would make one
/// refuse the other while both are online, at odds of about one in 2^64 per pair.
actor PostgresNameLeases {
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private var connection: PostgresConnection?
    private var isClosed = false
    /// The leases this node holds, so a new connection (after the old one or the database went
    /// away) takes them again.
    private var held: [Lease: Int] = [:]
    /// This node's id, whose lock (`nodeLockClass`, id) says the node runs (`PostgresStore+Presence`).
    private var node: Int32?
    /// The node id whose lock the current connection holds.
    private var nodeLocked: Int32?

    private struct Lease: Hashable {
        let key: String
        let shared: Bool
    }

    init(configuration: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func lease(_ key: String, shared: Bool) async throws -> Bool {
        let connection = try await connected()
        let granted: Bool
        do {
            granted = try await call(shared ? "pg_try_advisory_lock_shared" : "pg_try_advisory_lock", key, on: connection)
        } catch {
            drop(connection)
            throw error
        }
        if granted { held[Lease(key: key, shared: shared), default: 0] += 1 }
        return granted
    }

    func release(_ key: String, shared: Bool) async {
        let lease = Lease(key: key, shared: shared)
        guard let count = held[lease] else { return }
        held[lease] = count > 1 ? count - 1 : nil
        guard let connection = self.connection else { return }
        do {
            _ = try await call(shared ? "pg_advisory_unlock_shared" : "pg_advisory_unlock", key, on: connection)
        } catch {
            // The connection is gone, and its locks with it; the next lease reconnects.
            drop(connection)
        }
    }

    /// Holds this node's lock (again, after a reconnection) on the lease connection.
    func holdNode(_ id: Int32) async throws {
        node = id
        // A new connection takes it as it connects; one that already holds it keeps it.
        _ = try await connected()
    }

    func close() async {
        isClosed = true
        held = [:]
        if let connection { try? await connection.close() }
        connection = nil
    }

    private func drop(_ dead: PostgresConnection) {
        if connection === dead { connection = nil }
    }

    /// The lease connection, made again (with every held lease taken again) when it was lost.
    private func connected() async throws -> PostgresConnection {
        if let connection, !connection.isClosed {
            if let node, nodeLocked != node {
                try await lockNode(node, on: connection)
                nodeLocked = node
            }
            return connection
        }
        guard !isClosed else { throw PostgresStoreError("the store is closed") }
        let fresh = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        connection = fresh
        nodeLocked = nil
        if let node {
            try await lockNode(node, on: fresh)
            nodeLocked = node
        }
        for (lease, count) in held {
            for _ in 0..<count {
                let granted = try await call(lease.shared ? "pg_try_advisory_lock_shared" : "pg_try_advisory_lock", lease.key, on: fresh)
                if !granted {
                    logger.warning("the name \(lease.key) was taken on another node while this node was cut off from the database")
                }
            }
        }
        return fresh
    }

    /// `function(hashtextextended(key, 0))`, one of the advisory lock functions, and its answer.
    private func call(_ function: String, _ key: String, on connection: PostgresConnection) async throws -> Bool {
        var binds = PostgresBindings()
        binds.append(key)
        let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT \(function)(hashtextextended($1, 0))", binds: binds), logger: logger)
        for try await value in rows.decode(Bool.self) { return value }
        throw PostgresStoreError("no answer to an advisory lock")
    }

    /// This node's lock, (`nodeLockClass`, id): held while the node runs.
    private func lockNode(_ id: Int32, on connection: PostgresConnection) async throws {
        try await connection.query("SELECT pg_advisory_lock(\(PostgresStore.nodeLockClass), \(id))", logger: logger)
    }
}
