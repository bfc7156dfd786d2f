import ChatProtocol
import ChatTestSupport
import Foundation
import Testing

/// What an anonymous peer can make the server hold, and how fast it can guess (issue 9).
/// Other hosts are played by other loopback addresses (127.0.0.2, ...).
@Suite struct AbuseLimitTests {
    @Test func aConnectionThatDoesNotLogInIsClosedWhateverItSends() async throws {
        try await withServer({ $0.limits.loginTimeoutSeconds = 1 }) { server in
            let lingering = try server.client()
            _ = try lingering.next("greeting")
            let started = Date()
            var closing: Frame?
            // Pings before login are answered but do not extend the deadline.
            while closing == nil, Date().timeIntervalSince(started) < 10 {
                lingering.send(#"{"type":"ping","id":"p"}"#)
                let frame = try lingering.next(timeout: 10)
                if frame.type == "error" { closing = frame }
            }
            #expect(closing?.code == "not_logged_in")
            #expect(try lingering.readUntilClosed().isEmpty)
            #expect(Date().timeIntervalSince(started) < 5)
            // A login in time keeps the connection.
            let prompt = try server.user("prompt")
            try await Task.sleep(for: .milliseconds(1500))
            prompt.send(#"{"type":"ping","id":"still"}"#)
            #expect(try prompt.next("pong").re == .string("still"))
        }
    }

    @Test func socketsThatNeverLogInCannotLockOthersOut() async throws {
        try await withServer({ $0.limits.maxPendingLoginsPerAddress = 5 }) { server in
            var idle: [LineClient] = []
            for _ in 0..<5 {
                let client = try server.client()
                _ = try client.next("greeting")
                idle.append(client)
            }
            let refused = try server.client()
            let frames = try refused.readUntilClosed()
            #expect(frames.first?.code == "server_full")
            #expect(frames.first?.value["message"]?.stringValue?.contains("not logged in") == true)
            // Another host connects, logs in and chats at once.
            let other = try LineClient(port: server.port, sourceAddress: "127.0.0.2")
            try other.login("elsewhere")
            try other.join("lobby")
            #expect(try other.say("unaffected").type == "message")
            // Logging in frees the address's waiting slot.
            try idle[0].login("finally", readGreeting: false)
            let next = try server.client()
            #expect(try next.next().type == "greeting")
        }
    }

    @Test func connectionsPerAddressAreCapped() async throws {
        try await withServer({ $0.limits.maxConnectionsPerAddress = 3 }) { server in
            let users = try (0..<3).map { try server.user("user\($0)") }
            #expect(try server.client().readUntilClosed().first?.code == "server_full")
            do {
                let other = try LineClient(port: server.port, sourceAddress: "127.0.0.3")
                #expect(try other.next().type == "greeting", "another address is not counted")
            }
            users[0].send(#"{"type":"quit"}"#)
            _ = try users[0].readUntilClosed()
            try await waitUntil("the slot to free") { server.server.connectionCount == 2 }
            #expect(try server.client().next().type == "greeting")
        }
    }

    @Test func serverPasswordGuessesFromOneAddressAreRefusedUnchecked() async throws {
        try await withServer({ $0.server.password = "the-password" }) { server in
            for guess in 0..<5 {
                let guesser = try server.client()
                _ = try guesser.next("greeting")
                guesser.send(["type": "login", "name": "g\(guess)", "password": "guess \(guess)", "id": "login"])
                #expect(try guesser.readUntilClosed().first?.code == "bad_password")
            }
            let right = try server.client()
            _ = try right.next("greeting")
            right.send(["type": "login", "name": "guesser", "password": "the-password", "id": "login"])
            let answer = try right.readUntilClosed().first
            #expect(answer?.code == "bad_password")
            #expect(answer?.value["message"]?.stringValue?.contains("too many wrong passwords") == true)
            // Another address is not affected.
            let other = try LineClient(port: server.port, sourceAddress: "127.0.0.2")
            #expect(try other.login("honest", password: "the-password").type == "welcome")
        }
    }

    @Test func newNamesPerAddressAreLimited() async throws {
        try await withServer({ $0.limits.newNamesPerAddressPerHour = 3 }) { server in
            for index in 0..<3 { _ = try server.user("fresh\(index)") }
            let fourth = try server.client()
            #expect(try fourth.loginAnswer("fresh3", accountPassword: nil).code == "rate_limited")
            #expect(try fourth.loginAnswer("fresh0", accountPassword: nil, readGreeting: false).type == "welcome", "a name seen before is fine")
            #expect(try LineClient(port: server.port, sourceAddress: "127.0.0.2").loginAnswer("fresh3", accountPassword: nil).type == "welcome")
        }
    }

    @Test func roomCreationIsLimitedPerUserAndInAll() async throws {
        try await withServer({ $0.rooms.createPerUserPerHour = 2; $0.rooms.maxRooms = 4 }) { server in
            let alice = try server.user("alice")
            #expect(try alice.request(["type": "join", "room": "one"]).type == "joined")
            #expect(try alice.request(["type": "join", "room": "two"]).type == "joined")
            #expect(try alice.request(["type": "join", "room": "three"]).code == "rate_limited")
            #expect(try alice.request(["type": "join", "room": "lobby"]).type == "joined", "existing rooms are fine")
            let bob = try server.user("bob")
            #expect(try bob.request(["type": "join", "room": "three"]).type == "joined", "lobby, one, two, three: the maximum")
            let full = try bob.request(["type": "join", "room": "four"])
            #expect(full.code == "no_such_room")
            #expect(full.value["message"]?.stringValue?.contains("maximum of 4 rooms") == true)
            #expect(try bob.request(["type": "join", "room": "one"]).type == "joined")
        }
    }
}
