import ChatCore
import IRCFace
import NativeFace
import WebFace
import ChatConfiguration
import ChatProtocol
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Storage
import Synchronization

/// A running chat server: the listener, its event loops, the rooms and the database.
public final class ChatServer: Sendable {
    /// Messages one connection may have handed to the writer and not yet committed. Its next
    /// requests wait (and its socket is not read) until one commits, so the writer's queue holds
    /// at most this many of anyone's messages and a flood cannot push everybody else back.
    public static let maxUncommittedMessagesPerConnection = Session.pendingSaysLimit

    /// Where the server listens (the real port when configured with port 0).
    public let host: String
    public let port: Int

    let context: ServerContext
    let group: MultiThreadedEventLoopGroup
    let listener: SocketListener
    let periodicTasks: [RepeatedTask]
    /// On a shared store: the task following every node's commits.
    let feed: Task<Void, Never>?
    /// Every long-running part, in the order they start: run them in one `ServiceGroup`, which
    /// stops them in reverse (`ChatServer+Services`).
    public let services: [ServerPart]
    private let tls: ServerTLS?
    let metricsListener: (any Channel)?
    /// Where `/metrics` is served (the real port when configured with 0), when enabled.
    public var metricsPort: Int? { metricsListener?.localAddress?.port }

    let ircListener: SocketListener?
    /// Where the IRC listener listens (the real port when configured with 0), when enabled.
    public var ircPort: Int? { ircListener?.port }

    let webListener: SocketListener?
    /// Where the web listener (the browser client, `/ws`, `/healthz`) listens, when enabled.
    public var webPort: Int? { webListener?.port }

    private init(host: String, port: Int, context: ServerContext, group: MultiThreadedEventLoopGroup, listener: SocketListener,
                 periodicTasks: [RepeatedTask], tls: ServerTLS?, metricsListener: (any Channel)?, ircListener: SocketListener?,
                 webListener: SocketListener?, feed: Task<Void, Never>?) {
        self.feed = feed
        self.tls = tls
        self.ircListener = ircListener
        self.webListener = webListener
        self.metricsListener = metricsListener
        self.host = host
        self.port = port
        self.context = context
        self.group = group
        self.listener = listener
        self.periodicTasks = periodicTasks
        self.services = Self.parts(context: context, group: group, feed: feed, periodicTasks: periodicTasks, listener: listener,
                                   ircListener: ircListener, webListener: webListener, metricsListener: metricsListener)
    }

