import ChatTestSupport
import Testing

@Suite struct SessionTests {
    @Test func greetingThenLoginThenWelcomeWithDefaultRoomAndMotd() async throws {
        try await withServer({ $0.server.motd = "be nice"; $0.server.name = "testchat" }) { server in
            let client = try server.client()
            let greeting = try client.next()
            #expect(greeting.type == "greeting")
            #expect(greeting["server"]?.stringValue == "testchat")
            #expect(greeting["protocol"]?.integerValue == 1)
            #expect(greeting["password_required"] == .bool(false))
            client.send(#"{"type":"login","name":"alice","id":1}"#)
            let welcome = try client.next()
            #expect(welcome.type == "welcome")
            #expect(welcome.re == .integer(1))
            #expect(welcome["name"]?.stringValue == "alice")
            #expect(welcome["default_room"]?.stringValue == "lobby")
            #expect(welcome["motd"]?.stringValue == "be nice")
        }
    }

    @Test func requestsBeforeLoginAreRefusedButPingAndQuitWork() async throws {
        try await withServer { server in
            let client = try server.client()
            _ = try client.next("greeting")
            client.send(#"{"type":"join","room":"lobby","id":"j"}"#)
            let refused = try client.next()
            #expect(refused.code == "not_logged_in")
            #expect(refused.re == .string("j"))
            client.send(#"{"type":"ping","id":5}"#)
            let pong = try client.next()
            #expect(pong.type == "pong")
            #expect(pong.re == .integer(5))
            client.send(#"{"type":"quit"}"#)
            #expect(try client.next().type == "bye")
            #expect(try client.readUntilClosed().isEmpty)
        }
    }

    @Test func invalidNamesAreRefusedAndTheClientMayTryAgain() async throws {
        try await withServer({ $0.limits.maxNameLength = 8 }) { server in
            let client = try server.client()
            _ = try client.next("greeting")
            for name in ["", "-dash", "has space", "émile", "toolongname", "a.b"] {
                client.send(["type": "login", "name": name, "id": 1])
                #expect(try client.next().code == "invalid_name", "\(name) should be refused")
            }
            client.send(#"{"type":"login","name":"ok_nm-1","id":2}"#)
            #expect(try client.next().type == "welcome")
        }
    }

    @Test func aLiveNameIsTakenCaseInsensitivelyAndFreedOnDisconnect() async throws {
        try await withServer { server in
            var alice: LineClient? = try server.user("Alice")
            let other = try server.client()
            _ = try other.next("greeting")
            other.send(#"{"type":"login","name":"ALICE","id":1}"#)
            let taken = try other.next()
            #expect(taken.code == "name_taken")
            #expect(taken.re == .integer(1))
            alice = nil
            _ = alice
            // Once the first session is gone, the name is free again (kept as first spelled).
            try await waitUntil("the name to be free") {
                other.send(#"{"type":"login","name":"alice","id":2}"#)
                let answer = try other.next()
                if answer.type == "welcome" {
                    #expect(answer["name"]?.stringValue == "Alice")
                    return true
                }
                #expect(answer.code == "name_taken")
                return false
            }
        }
    }

    @Test func passwordIsRequiredWhenConfigured() async throws {
        try await withServer({ $0.server.password = "s3cret" }) { server in
            let wrong = try server.client()
            #expect(try wrong.next()["password_required"] == .bool(true))
            wrong.send(#"{"type":"login","name":"alice","password":"guess","id":1}"#)
            let refused = try wrong.next()
            #expect(refused.code == "bad_password")
            #expect(refused.re == .integer(1))
            #expect(try wrong.readUntilClosed().isEmpty)

            let missing = try server.client()
            _ = try missing.next("greeting")
            missing.send(#"{"type":"login","name":"alice"}"#)
            #expect(try missing.next().code == "bad_password")
            #expect(try missing.readUntilClosed().isEmpty)

            let right = try server.client()
            #expect(try right.login("alice", password: "s3cret").type == "welcome")
        }
    }

    @Test func loginTwiceIsABadRequest() async throws {
        try await withServer { server in
            let client = try server.user("alice")
            client.send(#"{"type":"login","name":"bob","id":3}"#)
            let error = try client.next()
            #expect(error.code == "bad_request")
            #expect(error.re == .integer(3))
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withServer { server in
            let client = try server.client()
            _ = try client.next("greeting")
            client.send(bytes: Array("""
                {"type":"login","name":"alice","id":1}
                {"type":"join","room":"lobby","id":2}
                {"type":"say","room":"lobby","text":"first","id":3}
                {"type":"ping","id":4}

                """.utf8))
            #expect(try client.next().type == "welcome")
            #expect(try client.next().type == "joined")
            #expect(try client.next().type == "history")
            #expect(try client.next().type == "message", "the acknowledgement of the say before the ping")
            #expect(try client.next().type == "pong")
        }
    }

    /// Says go to the writer back to back (their acknowledgements come in id order); a request
    /// after them is answered after all of their acknowledgements, whatever it is.
    @Test func answersFollowTheAcknowledgementsOfEarlierSays() async throws {
        try await withServer { server in
            let client = try server.user("alice")
            try client.join("lobby")
            let other = try server.user("bob")
            try other.join("lobby")
            _ = try client.next("presence")
            for round in 0..<3 {
                var lines = (0..<50).map { #"{"type":"say","room":"lobby","text":"m\#($0)","id":"s\#($0)"}"# }
                lines.append(#"{"type":"who","room":"lobby","id":"who"}"#)
                lines.append(#"{"type":"say","to":"bob","text":"psst","id":"dm"}"#)
                lines.append(#"{"type":"ping","id":"ping"}"#)
                client.send(bytes: Array((lines.joined(separator: "\n") + "\n").utf8))
                var order: [String] = []
                while order.last != "ping" {
                    let frame = try client.next()
                    if case .string(let re)? = frame.re { order.append(re) }
                }
                #expect(order == (0..<50).map { "s\($0)" } + ["who", "dm", "ping"], "round \(round)")
            }
        }
    }
}
