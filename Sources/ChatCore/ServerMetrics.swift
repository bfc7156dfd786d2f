import CoreMetrics
import Synchronization
import Foundation
import Prometheus

/// What the server counts for operators (`metrics.enabled`), recorded through swift-metrics into
/// a Prometheus registry of this server's own. Counters are bumped where the work happens, once
/// per batch on the hot paths (one add per outbox drain for deliveries); gauges (connections,
/// sessions, rooms, the writer's queue, memory) are read when `/metrics` is scraped, so they cost
/// nothing in between. With metrics off the factory is swift-metrics' no-op one.
package final class ServerMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry?
    package let messagesStored: CoreMetrics.Counter
    package let deliveries: CoreMetrics.Counter
    package let commitBatchSize: CoreMetrics.Recorder
    package let commitLatency: CoreMetrics.Timer
    package let replayLatency: CoreMetrics.Timer
    package let slowConsumerDisconnects: CoreMetrics.Counter
    package let rateLimited: CoreMetrics.Counter
    package let authFailures: CoreMetrics.Counter
    private let factory: any MetricsFactory
    /// `chat_connections` by transport: `native` (plain TCP of the native protocol) and each
    /// transport a face counts (`irc`, `websocket`).
    private let connections = Mutex<[String: CoreMetrics.Gauge]>([:])
    private let sessions: CoreMetrics.Gauge
    private let rooms: CoreMetrics.Gauge
    private let writerQueue: CoreMetrics.Gauge
    private let memory: CoreMetrics.Gauge

    package init(enabled: Bool) {
        let factory: any MetricsFactory
        if enabled {
            let registry = PrometheusCollectorRegistry()
            var prometheus = PrometheusMetricsFactory(registry: registry)
            prometheus.defaultDurationHistogramBuckets = [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1),
            ]
            prometheus.valueHistogramBuckets["chat_commit_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
            self.registry = registry
            factory = prometheus
        } else {
            registry = nil
            factory = NOOPMetricsHandler.instance
        }
        messagesStored = CoreMetrics.Counter(label: "chat_messages_stored_total", factory: factory)
        deliveries = CoreMetrics.Counter(label: "chat_deliveries_total", factory: factory)
        commitBatchSize = CoreMetrics.Recorder(label: "chat_commit_batch_size", factory: factory)
        commitLatency = CoreMetrics.Timer(label: "chat_commit_seconds", factory: factory)
        replayLatency = CoreMetrics.Timer(label: "chat_replay_seconds", factory: factory)
        slowConsumerDisconnects = CoreMetrics.Counter(label: "chat_disconnects_total", dimensions: [("reason", "slow_consumer")], factory: factory)
        rateLimited = CoreMetrics.Counter(label: "chat_rate_limited_total", factory: factory)
        authFailures = CoreMetrics.Counter(label: "chat_auth_failures_total", factory: factory)
        self.factory = factory
        sessions = CoreMetrics.Gauge(label: "chat_logged_in_sessions", factory: factory)
        rooms = CoreMetrics.Gauge(label: "chat_rooms", factory: factory)
        writerQueue = CoreMetrics.Gauge(label: "chat_writer_queue_depth", factory: factory)
        memory = CoreMetrics.Gauge(label: "process_resident_memory_bytes", factory: factory)
    }

    /// The Prometheus text exposition, gauges read now. `byTransport`: the connections the faces
    /// count by transport (`irc`: IRC over TCP; `websocket`: either protocol); the rest of
    /// `connections` are native TCP.
    package func scrape(connections: Int, byTransport: [String: Int], sessions: Int, rooms: Int, writerQueue: Int) -> [UInt8] {
        guard let registry else { return [] }
        var counts = byTransport
        counts["native"] = max(0, connections - byTransport.values.reduce(0, +))
        self.connections.withLock { gauges in
            for (transport, count) in counts {
                let gauge = gauges[transport] ?? CoreMetrics.Gauge(label: "chat_connections", dimensions: [("transport", transport)], factory: factory)
                gauges[transport] = gauge
                gauge.record(count)
            }
        }
        self.sessions.record(sessions)
        self.rooms.record(rooms)
        self.writerQueue.record(writerQueue)
        if let resident = Self.residentBytes() { memory.record(resident) }
        return registry.emitToBuffer()
    }

    /// Resident memory from /proc/self/statm (pages).
    private static func residentBytes() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
