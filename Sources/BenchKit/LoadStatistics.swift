import Histogram
import NIOCore
import NIOPosix

/// Calls `send` at `rate` per second for `seconds` with a sequence number and a stamp (the send
/// time, which a message text starts with). Returns how many were sent.
func pacedSend(rate: Double, seconds: Double, deadline: Double,
               _ send: @escaping @Sendable (_ sequence: Int, _ stamp: String) -> Void) async throws -> Int {
    let total = Int(rate * seconds)
    let start = now()
    for sequence in 0..<total {
        guard now() < deadline else { return sequence }
        let wait = start + Double(sequence) / rate - now()
        if wait > 0 { try await Task.sleep(for: .nanoseconds(Int64(wait * 1e9))) }
        send(sequence, "\(monotonicNanoseconds()) \(sequence) ")
    }
    return total
}

/// Empties every loop's statistics (between the phases of one run).
func resetStatistics(_ statistics: [ObjectIdentifier: LoopStatistics], group: MultiThreadedEventLoopGroup) async throws {
    for loop in group.makeIterator() {
        let stats = statistics[ObjectIdentifier(loop)]!
        try await loop.submit {
            stats.latency.reset()
            stats.deliveries = 0
            stats.orderErrors = 0
        }.get()
    }
}

/// Waits until `expected` deliveries arrived or none came for `idle` seconds; then sums every
/// loop's statistics.
func drainStatistics(_ statistics: [ObjectIdentifier: LoopStatistics], group: MultiThreadedEventLoopGroup, expected: Int,
                     idle: Double, deadline: Double)
    async throws -> (delivered: Int, orderErrors: Int, latency: Histogram<UInt64>, lastDelivery: UInt64) {
    let loops = Array(group.makeIterator())
    var delivered = 0
    var lastProgress = now()
    while now() < deadline {
        var sum = 0
        for loop in loops {
            let stats = statistics[ObjectIdentifier(loop)]!
            sum += try await loop.submit { stats.deliveries }.get()
        }
        if sum != delivered { lastProgress = now() }
        delivered = sum
        if delivered >= expected || now() - lastProgress > idle { break }
        try await Task.sleep(for: .milliseconds(10))
    }
    var latency = Histogram<UInt64>(lowestDiscernibleValue: 1_000, highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .two)
    var orderErrors = 0
    var lastDelivery: UInt64 = 0
    for loop in loops {
        let stats = statistics[ObjectIdentifier(loop)]!
        let (histogram, errors, last) = try await loop.submit { (stats.latency, stats.orderErrors, stats.lastDelivery) }.get()
        latency.add(histogram)
        orderErrors += errors
        lastDelivery = max(lastDelivery, last)
    }
    return (delivered, orderErrors, latency, lastDelivery)
}

func milliseconds(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double {
    Double(histogram.valueAtPercentile(percentile)) / 1e6
}

/// A room of load clients whose first member says stamped messages at a steady rate: the
/// measured room of the benchmarks that compare a room's latency with and without something
/// else going on (`logins`, `overload`).
struct MeasuredRoom {
    let clients: Int
    let members: [(client: LoadClient, channel: any Channel)]
    let statistics: [ObjectIdentifier: LoopStatistics]
    let group: MultiThreadedEventLoopGroup
    private let say: @Sendable (Int, String) -> Void

    static func connect(group: MultiThreadedEventLoopGroup, host: String, port: Int, clients: Int, namePrefix: String,
                        room: String) async throws -> MeasuredRoom {
        let statistics = makeStatistics(for: group)
        let members = try await connectClients(group: group, host: host, port: port, count: clients, namePrefix: namePrefix,
                                               room: room, statistics: statistics)
        let sender = members[0]
        return MeasuredRoom(clients: clients, members: members, statistics: statistics, group: group) { _, stamp in
            sender.channel.eventLoop.execute { sender.client.send(#"{"type":"say","room":"\#(room)","text":"\#(stamp)"}"#) }
        }
    }

    private init(clients: Int, members: [(client: LoadClient, channel: any Channel)], statistics: [ObjectIdentifier: LoopStatistics],
                 group: MultiThreadedEventLoopGroup, say: @escaping @Sendable (Int, String) -> Void) {
        self.clients = clients
        self.members = members
        self.statistics = statistics
        self.group = group
        self.say = say
    }

    /// One phase: `rate` messages per second for `seconds`, then `beforeDrain` (whatever ran
    /// beside the phase finishing), then every delivery counted. Returns the messages sent and
    /// what the members received.
    func phase(rate: Double, seconds: Double, deadline: Double, beforeDrain: () async throws -> Void = {}) async throws
        -> (sent: Int, delivered: Int, orderErrors: Int, latency: Histogram<UInt64>) {
        try await resetStatistics(statistics, group: group)
        let sent = try await pacedSend(rate: rate, seconds: seconds, deadline: deadline, say)
        try await beforeDrain()
        let result = try await drainStatistics(statistics, group: group, expected: sent * clients, idle: 3, deadline: deadline)
        return (sent, result.delivered, result.orderErrors, result.latency)
    }

    func close() {
        for (_, channel) in members { channel.close(promise: nil) }
    }
}
