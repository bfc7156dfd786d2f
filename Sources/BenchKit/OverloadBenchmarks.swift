import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What an attacker does to a public server, and what everyone else sees meanwhile: a room's
/// latency with and without the attack, in one run (issue 9's targets).
public struct OverloadBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "overload",
        abstract: "A room at R msg/s with and without an attack: N sockets that never log in (--attack idle), or F clients writing as fast as they can (--attack flood).",
        discussion: """
            idle: the sockets come from --attacker-address (another loopback address); reports how
            many the server held and refused, how long a newcomer from 127.0.0.1 took to log in
            and be acknowledged meanwhile, and when the held ones were closed (the login deadline).
            flood: each flooder logs in, joins a room of its own and writes `say` frames as fast as
            TCP takes them (the server's rate limit must be off); the measured room is another.
            Example: chat-bench overload --port 9999 --attack flood --flooders 50 --rate 10 --seconds 10
            """)

    public enum Attack: String, ExpressibleByArgument, Sendable { case idle, flood }

    @OptionGroup public var server: ServerOptions
    @Option(help: "idle or flood.") public var attack: Attack
    @Option(help: "Clients in the measured room.") public var clients = 100
    @Option(help: "Messages per second into the measured room.") public var rate: Double = 50
    @Option(help: "Seconds per phase (without, then with the attack).") public var seconds: Double = 10
    @Option(help: "idle: sockets to open.") public var sockets = 10_000
    @Option(help: "idle: the loopback address the sockets come from.") public var attackerAddress = "127.0.0.2"
    @Option(help: "idle: seconds to wait for the server to close the sockets after the phase.") public var closeWait: Double = 40
    @Option(help: "flood: clients writing as fast as they can.") public var flooders = 50

    public func validate() throws {
        guard (2...20_000).contains(clients) else { throw ValidationError("--clients must be between 2 and 20000") }
        guard rate > 0, rate <= 10_000 else { throw ValidationError("--rate must be between 0 and 10000") }
        guard seconds > 0, seconds <= 300 else { throw ValidationError("--seconds must be between 0 and 300") }
        guard (1...30_000).contains(sockets) else { throw ValidationError("--sockets must be between 1 and 30000") }
        guard (1...500).contains(flooders) else { throw ValidationError("--flooders must be between 1 and 500") }
        guard closeWait >= 0, closeWait <= 600 else { throw ValidationError("--close-wait must be between 0 and 600") }
        guard attackerAddress.hasPrefix("127.") else { throw ValidationError("--attacker-address must be a loopback address") }
    }

    public func run() async throws {
        try requireLoopback(server.host)
        let group = MultiThreadedEventLoopGroup.singleton
        let (host, port) = (server.host, server.port)
        let deadline = now() + Double(server.timeout)
        let tag = UInt16.random(in: 0...UInt16.max)
        let room = try await MeasuredRoom.connect(group: group, host: host, port: port, clients: clients,
                                                  namePrefix: "m\(tag)-", room: "measured\(tag)")
        let alone = try await room.phase(rate: rate, seconds: seconds, deadline: deadline)

        var report: [String: Any] = ["benchmark": "overload", "attack": attack.rawValue, "clients": clients, "rate": rate, "seconds": seconds]
        var summary: [String] = []
        let busy: (sent: Int, delivered: Int, orderErrors: Int, latency: Histogram<UInt64>)
        switch attack {
        case .idle:
            let attackStarted = now()
            let idle = try IdleSockets.open(count: sockets, from: attackerAddress, to: host, port: port)
            let opened = now() - attackStarted
            // A newcomer from another address, while the sockets are held.
            let newcomer = try Newcomer.timeToAcknowledgement(host: host, port: port, name: "newcomer\(tag)", room: "newcomer\(tag)")
            busy = try await room.phase(rate: rate, seconds: seconds, deadline: deadline)
            let held = idle.openCount()
            let closing = idle.waitUntilClosed(seconds: closeWait)
            idle.closeAll()
            report["sockets"] = sockets
            report["sockets_connected"] = idle.connected
            report["sockets_held_after_phase"] = held
            report["sockets_open_after_wait"] = closing.stillOpen
            report["last_close_after_s"] = closing.lastCloseAfter
            report["newcomer_ack_ms"] = newcomer * 1000
            summary.append("\(sockets) sockets from \(attackerAddress) in \(String(format: "%.1f", opened)) s: \(idle.connected) connected, \(held) still open after the phase, \(closing.stillOpen) after \(Int(closeWait)) s (last closed \(String(format: "%.1f", closing.lastCloseAfter)) s after opening)")
            summary.append("a newcomer from 127.0.0.1 logged in, joined and had a message acknowledged in \(String(format: "%.1f", newcomer * 1000)) ms")
        case .flood:
            let flood = try Flood.start(count: flooders, host: host, port: port, namePrefix: "flood\(tag)-")
            busy = try await room.phase(rate: rate, seconds: seconds, deadline: deadline)
            let (sent, stored) = flood.stop()
            report["flooders"] = flooders
            report["flood_bytes_sent"] = sent
            report["flood_messages_stored_per_s"] = Double(stored) / seconds
            summary.append("\(flooders) flooders wrote \(grouped(Double(sent) / 1e6)) MB of say frames; the server stored and acknowledged \(grouped(Double(stored) / seconds)) of them per second")
        }
        room.close()
        let lost = (alone.sent + busy.sent) * clients - alone.delivered - busy.delivered
        report["room_alone_p50_ms"] = milliseconds(alone.latency, 50)
        report["room_alone_p99_ms"] = milliseconds(alone.latency, 99)
        report["room_attacked_p50_ms"] = milliseconds(busy.latency, 50)
        report["room_attacked_p99_ms"] = milliseconds(busy.latency, 99)
        report["lost"] = lost
        report["order_errors"] = alone.orderErrors + busy.orderErrors
        summary.append("room of \(clients) at \(rate) msg/s: p99 \(String(format: "%.2f", milliseconds(alone.latency, 99))) ms alone, \(String(format: "%.2f", milliseconds(busy.latency, 99))) ms under attack (p50 \(String(format: "%.2f", milliseconds(alone.latency, 50))) / \(String(format: "%.2f", milliseconds(busy.latency, 50)))), lost \(lost)")
        printError("overload (\(attack.rawValue)):\n  " + summary.joined(separator: "\n  "))
        try printReport(report)
        if lost != 0 || alone.orderErrors + busy.orderErrors > 0 { throw ExitCode(3) }
    }
}

