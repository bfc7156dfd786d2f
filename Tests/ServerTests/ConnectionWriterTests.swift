import ChatTestSupport
import Foundation
import Testing

/// The write path (`ConnectionWriter`): straight to the socket while NIO holds nothing of the
/// connection's, through NIO while the socket's buffer is full, and back.
@Suite struct ConnectionWriterTests {
    /// A member stops reading while far more than the kernel's buffers hold is said in its room
    /// (the writes that do not fit go to NIO, and everything after them too), then reads it all,
    /// then reads along while several senders talk at once (runs coalesced per loop turn: several
    /// buffers per `writev`). It gets every message once, in order, whole.
    @Test func aMemberThatFallsBehindAndCatchesUpGetsEveryMessageOnceInOrder() async throws {
        try await withServer({ $0.limits.maxOutboundBytes = 64 * 1024 * 1024 }) { server in
            let reader = try LineClient(port: server.port, receiveBuffer: 4096)
            try reader.login("reader")
            try reader.join("lobby")
            let first = try server.user("sender0")
            try first.join("lobby")
            let text = String(repeating: "x", count: 1500)
            // 1: 5,000 messages of 1.5 KB (7.5 MB) while the reader reads nothing: more than the
            // server's socket send buffer can grow to (tcp_wmem's 4 MB) and the reader's 4 KB.
            let behind = 5000
            try say(behind, from: first, text: text, tag: "a0")
            // 2: it reads everything said so far (NIO writes out what it holds) ...
            var received = try read(behind, by: reader)
            // 3: ... and reads along while three senders say 1,000 each, in batches, at once.
            var senders = [first]
            for index in 1..<3 {
                let sender = try server.user("sender\(index)")
                try sender.join("lobby")
                senders.append(sender)
            }
            let reading = BackgroundThread { try read(3000, by: reader) }
            let saying = senders.enumerated().map { index, sender in
                BackgroundThread { try say(1000, from: sender, text: text, tag: "b\(index)") }
            }
            for thread in saying { try await thread.value }
            received += try await reading.value
            // Whole, once, in order: ids consecutive, each sender's messages in the order said.
            let ids = received.map(\.id)
            #expect(ids == Array(ids[0]..<(ids[0] + Int64(ids.count))))
            let texts = received.map(\.text)
            let expected = (0..<behind).map { "a0 \($0) " }
            #expect(Array(texts.prefix(behind)).enumerated().allSatisfy { $0.element.hasPrefix(expected[$0.offset]) && $0.element.hasSuffix(text) })
            for index in senders.indices {
                let expected = (0..<1000).map { "b\(index) \($0) " }
                let own = texts.dropFirst(behind).filter { $0.hasPrefix("b\(index) ") }
                #expect(own.count == 1000)
                #expect(zip(own, expected).allSatisfy { $0.hasPrefix($1) && $0.hasSuffix(text) })
            }
        }
    }

    /// Runs committed while a fan-out is writing to a big room join it (`LoopOutbox`): the members
    /// not yet written get both in one system call, the ones already written get the later run
    /// after the pass. With 150 members and three senders at once, runs keep arriving mid-pass;
    /// every member still gets every message once, in order.
    @Test func runsThatJoinAFanOutReachEveryMemberOnceInOrder() async throws {
        try await withServer(inMemory: true) { server in
            let members = try (0..<150).map { index in
                let member = try server.user("member\(index)")
                try member.join("lobby")
                return member
            }
            let senders = try (0..<3).map { index in
                let sender = try server.user("sender\(index)")
                try sender.join("lobby")
                return sender
            }
            let perSender = 200
            let reading = members.map { member in BackgroundThread { try read(3 * perSender, by: member) } }
            let saying = senders.enumerated().map { index, sender in
                BackgroundThread { try say(perSender, from: sender, text: "x", tag: "s\(index)") }
            }
            for thread in saying { try await thread.value }
            for (index, thread) in reading.enumerated() {
                let received = try await thread.value
                let ids = received.map(\.id)
                #expect(ids == Array(ids[0]..<(ids[0] + Int64(ids.count))), "member\(index): ids not consecutive")
                for sender in senders.indices {
                    let own = received.map(\.text).filter { $0.hasPrefix("s\(sender) ") }
                    #expect(own == (0..<perSender).map { "s\(sender) \($0) x" }, "member\(index), sender\(sender)")
                }
            }
        }
    }

    /// Once the server has shut down, its port refuses connections (the accepting thread and the
    /// listening socket are gone).
    @Test func afterShutdownThePortRefusesConnections() async throws {
        let server = try await TestServer.start(inMemory: true)
        let client = try server.user("early")
        try client.join("lobby")
        await server.stop()
        #expect(throws: POSIXError.self) { try LineClient(port: server.port) }
    }
}

/// The listeners' own accepts (`SocketListener`).
@Suite struct SocketListenerTests {
    /// An accepted connection's socket is close-on-exec from the start: a process the server (or
    /// a test beside an in-process server) starts does not inherit it and keep it open.
    @Test func acceptedSocketsAreCloseOnExec() async throws {
        try await withServer(inMemory: true) { server in
            let client = try server.user("someone")
            // This process's sockets whose local port is the server's and that have a peer: the
            // server's ends of its accepted connections (the client's end has another local port).
            let accepted = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap(CInt.init).filter { fd in
                var address = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let local = withUnsafeMutablePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
                }
                guard local == 0, address.sin_family == sa_family_t(AF_INET), Int(UInt16(bigEndian: address.sin_port)) == server.port else { return false }
                var peer = sockaddr_in()
                length = socklen_t(MemoryLayout<sockaddr_in>.size)
                return withUnsafeMutablePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
                } == 0
            }
            #expect(accepted.count == 1)
            for fd in accepted { #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0) }
            _ = client
        }
    }
}

/// `count` messages from `sender`, texted "`tag` `index` `text`", sent in pipelined batches of 50
/// (each batch's acknowledgements read before the next).
private func say(_ count: Int, from sender: LineClient, text: String, tag: String) throws {
    var index = 0
    while index < count {
        let batch = index..<min(count, index + 50)
        for number in batch {
            sender.send(["type": "say", "room": "lobby", "text": "\(tag) \(number) \(text)", "id": "\(tag)-\(number)"])
        }
        var acknowledged = 0
        while acknowledged < batch.count {
            let frame = try sender.next(timeout: 60)
            if case .string(let id)? = frame.re, id.hasPrefix("\(tag)-") { acknowledged += 1 }
        }
        index = batch.upperBound
    }
}

/// The next `count` messages `client` reads (other frames skipped).
private func read(_ count: Int, by client: LineClient) throws -> [(id: Int64, text: String)] {
    var messages: [(id: Int64, text: String)] = []
    while messages.count < count {
        let frame = try client.next(timeout: 60)
        if frame.type == "message", let id = frame.id, let text = frame.text { messages.append((id, text)) }
    }
    return messages
}
