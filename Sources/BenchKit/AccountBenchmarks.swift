import ArgumentParser
import ChatClient
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

public struct AccountLoginBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "logins",
        abstract: "Account logins at L/s while a room of C members receives R msg/s: login latency, and the room's p99 with and without the logins.",
        discussion: "Example: chat-bench logins --port 9999 --clients 1000 --rate 50 --logins-per-second 20 --seconds 10")

    @OptionGroup public var server: ServerOptions
    @Option(help: "Clients in the room.") public var clients = 1000
    @Option(help: "Messages per second into the room.") public var rate: Double = 50
    @Option(help: "Account logins per second.") public var loginsPerSecond: Double = 20
    @Option(help: "Seconds per phase (without, then with the logins).") public var seconds: Double = 10
    @Option(help: "Accounts to register first (logins cycle through them).") public var accounts = 20

    public func validate() throws {
        guard (1...20_000).contains(clients) else { throw ValidationError("--clients must be between 1 and 20000") }
        guard rate > 0, rate <= 10_000, loginsPerSecond > 0, loginsPerSecond <= 1_000 else { throw ValidationError("rates must be positive and bounded") }
        guard seconds > 0, seconds <= 300 else { throw ValidationError("--seconds must be between 0 and 300") }
        guard (1...1_000).contains(accounts) else { throw ValidationError("--accounts must be between 1 and 1000") }
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let (host, port) = (server.host, server.port)
        let deadline = now() + Double(server.timeout)
        let tag = UInt16.random(in: 0...UInt16.max)
        let password = "bench-password-\(tag)"
        let names = (0..<accounts).map { "acct\(tag)-\($0)" }
        for name in names {
            let connection = try await ChatConnection.connect(host: host, port: port)
            _ = try await connection.login(name: name, password: nil)
            try await connection.register(password: password)
            connection.close()
        }
        let room = try await MeasuredRoom.connect(group: group, host: host, port: port, clients: clients,
                                                  namePrefix: "member\(tag)-", room: "logins\(tag)")

        // Phase 1: the room alone.
        let alone = try await room.phase(rate: rate, seconds: seconds, deadline: deadline)

        // Phase 2: the room while account logins arrive at their own pace.
        let loginTimes = LoginTimes()
        let (loginsPerSecond, seconds) = (self.loginsPerSecond, self.seconds)
        let logins = Task {
            await withTaskGroup(of: Void.self) { tasks in
                let start = now()
                for sequence in 0..<Int(loginsPerSecond * seconds) where now() < deadline {
                    let wait = start + Double(sequence) / loginsPerSecond - now()
                    if wait > 0 { try? await Task.sleep(for: .nanoseconds(Int64(wait * 1e9))) }
                    tasks.addTask {
                        let started = now()
                        do {
                            let connection = try await ChatConnection.connect(host: host, port: port)
                            _ = try await connection.login(name: names[sequence % names.count], password: nil, accountPassword: password)
                            loginTimes.record(now() - started)
                            connection.close()
                        } catch {
                            loginTimes.fail()
                        }
                    }
                }
            }
        }
        let busy = try await room.phase(rate: rate, seconds: seconds, deadline: deadline) { await logins.value }
        room.close()

        let login = Summary(loginTimes.values.map { $0 * 1000 })
        let report: [String: Any] = [
            "benchmark": "logins", "clients": clients, "rate": rate, "logins_per_s": loginsPerSecond, "seconds": seconds,
            "logins": login.sorted.count, "login_failures": loginTimes.failures,
            "login_p50_ms": login.median, "login_p99_ms": login.percentile(99), "login_max_ms": login.max,
            "room_alone_p50_ms": milliseconds(alone.latency, 50), "room_alone_p99_ms": milliseconds(alone.latency, 99),
            "room_with_logins_p50_ms": milliseconds(busy.latency, 50), "room_with_logins_p99_ms": milliseconds(busy.latency, 99),
            "lost": (alone.sent + busy.sent) * clients - alone.delivered - busy.delivered, "order_errors": alone.orderErrors + busy.orderErrors,
        ]
        printError("""
            logins: \(login.sorted.count) account logins at \(loginsPerSecond)/s (\(loginTimes.failures) failed): p50 \(String(format: "%.1f", login.median)) ms, p99 \(String(format: "%.1f", login.percentile(99))) ms, max \(String(format: "%.1f", login.max)) ms
              room of \(clients) at \(rate) msg/s: p99 \(String(format: "%.2f", milliseconds(alone.latency, 99))) ms alone, \(String(format: "%.2f", milliseconds(busy.latency, 99))) ms during the logins (p50 \(String(format: "%.2f", milliseconds(alone.latency, 50))) / \(String(format: "%.2f", milliseconds(busy.latency, 50))))
            """)
        try printReport(report)
        if loginTimes.failures > 0 || alone.orderErrors + busy.orderErrors > 0 { throw ExitCode(3) }
    }
}

/// Login latencies from many tasks.
final class LoginTimes: Sendable {
    private let state = Mutex<(values: [Double], failures: Int)>(([], 0))
    func record(_ seconds: Double) { state.withLock { $0.values.append(seconds) } }
    func fail() { state.withLock { $0.failures += 1 } }
    var values: [Double] { state.withLock { $0.values } }
    var failures: Int { state.withLock { $0.failures } }
}