/// Plain sockets that connect and then say nothing, from a chosen loopback address.
final class IdleSockets: @unchecked Sendable {
    private var descriptors: [Int32] = []
    private var openedAt: [Double] = []
    private(set) var connected = 0

    static func open(count: Int, from source: String, to host: String, port: Int) throws -> IdleSockets {
        let sockets = IdleSockets()
        for _ in 0..<count {
            let (fd, connected) = try connectedSocket(to: host, port: port, from: source)
            if connected { sockets.connected += 1 }
            sockets.descriptors.append(fd)
            sockets.openedAt.append(now())
        }
        return sockets
    }

    /// Whether the server has closed `fd` (end of stream, or an error), reading what it sent.
    private func isClosed(_ fd: Int32) -> Bool {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
            if count == 0 { return true }
            if count < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        }
    }

    func openCount() -> Int { descriptors.filter { !isClosed($0) }.count }

    /// Polls until the server has closed every socket or `seconds` passed.
    func waitUntilClosed(seconds: Double) -> (stillOpen: Int, lastCloseAfter: Double) {
        let until = now() + seconds
        var open = Set(descriptors.indices)
        var lastClose = 0.0
        while !open.isEmpty, now() < until {
            for index in open where isClosed(descriptors[index]) {
                open.remove(index)
                lastClose = max(lastClose, now() - openedAt[index])
            }
            if !open.isEmpty { usleep(100_000) }
        }
        return (open.count, lastClose)
    }

    func closeAll() {
        for fd in descriptors { close(fd) }
        descriptors = []
    }
}

