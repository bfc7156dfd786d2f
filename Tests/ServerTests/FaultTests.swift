import ChatTestSupport
import Foundation
import Synchronization
import Testing

@Suite struct FaultTests {
    @Test func aClientThatNeverReadsIsDisconnectedAndTheOthersGoOn() async throws {
        try await withServer({ $0.limits.maxOutboundBytes = 1024 * 1024 }) { server in
            let slow = try LineClient(port: server.port, receiveBuffer: 4096)
            try slow.login("slow")
            try slow.join("lobby")
            let fast = try server.user("fast")
            try fast.join("lobby")
            let sender = try server.user("sender")
            try sender.join("lobby")
            let count = 6000
            let text = String(repeating: "x", count: 1500)
            // Far more than the slow client's socket buffers and outbound limit together. The
            // sender waits for each acknowledgement and stays at most 100 messages (150 KB) ahead
            // of what the fast client has read, however busy the machine: only the client that
            // never reads falls behind.
            let fastProgress = Mutex(0)
            let fastReading = BackgroundThread {
                var received = 0
                while received < count {
                    guard let line = try fast.nextLine() else { break }
                    if line.hasPrefix(#"{"type":"message""#) {
                        received += 1
                        fastProgress.withLock { $0 = received }
                    }
                }
                return received
            }
            for index in 0..<count {
                if index - fastProgress.withLock({ $0 }) >= 100 {
                    try await waitUntil(timeout: 60, "the fast client to read") { index - fastProgress.withLock({ $0 }) < 100 }
                }
                try sender.say("\(index) \(text)")
            }
            let fastReceived = try await fastReading.value
            #expect(fastReceived == count)
            try await waitUntil("the slow client to be dropped") { server.server.connectionCount == 2 }
            // The server still answers everybody else.
            fast.send(#"{"type":"ping","id":1}"#)
            #expect(try fast.next("pong").re == .integer(1))
            #expect(try server.database.countMessages() == count)
        }
    }

    @Test func connectionsBeyondMaxClientsAreRefused() async throws {
        try await withServer({ $0.limits.maxClients = 2 }) { server in
            let first = try server.user("first")
            let second = try server.client()
            _ = try second.next("greeting")
            let third = try server.client()
            let frames = try third.readUntilClosed()
            #expect(frames.contains { $0.code == "server_full" })
            // A slot frees when a client leaves.
            first.send(#"{"type":"quit"}"#)
            _ = try first.readUntilClosed()
            try await waitUntil("a free slot") { server.server.connectionCount < 2 }
            let fourth = try server.client()
            #expect(try fourth.next().type == "greeting")
        }
    }

    @Test func aQuietClientIsPingedThenDropped() async throws {
        try await withServer({ $0.limits.idleTimeoutSeconds = 2 }) { server in
            let quiet = try server.user("quiet")
            let ping = try quiet.next(timeout: 5)
            #expect(ping.type == "ping")
            let rest = try quiet.readUntilClosed(timeout: 5)
            #expect(rest.isEmpty)
            // A client that answers pings stays.
            let lively = try server.user("lively")
            for _ in 0..<3 {
                _ = try lively.next("ping", timeout: 5)
                lively.send(#"{"type":"pong"}"#)
            }
            lively.send(#"{"type":"ping","id":"alive"}"#)
            #expect(try lively.next("pong").re == .string("alive"))
        }
    }

    @Test func manyAbruptDisconnectsLeaveTheServerHealthy() async throws {
        try await withServer { server in
            let watcher = try server.user("watcher")
            try watcher.join("lobby")
            for round in 0..<40 {
                let client = try server.client()
                switch round % 4 {
                case 0: break // connect and vanish
                case 1: client.send(bytes: Array(#"{"type":"login","na"#.utf8)) // half a frame
                case 2:
                    try client.login("ghost\(round)")
                    client.send(#"{"type":"join","room":"lobby"}"#) // gone before the answer
                default:
                    try client.login("ghost\(round)")
                    try client.join("lobby")
                    client.send(#"{"type":"say","room":"lobby","text":"boo"}"#)
                }
            }
            try await waitUntil("every ghost to be gone") { server.server.connectionCount == 1 }
            watcher.send(#"{"type":"who","room":"lobby","id":1}"#)
            #expect(try watcher.next("who").members == ["watcher"])
        }
    }

    @Test func shutdownTellsEveryClient() async throws {
        let server = try await TestServer.start()
        let alice = try server.user("alice")
        try alice.join("lobby")
        let unnamed = try server.client()
        _ = try unnamed.next("greeting")
        await server.stop()
        for client in [alice, unnamed] {
            let frames = try client.readUntilClosed()
            let shutdown = try #require(frames.last)
            #expect(shutdown.type == "shutdown")
            #expect(shutdown["reason"]?.stringValue == "server is shutting down")
        }
    }
}

@Suite struct ForgetWhileOnlineTests {
    /// `chat-admin forget` erases a user who is still online: its next messages are stored under
    /// a new record of the same name instead of failing with `internal`.
    @Test func aForgottenUserWhoIsOnlineCanStillTalk() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            _ = try alice.say("before")
            _ = try server.user("bob")
            #expect(try server.database.forgetUser(named: "alice").messages == 1)
            let after = try alice.say("after")
            #expect(after.type == "message" && after.from == "alice")
            let direct = try alice.request(["type": "say", "to": "bob", "text": "still me"])
            #expect(direct.type == "message", "\(direct)")
            #expect(try server.database.countMessages() == 2)
            #expect(try server.database.user(named: "alice") != nil)
        }
    }
}

@Suite struct SlowConsumerNoticeTests {
    /// A client that falls behind is dropped, but if it is merely slow it still reads what was
    /// queued and then the `slow_consumer` error, last.
    @Test func aMerelySlowClientReadsTheSlowConsumerErrorLast() async throws {
        try await withServer({ $0.limits.maxOutboundBytes = 256 * 1024 }) { server in
            let slow = try LineClient(port: server.port, receiveBuffer: 4096)
            try slow.login("slow")
            try slow.join("lobby")
            #expect(try floodUntilDropped(server, member: "slow"))
            // Now it reads: the backlog, then the error, then the end.
            let frames = try slow.readUntilClosed(describing: "the slow client's backlog")
            #expect(frames.last?.code == "slow_consumer", "last: \(frames.last.map(\.line) ?? "none")")
            #expect(frames.dropLast().allSatisfy { $0.type == "message" || $0.type == "presence" })
            #expect(frames.count > 10, "it read the backlog first")
        }
    }
}