public struct DirectMessageBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "dm",
        abstract: "Direct messages at R/s between P pairs: latency to the recipient, loss, order.",
        discussion: "Example: chat-bench dm --port 9999 --pairs 500 --rate 1000 --seconds 10")

    @OptionGroup public var server: ServerOptions
    @Option(help: "Pairs of users writing to each other.") public var pairs = 500
    @Option(help: "Direct messages per second in all.") public var rate: Double = 1000
    @Option(help: "Seconds to send for.") public var seconds: Double = 10

    public func validate() throws {
        guard (1...10_000).contains(pairs) else { throw ValidationError("--pairs must be between 1 and 10000") }
        guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate must be between 0 and 100000") }
        guard seconds > 0, seconds <= 300 else { throw ValidationError("--seconds must be between 0 and 300") }
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let deadline = now() + Double(server.timeout)
        let statistics = makeStatistics(for: group)
        let prefix = "dm\(UInt16.random(in: 0...UInt16.max))-"
        let clients = try await connectClients(group: group, host: server.host, port: server.port, count: pairs * 2, namePrefix: prefix,
                                               room: "", countsOwnMessages: false, statistics: statistics)
        let cpuBefore = server.serverPid.flatMap(cpuSeconds)
        let pairs = self.pairs
        let sent = try await pacedSend(rate: rate, seconds: seconds, deadline: deadline) { sequence, stamp in
            // Each pair takes turns: A writes to B, then B to A.
            let pair = sequence % pairs
            let first = (sequence / pairs) % 2
            let sender = clients[2 * pair + first]
            let recipient = "\(prefix)\(2 * pair + 1 - first)"
            sender.channel.eventLoop.execute {
                sender.client.send(#"{"type":"say","to":"\#(recipient)","text":"\#(stamp)"}"#)
            }
        }
        let result = try await drainStatistics(statistics, group: group, expected: sent, idle: 3, deadline: deadline)
        let cpuAfter = server.serverPid.flatMap(cpuSeconds)
        for (_, channel) in clients { channel.close(promise: nil) }
        var report: [String: Any] = [
            "benchmark": "dm", "pairs": pairs, "rate": rate, "seconds": seconds, "sent": sent, "delivered": result.delivered,
            "lost": sent - result.delivered, "order_errors": result.orderErrors,
            "p50_ms": milliseconds(result.latency, 50), "p99_ms": milliseconds(result.latency, 99),
            "max_ms": Double(result.latency.max) / 1e6,
        ]
        if let cpuBefore, let cpuAfter { report["server_cpu_s"] = cpuAfter - cpuBefore }
        printError("dm: \(sent) direct messages at \(rate)/s between \(pairs) pairs: delivered \(result.delivered) (lost \(sent - result.delivered), order errors \(result.orderErrors)); to the recipient p50 \(String(format: "%.2f", milliseconds(result.latency, 50))) ms, p99 \(String(format: "%.2f", milliseconds(result.latency, 99))) ms, max \(String(format: "%.2f", Double(result.latency.max) / 1e6)) ms")
        try printReport(report)
        if result.delivered < sent || result.orderErrors > 0 { throw ExitCode(3) }
    }
}

public struct SearchBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "The `search` frame at the client: two-word queries, newest 50, one after another.",
        discussion: """
            Point it at a server whose database `chat-bench storage` filled (its words are drawn from
            the same vocabulary). Example: chat-bench search --port 9999 --queries 200
            """)

    @OptionGroup public var server: ServerOptions
    @Option(help: "Queries to time.") public var queries = 200
    @Option(help: "Matches per query.") public var limit = 50

    public func validate() throws {
        guard (1...100_000).contains(queries) else { throw ValidationError("--queries must be between 1 and 100000") }
        guard (1...500).contains(limit) else { throw ValidationError("--limit must be between 1 and 500") }
    }

    public func run() async throws {
        let connection = try await ChatConnection.connect(host: server.host, port: server.port)
        _ = try await connection.login(name: "searcher\(UInt16.random(in: 0...UInt16.max))", password: nil)
        let vocabulary = Vocabulary(size: 5000, seed: 42)
        var generator = SplitMix(seed: 11)
        var times: [Double] = []
        var hits = 0
        let deadline = now() + Double(server.timeout)
        for _ in 0..<queries where now() < deadline {
            let query = "\(vocabulary.word(using: &generator)) \(vocabulary.word(using: &generator))"
            let start = now()
            hits += try await connection.search(query, limit: limit).messages.count
            times.append((now() - start) * 1000)
        }
        await connection.quit()
        let summary = Summary(times)
        printError("search frame: \(times.count) two-word queries, newest \(limit): median \(String(format: "%.2f", summary.median)) ms, p90 \(String(format: "%.2f", summary.percentile(90))) ms, p99 \(String(format: "%.2f", summary.percentile(99))) ms (mean \(hits / max(1, times.count)) hits)")
        try printReport(["benchmark": "search", "queries": times.count, "limit": limit, "median_ms": summary.median,
                         "p90_ms": summary.percentile(90), "p99_ms": summary.percentile(99), "mean_hits": Double(hits) / Double(max(1, times.count))])
    }
}
