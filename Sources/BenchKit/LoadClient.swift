import Histogram
import NIOCore
import NIOPosix
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on the monotonic clock: senders stamp it into the text, receivers subtract.
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// What the clients on one event loop measured; touched only on that loop.
final class LoopStatistics: @unchecked Sendable {
    var latency = Histogram<UInt64>(lowestDiscernibleValue: 1_000, highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .two)
    var deliveries = 0
    var orderErrors = 0
    var lastDelivery: UInt64 = 0
    /// With `fanout --timeline`: the worst latency of the messages sent in each 100 ms, keyed
    /// by the send time in tenths of a second (nil: not recorded).
    var worstBySendTime: [UInt64: UInt64]?

    /// One delivery's latency (both times on the monotonic clock, in ns), into the histogram and,
    /// with `--timeline`, its 100 ms of sending.
    func recordLatency(sent: UInt64, received: UInt64) {
        _ = latency.record(received - sent)
        guard worstBySendTime != nil else { return }
        let tenth = sent / 100_000_000
        worstBySendTime![tenth] = max(worstBySendTime![tenth] ?? 0, received - sent)
    }
}

/// One benchmark connection. It logs in, joins, then counts `message` frames by their prefix
/// and reads only `id` and the send time the text starts with: no full JSON decode per
/// delivery, so the generator stays cheaper than the server it measures.
final class LoadClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase { case connecting, loggingIn, joining, joined, failed(String) }

    let name: String
    let room: String
    let history: Int
    let statistics: LoopStatistics
    /// A stalled client stops reading once joined (it plays the slow consumer).
    let isStalled: Bool
    /// Whether copies of this client's own messages count as deliveries (direct-message runs
    /// measure the recipients only).
    var countsOwnMessages = true
    /// Speaks IRC (NICK, USER, JOIN, PRIVMSG lines) instead of the native protocol: a listener
    /// only (it never sends), for mixed rooms.
    var speaksIRC = false
    /// Speaks the native protocol over a WebSocket (the web listener's `/ws`): the handshake,
    /// then one masked text frame per line out, and text frames in.
    var overWebSocket = false
    private var awaitingHandshake = false
    private(set) var phase = Phase.connecting
    private var pending = ByteBuffer()
    private var lastID: Int64 = 0
    private var context: ChannelHandlerContext?
    let joinedPromise: EventLoopPromise<Void>
    /// When the join was sent, and (join benchmark) how long until its `history` arrived.
    private(set) var joinSentAt: UInt64 = 0
    private(set) var joinLatency: UInt64 = 0
    private(set) var historyBytes = 0
    /// Messages this client received live (read on its loop).
    private(set) var received = 0

    init(name: String, room: String, history: Int, statistics: LoopStatistics, isStalled: Bool, promise: EventLoopPromise<Void>) {
        self.name = name
        self.room = room
        self.history = history
        self.statistics = statistics
        self.isStalled = isStalled
        self.joinedPromise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        if overWebSocket {
            awaitingHandshake = true
            var request = context.channel.allocator.buffer(capacity: 200)
            request.writeString("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        }
        if speaksIRC {
            phase = .loggingIn
            send("NICK \(name)\r\nUSER \(name) 0 * :\(name)\r")
        }
        context.fireChannelActive()
    }

    func send(_ line: String) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: line.utf8.count + 14)
        if overWebSocket {
            // One masked text frame (the mask is zero: the bytes go as they are, as RFC 6455 allows).
            let count = line.utf8.count
            buffer.writeInteger(UInt8(0x81))
            if count < 126 {
                buffer.writeInteger(UInt8(0x80 | count))
            } else if count <= 0xFFFF {
                buffer.writeInteger(UInt8(0x80 | 126))
                buffer.writeInteger(UInt16(count))
            } else {
                buffer.writeInteger(UInt8(0x80 | 127))
                buffer.writeInteger(UInt64(count))
            }
            buffer.writeInteger(UInt32(0))
            buffer.writeString(line)
        } else {
            buffer.writeString(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let now = monotonicNanoseconds()
        if overWebSocket {
            pending.writeBuffer(&buffer)
            readFrames(now: now, context: context)
            pending.discardReadBytes()
            return
        }
        // Lines are read straight from the read buffer; only a partial last line is kept.
        if pending.readableBytes > 0 {
            pending.writeBuffer(&buffer)
            handleLines(in: &pending, now: now, context: context)
            pending.discardReadBytes()
        } else {
            handleLines(in: &buffer, now: now, context: context)
            if buffer.readableBytes > 0 { pending.writeBuffer(&buffer) }
        }
    }

    private func handleLines(in buffer: inout ByteBuffer, now: UInt64, context: ChannelHandlerContext) {
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = buffer.readSlice(length: newline - buffer.readerIndex)!
            buffer.moveReaderIndex(forwardBy: 1)
            handle(line, now: now, context: context)
        }
    }

    /// The handshake's answer, then server frames (unmasked): each text frame's payload is a line.
    private func readFrames(now: UInt64, context: ChannelHandlerContext) {
        if awaitingHandshake {
            let view = pending.readableBytesView
            guard let end = view.firstRange(of: "\r\n\r\n".utf8) else { return }
            let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
            guard head.hasPrefix("HTTP/1.1 101") else {
                phase = .failed(head)
                joinedPromise.fail(LoadError(description: "\(name): WebSocket refused: \(head.prefix(80))"))
                return
            }
            pending.moveReaderIndex(to: end.upperBound)
            awaitingHandshake = false
        }
        while pending.readableBytes >= 2 {
            let start = pending.readerIndex
            let opcode = pending.getInteger(at: start, as: UInt8.self)! & 0x0F
            var length = Int(pending.getInteger(at: start + 1, as: UInt8.self)! & 0x7F)
            var header = 2
            if length == 126 {
                guard let extended = pending.getInteger(at: start + 2, as: UInt16.self) else { return }
                length = Int(extended)
                header = 4
            } else if length == 127 {
                guard let extended = pending.getInteger(at: start + 2, as: UInt64.self) else { return }
                length = Int(extended)
                header = 10
            }
            guard pending.readableBytes >= header + length else { return }
            pending.moveReaderIndex(forwardBy: header)
            let payload = pending.readSlice(length: length)!
            if opcode == 0x1 { handle(payload, now: now, context: context) }
        }
    }

    private func handle(_ line: ByteBuffer, now: UInt64, context: ChannelHandlerContext) {
        if speaksIRC { return handleIRC(line, now: now, context: context) }
        let bytes = line.readableBytesView
        if bytes.starts(with: #"{"type":"message""#.utf8) {
            guard case .joined = phase else { return }
            if !countsOwnMessages, isOwn(line) { return }
            statistics.deliveries += 1
            received += 1
            statistics.lastDelivery = now
            if let id = integer(after: #""id":"#, in: line) {
                if id <= lastID { statistics.orderErrors += 1 }
                lastID = id
            }
            if let sent = sendTime(in: line), sent <= now { statistics.recordLatency(sent: sent, received: now) }
        } else if bytes.starts(with: #"{"type":"greeting""#.utf8) {
            phase = .loggingIn
            send(#"{"type":"login","name":"\#(name)"}"#)
        } else if bytes.starts(with: #"{"type":"welcome""#.utf8) {
            guard !room.isEmpty else {
                // No room to join (direct messages only): ready once logged in.
                phase = .joined
                joinedPromise.succeed()
                return
            }
            phase = .joining
            joinSentAt = monotonicNanoseconds()
            send(#"{"type":"join","room":"\#(room)","history":\#(history)}"#)
        } else if bytes.starts(with: #"{"type":"history""#.utf8) {
            if case .joining = phase {
                phase = .joined
                joinLatency = now - joinSentAt
                historyBytes = line.readableBytes
                joinedPromise.succeed()
                if isStalled { context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
            }
        } else if bytes.starts(with: #"{"type":"ping""#.utf8) {
            send(#"{"type":"pong"}"#)
        } else if bytes.starts(with: #"{"type":"error""#.utf8) {
            if case .joined = phase { return }
            let text = String(buffer: line)
            phase = .failed(text)
            joinedPromise.fail(LoadError(description: "\(name): \(text)"))
        }
    }

    /// An IRC line: `:source PRIVMSG #room :<send nanoseconds> ...`, or registration numerics.
    private func handleIRC(_ line: ByteBuffer, now: UInt64, context: ChannelHandlerContext) {
        // The command, found on the raw bytes (no String per delivery): after `:source `, if any.
        let bytes = line.readableBytesView
        var start = bytes.startIndex
        if bytes.first == UInt8(ascii: ":") { start = (bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex) + 1 }
        guard start < bytes.endIndex else { return }
        let end = bytes[start...].firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex
        let word = bytes[start..<end]
        let command = word.elementsEqual("PRIVMSG".utf8) ? "PRIVMSG" : String(decoding: word, as: UTF8.self)
        switch command {
        case "PRIVMSG":
            guard case .joined = phase else { return }
            statistics.deliveries += 1
            received += 1
            statistics.lastDelivery = now
            if let sent = integer(after: " :", in: line), sent <= now { statistics.recordLatency(sent: UInt64(sent), received: now) }
        case "001":
            phase = .joining
            joinSentAt = monotonicNanoseconds()
            send("JOIN #\(room)\r")
        case "366":
            if case .joining = phase {
                phase = .joined
                joinLatency = now - joinSentAt
                joinedPromise.succeed()
            }
        case "PING":
            send("PONG :x\r")
        case "ERROR", "432", "433", "464":
            let text = String(buffer: line)
            phase = .failed(text)
            joinedPromise.fail(LoadError(description: "\(name): \(text)"))
        default:
            return
        }
    }

    /// The integer after `key` in the line. A plain scan over the raw bytes: the generic
    /// collection search cost ~10 µs a delivery and made the generator the bottleneck.
    private func integer(after key: StaticString, in line: ByteBuffer) -> Int64? {
        line.withUnsafeReadableBytes { bytes -> Int64? in
            let keyLength = key.utf8CodeUnitCount
            let first = key.utf8Start[0]
            var position = 0
            var found: Int?
            while position + keyLength <= bytes.count {
                if bytes[position] == first {
                    var matches = true
                    for offset in 1..<keyLength where bytes[position + offset] != key.utf8Start[offset] {
                        matches = false
                        break
                    }
                    if matches {
                        found = position
                        break
                    }
                }
                position += 1
            }
            guard let found else { return nil }
            var index = found + keyLength
            let start = index
            var value: Int64 = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                value = value * 10 + Int64(bytes[index] - 0x30)
                index += 1
            }
            return index > start ? value : nil
        }
    }

    /// Whether the message line is from this client (`"from":"<name>"`).
    private func isOwn(_ line: ByteBuffer) -> Bool {
        let needle = Array(#""from":"\#(name)""#.utf8)
        return line.withUnsafeReadableBytes { bytes in
            guard bytes.count >= needle.count else { return false }
            for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
                if (0..<needle.count).allSatisfy({ bytes[start + $0] == needle[$0] }) { return true }
            }
            return false
        }
    }

    /// The text starts `"<send nanoseconds> ...`.
    private func sendTime(in line: ByteBuffer) -> UInt64? {
        integer(after: #""text":""#, in: line).map { UInt64($0) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        joinedPromise.fail(LoadError(description: "\(name): connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Fresh statistics for each event loop of `group`, keyed by the loop.
func makeStatistics(for group: MultiThreadedEventLoopGroup, timeline: Bool = false) -> [ObjectIdentifier: LoopStatistics] {
    var statistics: [ObjectIdentifier: LoopStatistics] = [:]
    for loop in group.makeIterator() {
        let loopStatistics = LoopStatistics()
        if timeline { loopStatistics.worstBySendTime = [:] }
        statistics[ObjectIdentifier(loop)] = loopStatistics
    }
    return statistics
}

struct LoadError: Error, CustomStringConvertible {
    let description: String
}

/// Connects `count` clients, at most `concurrency` connecting at once, and waits until each
/// has joined `room`. Returns the handlers and their channels.
func connectClients(
    group: MultiThreadedEventLoopGroup, host: String, port: Int, count: Int, namePrefix: String, room: String,
    history: Int = 0, stalled: Int = 0, concurrency: Int = 64, countsOwnMessages: Bool = true, tls: NIOSSLContext? = nil,
    irc: (port: Int, from: Int)? = nil, overWebSocket: Bool = false, spreadOver ports: [Int] = [],
    statistics: [ObjectIdentifier: LoopStatistics]
) async throws -> [(client: LoadClient, channel: any Channel)] {
    var clients: [(LoadClient, any Channel)] = []
    var index = 0
    while index < count {
        let batch = min(concurrency, count - index)
        let connected = try await withThrowingTaskGroup(of: (Int, LoadClient, any Channel).self) { tasks in
            for offset in 0..<batch {
                let number = index + offset
                tasks.addTask {
                    let channel = try await ClientBootstrap(group: group)
                        .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                        .channelInitializer { channel in
                            let stats = statistics[ObjectIdentifier(channel.eventLoop)]!
                            let client = LoadClient(name: "\(namePrefix)\(number)", room: room, history: history, statistics: stats,
                                                    isStalled: number < stalled, promise: channel.eventLoop.makePromise())
                            client.countsOwnMessages = countsOwnMessages
                            client.speaksIRC = irc.map { number >= $0.from } ?? false
                            client.overWebSocket = overWebSocket
                            return channel.eventLoop.makeCompletedFuture {
                                if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                                try channel.pipeline.syncOperations.addHandler(client)
                            }
                        }
                        .connect(host: host, port: irc.map { number >= $0.from ? $0.port : port } ?? (ports.isEmpty ? port : ports[number % ports.count])).get()
                    let client = try await channel.pipeline.handler(type: LoadClient.self).get()
                    try await client.joinedPromise.futureResult.get()
                    return (number, client, channel)
                }
            }
            var results: [(Int, LoadClient, any Channel)] = []
            for try await result in tasks { results.append(result) }
            return results.sorted { $0.0 < $1.0 }
        }
        clients += connected.map { ($0.1, $0.2) }
        index += batch
    }
    return clients
}

/// Only loopback: these tools load a server on this machine and nothing else.
func requireLoopback(_ host: String) throws {
    guard host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.") else {
        throw LoadError(description: "refusing \(host): benchmarks only target loopback addresses (127.0.0.0/8, ::1)")
    }
}

/// The server's resident memory in KiB, from /proc.
func residentKiB(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

import Foundation
