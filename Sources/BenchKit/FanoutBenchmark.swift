import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import NIOSSL

/// Options shared by the benchmarks that drive a running server.
public struct ServerOptions: ParsableArguments {
    public init() {}

    @Option(help: "The server's address (loopback only).")
    public var host = "127.0.0.1"

    @Option(help: "The server's port.")
    public var port: Int

    @Option(help: "The server's pid, to report its CPU and memory.")
    public var serverPid: Int32?

    @Option(help: "Give up after this many seconds.")
    public var timeout = 120

    @Flag(help: "Connect with TLS (any certificate is accepted: loopback benchmarks only).")
    public var tls = false

    /// The TLS context the load clients use, with `--tls`.
    func tlsContext() throws -> NIOSSLContext? {
        guard tls else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try NIOSSLContext(configuration: configuration)
    }

    public func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be between 1 and 65535") }
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be between 1 and 3600 seconds") }
        do { try requireLoopback(host) } catch { throw ValidationError("\(error)") }
    }
}

/// CPU seconds (user + system) a process has used, from /proc.
func cpuSeconds(pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

public struct FanoutBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "C clients in one room, S of them sending M messages each: deliveries/s, loss and latency.",
        discussion: "Example: chat-bench fanout --port 9999 --clients 1000 --senders 10 --messages 100 --server-pid $PID")

    @OptionGroup public var server: ServerOptions
    @Option(help: "Clients in the room.") public var clients = 1000
    @Option(help: "Clients that send.") public var senders = 10
    @Option(help: "Messages each sender sends.") public var messages = 100
    @Option(help: "Bytes of text per message.") public var size = 100
    @Option(help: "Total messages per second (0: as fast as the sockets take them).") public var rate: Double = 0
    @Option(help: "Clients that never read after joining (slow consumers).") public var stalled = 0
    @Option(help: "The room.") public var room = "bench"
    @Option(help: "Stop waiting after this many seconds without a delivery.") public var drainIdle = 3.0
    @Option(help: "With --rate: never send more than this many messages ahead of the slowest reader (0: no window). Bounds every reader's backlog however slow the machine is.")
    public var window = 0
    @Option(help: "The server's IRC port, for --irc-clients.") public var ircPort: Int?
    @Option(help: "How many of the clients (the last ones; never senders) join over IRC: a mixed room.")
    public var ircClients = 0
    @Option(help: "Every client connects to the web listener on this port and speaks the native protocol over a WebSocket at /ws.")
    public var webPort: Int?
    @Option(name: .customLong("also-port"), help: ArgumentHelp(
        "Another node of the same service (database.postgres): the clients, senders included, are spread over --port and these in turn. Repeatable.",
        valueName: "port"))
    public var alsoPorts: [Int] = []
    @Flag(help: "Add \"timeline\" to the report: per 100 ms of sending, the worst latency of the messages sent then (where stalls happen).")
    public var timeline = false

    public func validate() throws {
        guard alsoPorts.isEmpty || (webPort == nil && ircClients == 0) else { throw ValidationError("--also-port is for native TCP clients only") }
        guard ircClients == 0 || ircPort != nil else { throw ValidationError("--irc-clients needs --irc-port") }
        guard webPort == nil || ircClients == 0 else { throw ValidationError("--web-port and --irc-clients do not mix") }
        guard ircClients >= 0, ircClients <= clients - stalled - senders else { throw ValidationError("--irc-clients must leave room for the senders") }
        guard clients >= 1, clients <= 20_000 else { throw ValidationError("--clients must be between 1 and 20000") }
        guard stalled >= 0, stalled < clients else { throw ValidationError("--stalled must be below --clients") }
        guard senders >= 1, senders <= clients - stalled else { throw ValidationError("--senders must be between 1 and the clients that read") }
        guard messages >= 1, messages <= 1_000_000 else { throw ValidationError("--messages must be between 1 and 1000000") }
        guard size >= 40, size <= 16_000 else { throw ValidationError("--size must be between 40 and 16000 bytes") }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard drainIdle > 0 else { throw ValidationError("--drain-idle must be positive") }
        guard window >= 0 else { throw ValidationError("--window must not be negative") }
        guard window == 0 || rate > 0 else { throw ValidationError("--window needs --rate") }
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let statistics = makeStatistics(for: group, timeline: timeline)
        let deadline = now() + Double(server.timeout)

        let started = now()
        let connected = try await connectClients(group: group, host: server.host, port: webPort ?? server.port, count: clients,
                                                 namePrefix: "fan\(UInt16.random(in: 0...UInt16.max))-", room: room,
                                                 stalled: stalled, tls: try server.tlsContext(),
                                                 irc: ircPort.map { ($0, clients - ircClients) }, overWebSocket: webPort != nil,
                                                 spreadOver: alsoPorts.isEmpty ? [] : [server.port] + alsoPorts, statistics: statistics)
        let joinSeconds = now() - started
        let senderClients = Array(connected[stalled..<(stalled + senders)])
        let cpuBefore = server.serverPid.flatMap(cpuSeconds)

        // Send: each message's text starts with its send time, then padding to --size bytes.
        let (room, size, messages, senders) = (self.room, self.size, self.messages, self.senders)
        let padding = String(repeating: "x", count: size)
        let total = senders * messages
        let sendStart = now()
        if rate == 0 {
            for (index, sender) in senderClients.enumerated() {
                sender.channel.eventLoop.execute {
                    for number in 0..<messages {
                        let stamp = "\(monotonicNanoseconds()) \(index) \(number) "
                        sender.client.send(#"{"type":"say","room":"\#(room)","text":"\#(stamp)\#(padding.prefix(max(0, size - stamp.count)))"}"#)
                    }
                }
            }
        } else {
            let interval = 1.0 / rate
            let readers = Array(connected[stalled...])
            var slowestReceived = 0
            for sequence in 0..<total {
                let due = sendStart + Double(sequence) * interval
                let wait = due - now()
                if wait > 0 { try await Task.sleep(for: .nanoseconds(Int64(wait * 1e9))) }
                // Flow control on what the readers have really received, not on the clock.
                while window > 0, sequence - slowestReceived >= window, now() < deadline {
                    slowestReceived = try await leastReceived(by: readers)
                    if sequence - slowestReceived >= window { try await Task.sleep(for: .milliseconds(1)) }
                }
                let sender = senderClients[sequence % senders]
                sender.channel.eventLoop.execute {
                    let stamp = "\(monotonicNanoseconds()) \(sequence % senders) \(sequence / senders) "
                    sender.client.send(#"{"type":"say","room":"\#(room)","text":"\#(stamp)\#(padding.prefix(max(0, size - stamp.count)))"}"#)
                }
            }
        }
        let sendSeconds = now() - sendStart

        // Drain: until every reader has every message, or nothing arrives for --drain-idle.
        let expected = total * (clients - stalled)
        let (delivered, orderErrors, latency, lastDelivery) = try await drainStatistics(
            statistics, group: group, expected: expected, idle: drainIdle, deadline: deadline)
        // Both clocks are CLOCK_MONOTONIC: send start to the last delivery.
        let duration = max(1e-9, Double(lastDelivery) / 1e9 - sendStart)
        let cpuAfter = server.serverPid.flatMap(cpuSeconds)
        for (_, channel) in connected { channel.close(promise: nil) }

        func ms(_ percentile: Double) -> Double { Double(latency.valueAtPercentile(percentile)) / 1e6 }
        var report: [String: Any] = [
            "benchmark": "fanout", "clients": clients, "senders": senders, "messages": messages, "size": size, "rate": rate,
            "stalled": stalled, "irc_clients": ircClients, "nodes": 1 + alsoPorts.count, "websocket": webPort != nil, "sent": total, "expected": expected, "delivered": delivered, "lost": expected - delivered,
            "order_errors": orderErrors, "join_s": joinSeconds, "send_s": sendSeconds, "duration_s": duration,
            "deliveries_per_s": Double(delivered) / duration,
            "latency_ms": ["p50": ms(50), "p90": ms(90), "p99": ms(99), "max": Double(latency.max) / 1e6],
        ]
        if let cpuBefore, let cpuAfter { report["server_cpu_s"] = cpuAfter - cpuBefore }
        if timeline {
            // [seconds since the sending began, worst latency in ms] per 100 ms.
            var worst: [UInt64: UInt64] = [:]
            for loop in group.makeIterator() {
                let stats = statistics[ObjectIdentifier(loop)]!
                worst.merge(try await loop.submit { stats.worstBySendTime ?? [:] }.get(), uniquingKeysWith: max)
            }
            report["timeline"] = worst.sorted { $0.key < $1.key }.map { tenth, nanoseconds in
                [(Double(tenth) - sendStart * 10).rounded() / 10, (Double(nanoseconds) / 1e5).rounded() / 10]
            }
        }
        printError("""
            fanout: \(clients) clients (\(stalled) stalled), \(senders) senders × \(messages) messages of \(size) bytes, \(rate == 0 ? "unlimited" : "\(rate) msg/s")
              delivered \(delivered) / \(expected) (lost \(expected - delivered), order errors \(orderErrors)) in \(String(format: "%.3f", duration)) s = \(grouped(Double(delivered) / duration)) deliveries/s
              latency ms: p50 \(String(format: "%.2f", ms(50)))  p90 \(String(format: "%.2f", ms(90)))  p99 \(String(format: "%.2f", ms(99)))  max \(String(format: "%.2f", Double(latency.max) / 1e6))
            """)
        try printReport(report)
        if delivered < expected || orderErrors > 0 { throw ExitCode(3) }
    }
}

/// The fewest messages any of `clients` has received: one hop per event loop.
func leastReceived(by clients: [(client: LoadClient, channel: any Channel)]) async throws -> Int {
    var byLoop: [ObjectIdentifier: (loop: any EventLoop, clients: [LoadClient])] = [:]
    for (client, channel) in clients {
        byLoop[ObjectIdentifier(channel.eventLoop), default: (channel.eventLoop, [])].clients.append(client)
    }
    var least = Int.max
    for (loop, members) in byLoop.values {
        least = min(least, try await loop.submit { members.map(\.received).min() ?? Int.max }.get())
    }
    return least == Int.max ? 0 : least
}

public struct IdleBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "idle",
        abstract: "C logged-in clients joined to one room: the server's memory per connection.",
        discussion: "Example: chat-bench idle --port 9999 --clients 10000 --server-pid $PID")

    @OptionGroup public var server: ServerOptions
    @Option(help: "Clients to connect.") public var clients = 10_000
    @Option(help: "The room they join.") public var room = "idle"
    @Option(help: "Connect to the web listener on this port instead, over a WebSocket at /ws.")
    public var webPort: Int?

    public func validate() throws {
        guard clients >= 1, clients <= 20_000 else { throw ValidationError("--clients must be between 1 and 20000") }
        guard server.serverPid != nil else { throw ValidationError("--server-pid is needed to read the server's memory") }
    }

    public func run() async throws {
        let pid = server.serverPid!
        let group = MultiThreadedEventLoopGroup.singleton
        let statistics = makeStatistics(for: group)
        guard let before = residentKiB(pid: pid) else { throw ValidationError("no process \(pid)") }
        let started = now()
        let connected = try await connectClients(group: group, host: server.host, port: webPort ?? server.port, count: clients,
                                                 namePrefix: "idle\(UInt16.random(in: 0...UInt16.max))-", room: room,
                                                 tls: try server.tlsContext(), overWebSocket: webPort != nil, statistics: statistics)
        let joinSeconds = now() - started
        // Let the joins' presence runs go out before reading the memory.
        try await Task.sleep(for: .seconds(2))
        let after = residentKiB(pid: pid) ?? before
        let perConnection = Double(after - before) / Double(clients)
        printError("idle: \(clients) clients joined in \(String(format: "%.2f", joinSeconds)) s; server RSS \(before) KiB -> \(after) KiB = \(String(format: "%.2f", perConnection)) KiB per connection")
        let report: [String: Any] = ["benchmark": "idle", "clients": clients, "websocket": webPort != nil, "join_s": joinSeconds, "rss_before_kib": before,
                                     "rss_after_kib": after, "rss_per_connection_kib": perConnection]
        try printReport(report)
        for (_, channel) in connected { channel.close(promise: nil) }
    }
}