    /// Opens the database, creates the configured rooms and starts listening.
    public static func start(
        configuration: ServerConfiguration,
        database: any ChatStore,
        logger: Logger,
        tls: ServerTLS? = nil,
        threads: Int = System.coreCount
    ) async throws -> ChatServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        var listeners: [SocketListener] = []
        do {
            let context = try ServerContext(configuration: configuration, database: database, logger: logger, group: group, threadPool: threadPool)
            try await context.createConfiguredRooms()
            let feed = await startFeed(context: context)
            let limits = configuration.limits
            let directWrites = configuration.server.directWrites
            let ircState = IRCServerState()
            for transport in ["irc", "websocket"] { context.transports.declare(transport) }
            // Every listener accepts on a thread of its own (`SocketListener`) and hands each
            // connection to the next event loop with the same socket options and limits, TLS when
            // that listener asks for it, and the handlers of its protocol. Those get the socket
            // when nothing (TLS) stands between them and it, and write to it directly.
            func listen(_ host: String, _ port: Int, tls usesTLS: Bool,
                        _ configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations, _ socket: CInt?) throws -> Void) throws -> SocketListener {
                let listener = try SocketListener(host: host, port: port, backlog: 4096, loop: group.next())
                listeners.append(listener)
                let serverTLS = usesTLS ? tls : nil
                // One bootstrap per loop, made once: its initializer learns the socket from the
                // loop's hand-off, set only while `withConnectedSocket` sets the channel up on that
                // loop (synchronously). Were NIO ever to run the initializer later, it would find no
                // socket there and the connection would simply write through NIO.
                let handOffs = group.makeIterator().map { loop in
                    let handOff = SocketHandOff()
                    handOff.bootstrap = ClientBootstrap(group: loop)
                        .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                        // Bounds what one readable connection costs a loop turn (4 reads of at most 16 KiB,
                        // about 400 frames), so committed messages and acknowledgements go out between a
                        // flooder's reads whatever the number of flooders on the loop.
                        .channelOption(ChannelOptions.maxMessagesPerRead, value: 4)
                        .channelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 16_384))
                        .channelOption(ChannelOptions.writeBufferWaterMark,
                                       value: .init(low: limits.maxOutboundBytes / 2, high: limits.maxOutboundBytes + 1))
                        .channelInitializer { channel in
                            let socket = handOff.socket
                            return channel.eventLoop.makeCompletedFuture {
                                if let serverTLS {
                                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverTLS.current))
                                }
                                try configure(channel.pipeline.syncOperations, serverTLS == nil && directWrites ? socket : nil)
                            }
                        }
                    return (loop: loop, handOff: handOff)
                }
                let next = Atomic(0)
                listener.start(logger: logger) { socket in
                    // Set up on the loop it will live on (the channel's objects are that thread's
                    // allocations, as with NIO's own accepts).
                    let (loop, handOff) = handOffs[next.add(1, ordering: .relaxed).oldValue % handOffs.count]
                    loop.execute {
                        handOff.socket = socket
                        handOff.bootstrap?.withConnectedSocket(socket)
                            .whenFailure { error in logger.debug("an accepted connection could not be set up: \(error)") }
                        handOff.socket = nil
                    }
                }
                return listener
            }
            let server = configuration.server
            let listener = try listen(server.host, server.port, tls: server.tls) { pipeline, socket in
                try pipeline.addHandler(LineConnection(NativeConnection(server: context), server: context, socket: socket))
            }
            let port = listener.port
            var ircListener: SocketListener?
            if configuration.irc.enabled {
                ircListener = try listen(configuration.irc.host, configuration.irc.port, tls: configuration.irc.tls) { pipeline, socket in
                    try pipeline.addHandler(LineConnection(IRCConnection(server: context, state: ircState), server: context, socket: socket))
                }
            }
            var webListener: SocketListener?
            if configuration.web.enabled {
                let assets = WebClientAssets()
                let health: @Sendable () -> String = {
                    "{\"status\":\"ok\",\"connections\":\(context.registry.connectionCount)}\n"
                }
                webListener = try listen(configuration.web.host, configuration.web.port, tls: configuration.web.tls) { pipeline, _ in
                    // HTTP until a WebSocket upgrade at /ws; then NIO's HTTP handlers, the page
                    // handler and its idle timer leave, and the WebSocket bridge and adapter come.
                    let page = WebHTTPHandler(assets: assets, admission: context.admission, allowedOrigins: configuration.web.allowedOrigins,
                                              health: health)
                    let idle = NIOLoopBound(IdleStateHandler(readTimeout: .seconds(30)), eventLoop: pipeline.eventLoop)
                    let admitted = NIOLoopBound(page, eventLoop: pipeline.eventLoop)
                    let upgrade: NIOHTTPServerUpgradeConfiguration = (
                        upgraders: [WebSocketUpgrader(server: context, ircState: ircState, isAdmitted: { admitted.value.isAdmitted })],
                        completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(page, promise: nil)
                            context.pipeline.syncOperations.removeHandler(idle.value, promise: nil)
                        }
                    )
                    try pipeline.configureHTTPServerPipeline(withServerUpgrade: upgrade, withErrorHandling: true)
                    try pipeline.addHandler(idle.value)
                    try pipeline.addHandler(page)
                }
            }
            var metricsListener: (any Channel)?
            if configuration.metrics.enabled {
                metricsListener = try await startMetricsListener(context: context, group: group)
            }
            var periodicTasks = startIdleSweeps(context: context, timeoutSeconds: limits.idleTimeoutSeconds)
            if let days = configuration.history.retentionDays {
                periodicTasks.append(startRetention(context: context, days: days))
            }
            return ChatServer(host: configuration.server.host, port: port, context: context, group: group,
                              listener: listener, periodicTasks: periodicTasks, tls: tls, metricsListener: metricsListener,
                              ircListener: ircListener, webListener: webListener, feed: feed)
        } catch {
            for listener in listeners { await listener.close() }
            try? await threadPool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// On a shared store, follows every node's commits into the rooms (this node's own too), from
    /// the id the shards started at, and the other nodes' presence; returns once both listen, so
    /// nothing said from now on can be missed.
    private static func startFeed(context: ServerContext) async -> Task<Void, Never>? {
        guard let shared = context.sharedStore else { return nil }
        /// Starts `follow` in a task and returns the task once `follow` says it listens.
        func listening(_ follow: @escaping @Sendable (_ onListening: @escaping @Sendable () -> Void) async -> Void) async -> Task<Void, Never> {
            let listening = AsyncStream<Void>.makeStream()
            let task = Task { await follow { listening.continuation.finish() } }
            for await _ in listening.stream {}
            return task
        }
        let task = await listening { onListening in
            await shared.followCommits(after: context.initialWatermark, onListening: onListening) { context.deliverFromFeed($0) }
        }
        let presenceTask = await listening { onListening in
            await shared.followPresence(onListening: onListening) { context.applyRemotePresence($0) }
        }
        return Task {
            await withTaskCancellationHandler {
                await task.value
                await presenceTask.value
            } onCancel: {
                task.cancel()
                presenceTask.cancel()
            }
        }
    }

    /// `metrics.host:metrics.port`, HTTP/1.1, `GET /metrics` only: kept off the chat listener.
    private static func startMetricsListener(context: ServerContext, group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        let metrics = context.configuration.metrics
        let scrape: @Sendable () -> [UInt8] = {
            context.metrics.scrape(connections: context.registry.connectionCount, byTransport: context.transports.snapshot,
                                   sessions: context.registry.sessionCount,
                                   rooms: context.roomCount.load(ordering: .relaxed), writerQueue: context.database.writerQueueDepth)
        }
        return try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsEndpoint(scrape: scrape))
                }
            }
            .bind(host: metrics.host, port: metrics.port).get()
    }

    private static func startIdleSweeps(context: ServerContext, timeoutSeconds: Int) -> [RepeatedTask] {
        guard timeoutSeconds > 0 else { return [] }
        let timeout = TimeAmount.seconds(Int64(timeoutSeconds))
        let interval = TimeAmount.milliseconds(Int64(min(30_000, max(250, timeoutSeconds * 1000 / 4))))
        return context.shards.map { shard in
            shard.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let now = NIODeadline.now()
                for session in Array(shard.sessions.values) {
                    session.checkIdle(now: now, timeout: timeout)
                }
            }
        }
    }

    /// `history.retentionDays`: prunes older messages at start and then hourly, off the event loops.
    private static func startRetention(context: ServerContext, days: Int) -> RepeatedTask {
        let loop = context.loops[0]
        return loop.scheduleRepeatedTask(initialDelay: .zero, delay: .hours(1)) { _ in
            let cutoff = Timestamp.now() - Int64(days) * 86_400_000
            context.threadPool.runIfActive(eventLoop: loop) {
                try context.database.prune(before: cutoff)
            }.whenComplete { result in
                switch result {
                case .success(let count) where count > 0:
                    context.logger.info("retention: pruned \(count) messages older than \(days) days (before \(Timestamp.string(cutoff)))")
                case .success:
                    break
                case .failure(let error):
                    context.logger.error("retention: pruning failed: \(error)")
                }
            }
        }
    }

    /// Applies what can change while the server runs (SIGHUP): the server password, the MOTD and
    /// the TLS certificate and key (read again from their files). Connections stay up; logins and
    /// connections from now on see the new values. Returns the keys that changed.
    @discardableResult
    public func reload(_ configuration: ServerConfiguration) -> [String] {
        let new = ReloadableSettings(configuration)
        let old = context.reloadable.withLock { settings in
            defer { settings = new }
            return settings
        }
        var changed: [String] = []
        if old.password != new.password { changed.append("server.password") }
        if old.motd != new.motd { changed.append("server.motd") }
        if let tls {
            do {
                try tls.reload()
                changed.append("tls (certificate and key re-read)")
            } catch {
                context.logger.error("the TLS certificate was not reloaded, the old one stays in use: \(error)")
            }
        }
        context.logger.notice("configuration reloaded: \(changed.isEmpty ? "nothing reloadable changed" : changed.joined(separator: ", ") + " changed")")
        return changed
    }

    /// The number of open client connections.
    public var connectionCount: Int { context.registry.connectionCount }
}

/// A listener's bootstrap for one event loop, and where the accepting thread leaves a socket for
/// its initializer: set and cleared within one task on that loop, read only there.
private final class SocketHandOff: @unchecked Sendable {
    var bootstrap: ClientBootstrap?
    var socket: CInt?
}
