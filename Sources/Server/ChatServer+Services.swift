import ChatCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// One long-running part of the server as a swift-service-lifecycle `Service`: it runs until the
/// group's graceful shutdown reaches it, then stops its part and returns. A `ServiceGroup` stops
/// its services one after another in the reverse of their order, so `ChatServer.services` is the
/// shutdown order, written once.
public struct ServerPart: Service, CustomStringConvertible {
    public let description: String
    private let stop: @Sendable () async -> Void
    private let once = OnceFlag()

    init(_ name: String, stop: @escaping @Sendable () async -> Void) {
        self.description = name
        self.stop = stop
    }

    public func run() async throws {
        // Cancelled (the group failed) or told to shut down gracefully: either way, stop.
        try? await gracefulShutdown()
        await stopOnce()
    }

    /// Stops the part, the first time it is asked.
    func stopOnce() async {
        guard once.take() else { return }
        await stop()
    }
}

/// True the first time only.
private final class OnceFlag: Sendable {
    private let taken = Mutex(false)
    func take() -> Bool { taken.withLock { taken in defer { taken = true }; return !taken } }
}

extension ChatServer {
    /// Every long-running part, in the order they start (the group stops them in reverse):
    /// the event loops and the thread pool last, then password hashing, the store (its writer and
    /// WAL checkpointer), the commit feed of a shared store, the sessions (what clients sent is
    /// committed and delivered, every client is told `shutdown` and closed, read markers reach
    /// the writer), the idle sweeps and retention, and first the listeners.
    static func parts(context: ServerContext, group: MultiThreadedEventLoopGroup, feed: Task<Void, Never>?,
                      periodicTasks: [RepeatedTask], listener: SocketListener, ircListener: SocketListener?,
                      webListener: SocketListener?, metricsListener: (any Channel)?) -> [ServerPart] {
        var parts = [
            ServerPart("event loops") {
                try? await context.threadPool.shutdownGracefully()
                try? await group.shutdownGracefully()
                context.logger.info("stopped")
            },
            ServerPart("password hashing") { await context.passwordChecker.shutdown() },
            ServerPart("store") {
                try? await context.database.waitForPendingWrites()
                context.database.close()
            },
            ServerPart("commit feed") {
                feed?.cancel()
                await feed?.value
            },
            ServerPart("sessions") { await Self.closeSessions(context: context, reason: "server is shutting down") },
            ServerPart("maintenance") {
                for task in periodicTasks { task.cancel() }
            },
        ]
        if let metricsListener { parts.append(ServerPart("metrics listener") { try? await metricsListener.close() }) }
        if let webListener { parts.append(ServerPart("web listener") { await webListener.close() }) }
        if let ircListener { parts.append(ServerPart("irc listener") { await ircListener.close() }) }
        parts.append(ServerPart("chat listener") {
            context.logger.info("shutting down")
            await listener.close()
        })
        return parts
    }

    /// Stops the server gracefully, part by part in the group's order (`services`, reversed): no
    /// new connections; what clients sent is committed and delivered; every client gets
    /// `shutdown` and is closed; read markers are saved; the database is closed. For a server not
    /// run by a `ServiceGroup` (tests); safe to call more than once, and after the group.
    public func shutdown() async {
        for part in services.reversed() { await part.stopOnce() }
    }

    /// Commits what was handed in and lets it reach the rooms and, one hop later, the members;
    /// tells every client `reason` and closes it; lets the departures' read markers reach the
    /// writer, and waits for them.
    static func closeSessions(context: ServerContext, reason: String) async {
        try? await context.database.waitForPendingWrites()
        await context.feedDelivered()
        await barrier(context)
        await barrier(context)
        for shard in context.shards {
            try? await shard.eventLoop.submit {
                for session in Array(shard.sessions.values) { session.sendShutdown(reason: reason) }
            }.get()
        }
        await barrier(context)
        try? await context.database.waitForPendingWrites()
    }

    /// Returns once every event loop has run everything queued on it before this call.
    private static func barrier(_ context: ServerContext) async {
        for loop in context.loops {
            try? await loop.submit {}.get()
        }
    }
}