public struct JoinBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Join latency (join sent → history received) with a replay of N messages into a busy room.",
        discussion: "Example: chat-bench join --port 9999 --joins 50 --history 500 --rate 200")

    @OptionGroup public var server: ServerOptions
    @Option(help: "Joins to time.") public var joins = 50
    @Option(help: "Messages each join replays (\"history\": N).") public var history = 500
    @Option(help: "Messages per second sent into the room meanwhile.") public var rate: Double = 200
    @Option(help: "Clients in the room besides the joiners.") public var clients = 50
    @Option(help: "The room.") public var room = "joinbench"

    public func validate() throws {
        guard joins >= 1, joins <= 10_000 else { throw ValidationError("--joins must be between 1 and 10000") }
        guard history >= 0 else { throw ValidationError("--history must not be negative") }
        guard rate >= 0, rate <= 100_000 else { throw ValidationError("--rate must be between 0 and 100000") }
        guard clients >= 1, clients <= 5_000 else { throw ValidationError("--clients must be between 1 and 5000") }
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let statistics = makeStatistics(for: group)
        let tag = UInt16.random(in: 0...UInt16.max)
        let (room, rate) = (self.room, self.rate)
        let members = try await connectClients(group: group, host: server.host, port: server.port, count: clients,
                                               namePrefix: "member\(tag)-", room: room, statistics: statistics)
        // Fill the room so every join has a full replay, then keep it busy while joins run.
        let sender = members[0]
        let fill = max(history, 1)
        sender.channel.eventLoop.execute {
            for number in 0..<fill { sender.client.send(#"{"type":"say","room":"\#(room)","text":"\#(monotonicNanoseconds()) fill \#(number)"}"#) }
        }
        let deadline = now() + Double(server.timeout)
        while now() < deadline {
            let stats = statistics[ObjectIdentifier(sender.channel.eventLoop)]!
            if try await sender.channel.eventLoop.submit({ stats.deliveries }).get() >= fill { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let busy = Task {
            var sequence = 0
            let start = now()
            while !Task.isCancelled, rate > 0 {
                let wait = start + Double(sequence) / rate - now()
                if wait > 0 { try? await Task.sleep(for: .nanoseconds(Int64(wait * 1e9))) }
                let current = sequence
                sender.channel.eventLoop.execute {
                    sender.client.send(#"{"type":"say","room":"\#(room)","text":"\#(monotonicNanoseconds()) busy \#(current)"}"#)
                }
                sequence += 1
            }
        }
        var latencies: [Double] = []
        var historyBytes = 0
        for number in 0..<joins {
            guard now() < deadline else { break }
            let joiner = try await connectClients(group: group, host: server.host, port: server.port, count: 1,
                                                  namePrefix: "joiner\(tag)-\(number)-", room: room, history: history, statistics: statistics)
            let (latency, bytes) = try await joiner[0].channel.eventLoop.submit { (joiner[0].client.joinLatency, joiner[0].client.historyBytes) }.get()
            latencies.append(Double(latency) / 1e6)
            historyBytes += bytes
            try await joiner[0].channel.close()
        }
        busy.cancel()
        for (_, channel) in members { channel.close(promise: nil) }
        let summary = Summary(latencies)
        printError("join: \(latencies.count) joins replaying \(history) messages into a room receiving \(rate) msg/s: p50 \(String(format: "%.2f", summary.median)) ms, p99 \(String(format: "%.2f", summary.percentile(99))) ms, max \(String(format: "%.2f", summary.max)) ms (history frame \(historyBytes / max(1, latencies.count)) bytes)")
        let report: [String: Any] = ["benchmark": "join", "joins": latencies.count, "history": history, "rate": rate,
                                     "join_p50_ms": summary.median, "join_p99_ms": summary.percentile(99), "join_max_ms": summary.max,
                                     "history_bytes_mean": historyBytes / max(1, latencies.count)]
        try printReport(report)
    }
}
