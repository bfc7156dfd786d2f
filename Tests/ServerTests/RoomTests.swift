import ChatTestSupport
import Testing

@Suite struct RoomTests {
    @Test func joinAnswersJoinedThenHistoryAndTellsTheOthers() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            let (joined, history) = try alice.join("lobby")
            #expect(joined.re == .string("join-lobby"))
            #expect(joined.members == ["alice"])
            #expect(history.messages.isEmpty)
            #expect(history.more == false)
            #expect(history.re == nil)

            let bob = try server.user("bob")
            let (bobJoined, _) = try bob.join("#Lobby")
            #expect(bobJoined.room == "lobby")
            #expect(Set(bobJoined.members) == ["alice", "bob"])
            let presence = try alice.next()
            #expect(presence.type == "presence")
            #expect(presence["name"]?.stringValue == "bob")
            #expect(presence["event"]?.stringValue == "join")
            #expect(presence["ts"]?.stringValue?.hasSuffix("Z") == true)
        }
    }

    @Test func leaveAnswersLeftAndTellsTheOthersOnce() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            let bob = try server.user("bob")
            try bob.join("lobby")
            _ = try alice.next("presence")
            bob.send(#"{"type":"leave","room":"lobby","id":3}"#)
            let left = try bob.next()
            #expect(left.type == "left")
            #expect(left.re == .integer(3))
            let presence = try alice.next()
            #expect(presence["event"]?.stringValue == "leave")
            #expect(presence["name"]?.stringValue == "bob")
            // No second leave: the next thing alice gets is her own pong.
            alice.send(#"{"type":"ping","id":"after"}"#)
            #expect(try alice.next().type == "pong")
            bob.send(#"{"type":"leave","room":"lobby","id":4}"#)
            #expect(try bob.next().code == "not_in_room")
        }
    }

    @Test func quitGivesByeAndTheOthersSeeTheReason() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            let bob = try server.user("bob")
            try bob.join("lobby")
            _ = try alice.next("presence")
            bob.send(#"{"type":"quit","reason":"dinner"}"#)
            #expect(try bob.next().type == "bye")
            let presence = try alice.next("presence")
            #expect(presence["event"]?.stringValue == "leave")
            #expect(presence["reason"]?.stringValue == "dinner")
        }
    }

    @Test func joiningTwiceIsHarmless() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            try alice.say("hello")
            let (joined, history) = try alice.join("lobby")
            #expect(joined.members == ["alice"])
            #expect(history.messages.isEmpty)
        }
    }

    @Test func roomNamesAreValidated() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            for bad in ["", "#", "has space", String(repeating: "r", count: 33), "ümlaut", "a.b"] {
                alice.send(["type": "join", "room": bad, "id": 1])
                #expect(try alice.next().code == "invalid_room", "\(bad)")
            }
            let (joined, _) = try alice.join("#Dev-Team_2")
            #expect(joined.room == "dev-team_2")
        }
    }

    @Test func withoutAutoCreateOnlyConfiguredRoomsExist() async throws {
        try await withServer({ $0.rooms.autoCreate = false; $0.rooms.preset = ["lobby", "ops"] }) { server in
            let alice = try server.user("alice")
            alice.send(#"{"type":"join","room":"random","id":1}"#)
            let refused = try alice.next()
            #expect(refused.code == "no_such_room")
            #expect(refused.re == .integer(1))
            try alice.join("ops")
            alice.send(#"{"type":"who","room":"random","id":2}"#)
            #expect(try alice.next().code == "no_such_room")
        }
    }

    @Test func sayLeaveAndHistoryNeedMembership() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            for frame in [#"{"type":"say","room":"lobby","text":"hi","id":1}"#,
                          #"{"type":"leave","room":"lobby","id":1}"#,
                          #"{"type":"history","room":"lobby","before":10,"id":1}"#] {
                alice.send(frame)
                let answer = try alice.next()
                #expect(answer.code == "not_in_room")
                #expect(answer.re == .integer(1))
            }
        }
    }

    @Test func whoAndRoomsListMembersAndCounts() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            try alice.join("dev")
            try alice.say("one", in: "dev")
            try alice.say("two", in: "dev")
            let bob = try server.user("bob")
            try bob.join("dev")
            bob.send(#"{"type":"who","room":"lobby","id":7}"#)
            let who = try bob.next()
            #expect(who.type == "who")
            #expect(who.re == .integer(7))
            #expect(who.members == ["alice"])
            bob.send(#"{"type":"rooms","id":6}"#)
            let rooms = try bob.next()
            #expect(rooms.re == .integer(6))
            guard case .array(let list)? = rooms["rooms"] else {
                Issue.record("no rooms array in \(rooms)")
                return
            }
            let summary = Dictionary(uniqueKeysWithValues: list.map {
                ($0["name"]?.stringValue ?? "", ($0["members"]?.integerValue ?? -1, $0["messages"]?.integerValue ?? -1))
            })
            #expect(summary["lobby"]?.0 == 1)
            #expect(summary["lobby"]?.1 == 0)
            #expect(summary["dev"]?.0 == 2)
            #expect(summary["dev"]?.1 == 2)
        }
    }
}

@Suite struct PresenceRunTests {
    /// Joins arriving together are sent as one run; still nobody hears of its own join, and
    /// every member hears of each later join once, in the room's order, before later messages.
    @Test func aJoinStormTellsEachMemberOfEveryLaterJoinOnce() async throws {
        try await withServer { server in
            let watcher = try server.user("watcher")
            try watcher.join("storm")
            let clients = try (0..<20).map { try server.user("storm\($0)") }
            // All joins written at once, so they reach the room together.
            for client in clients { client.send(#"{"type":"join","room":"storm","id":"j"}"#) }
            for client in clients { _ = try client.next("history") }
            clients[0].send(#"{"type":"say","room":"storm","text":"after the storm"}"#)
            func presenceUntilMessage(_ client: LineClient) throws -> [String] {
                var heard: [String] = []
                while true {
                    let frame = try client.next()
                    if frame.type == "message" { return heard }
                    if frame.type == "presence" { heard.append(frame["name"]?.stringValue ?? "") }
                }
            }
            // The room's order of joins, as the watcher (there before all of them) heard it.
            let order = try presenceUntilMessage(watcher)
            #expect(order.sorted() == clients.indices.map { "storm\($0)" }.sorted())
            for (index, client) in clients.enumerated() {
                let name = "storm\(index)"
                let heard = try presenceUntilMessage(client)
                let position = try #require(order.firstIndex(of: name))
                #expect(heard == Array(order[(position + 1)...]), "\(name) should hear exactly the joins after its own")
            }
        }
    }
}