/// A client from 127.0.0.1 arriving during the attack: connect, log in, join, say, acknowledged.
enum Newcomer {
    static func timeToAcknowledgement(host: String, port: Int, name: String, room: String) throws -> Double {
        let started = now()
        let socket = try BlockingLineSocket(host: host, port: port)
        defer { socket.close() }
        socket.send(#"{"type":"login","name":"\#(name)","id":1}"# + "\n" + #"{"type":"join","room":"\#(room)","history":0,"id":2}"# + "\n"
                    + #"{"type":"say","room":"\#(room)","text":"0 0 hello","id":3}"# + "\n")
        while let line = socket.readLine(timeout: 30) {
            if line.contains(#""type":"error""#) { throw LoadError(description: "the newcomer was refused: \(line)") }
            if line.contains(#""type":"message""#), line.contains(#""re":3"#) { return now() - started }
        }
        throw LoadError(description: "the newcomer got no acknowledgement within 30 s")
    }
}

/// Clients writing `say` frames as fast as TCP takes them, each in a room of its own, on threads
/// of their own (a writer and a reader that discards what comes back).
final class Flood: @unchecked Sendable {
    private let stopping = Atomic<Bool>(false)
    private let bytesSent = Atomic<Int>(0)
    private let acknowledged = Atomic<Int>(0)
    private var sockets: [BlockingLineSocket] = []
    private let finished = DispatchGroup()

    static func start(count: Int, host: String, port: Int, namePrefix: String) throws -> Flood {
        let flood = Flood()
        for index in 0..<count {
            let socket = try BlockingLineSocket(host: host, port: port)
            flood.sockets.append(socket)
            let room = "\(namePrefix)\(index)"
            socket.send(#"{"type":"login","name":"\#(namePrefix)\#(index)"}"# + "\n" + #"{"type":"join","room":"\#(room)","history":0}"# + "\n")
            var chunk = ""
            for sequence in 0..<256 {
                chunk += #"{"type":"say","room":"\#(room)","text":"flood \#(sequence) \#(String(repeating: "x", count: 90))"}"# + "\n"
            }
            let bytes = Array(chunk.utf8)
            flood.finished.enter()
            Thread.detachNewThread {
                while !flood.stopping.load(ordering: .relaxed) {
                    guard socket.send(bytes: bytes) else { break }
                    flood.bytesSent.add(bytes.count, ordering: .relaxed)
                }
                flood.finished.leave()
            }
            Thread.detachNewThread {
                socket.countMessagesUntilClosed { flood.acknowledged.add($0, ordering: .relaxed) }
            }
        }
        return flood
    }

    /// Stops writing, closes the connections; returns the bytes written and the flooders'
    /// messages the server stored and acknowledged.
    func stop() -> (bytes: Int, stored: Int) {
        stopping.store(true, ordering: .relaxed)
        let stored = acknowledged.load(ordering: .relaxed)
        for socket in sockets { socket.shutdownBoth() }
        _ = finished.wait(timeout: .now() + 10)
        for socket in sockets { socket.close() }
        return (bytesSent.load(ordering: .relaxed), stored)
    }
}

/// A blocking IPv4 TCP socket connected to `host:port`, bound first to `source` when given.
/// Returns it whether or not the connection was made (an attack counts refusals; the caller
/// closes it).
func connectedSocket(to host: String, port: Int, from source: String? = nil) throws -> (fd: Int32, connected: Bool) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw LoadError(description: "socket: errno \(errno) (raise `ulimit -n`?)") }
    func address(_ ip: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, ip, &address.sin_addr)
        return address
    }
    func call(_ address: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        withUnsafePointer(to: address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
    if let source, call(address(source, port: 0), { bind(fd, $0, $1) }) != 0 { return (fd, false) }
    return (fd, call(address(host, port: port), { connect(fd, $0, $1) }) == 0)
}

/// A blocking TCP socket with line reading: just enough for the attackers above.
final class BlockingLineSocket: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let closed = Atomic<Bool>(false)

    init(host: String, port: Int) throws {
        let (fd, connected) = try connectedSocket(to: host, port: port)
        guard connected else { let reason = errno; Glibc.close(fd); throw LoadError(description: "connect: errno \(reason)") }
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    @discardableResult
    func send(bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    func send(_ text: String) { send(bytes: Array(text.utf8)) }

    func readLine(timeout: Double) -> String? {
        let until = now() + timeout
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let remaining = until - now()
            guard remaining > 0 else { return nil }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(remaining * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { return nil }
            buffer += chunk[..<count]
        }
    }

    /// Reads until the connection ends, telling `add` how many `message` frames each read held.
    func countMessagesUntilClosed(_ add: (Int) -> Void) {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let pattern = Array(#""type":"message""#.utf8)
        var count = 0
        var carry: [UInt8] = []
        while true {
            let received = recv(fd, &chunk, chunk.count, 0)
            guard received > 0 else { return }
            var bytes = carry + chunk[..<received]
            var start = 0
            count = 0
            while let newline = bytes[start...].firstIndex(of: 0x0A) {
                if contains(bytes[start..<newline], pattern) { count += 1 }
                start = newline + 1
            }
            add(count)
            bytes.removeSubrange(..<start)
            carry = bytes
        }
    }

    private func contains(_ line: ArraySlice<UInt8>, _ pattern: [UInt8]) -> Bool {
        guard line.count >= pattern.count else { return false }
        var index = line.startIndex
        while index + pattern.count <= line.endIndex {
            if line[index] == pattern[0], line[index..<(index + pattern.count)].elementsEqual(pattern) { return true }
            index += 1
        }
        return false
    }

    func shutdownBoth() { shutdown(fd, Int32(SHUT_RDWR)) }

    func close() {
        if !closed.exchange(true, ordering: .relaxed) { Glibc.close(fd) }
    }
}
