import ChatProtocol
import ChatTestSupport
import Foundation
import Testing

/// PROTOCOL.md, Direct messages and Search, over real sockets.
@Suite struct DirectMessageTests {
    @Test func aDirectMessageReachesEverySessionOfBothPeople() async throws {
        try await withServer { server in
            let phone = try AccountTests.registered("Alice", on: server)
            let laptop = try server.client()
            _ = try laptop.loginAnswer("alice", accountPassword: AccountTests.password)
            let bob = try server.user("bob")

            let sent = try bob.request(["type": "say", "to": "ALICE", "text": "hi alice"])
            #expect(sent.type == "message")
            #expect(sent.from == "bob" && sent.to == "Alice", "the recipient as first spelled")
            #expect(sent.room == nil)
            for session in [phone, laptop] {
                let received = try session.next("message")
                #expect(received.id == sent.id)
                #expect(received.re == nil)
                #expect(received.text == "hi alice")
            }
            // The sender's other sessions see what it sent, too.
            let reply = try phone.request(["type": "say", "to": "bob", "text": "hello bob", "kind": "action"])
            #expect(reply.to == "bob")
            #expect(reply.value["kind"]?.stringValue == "action")
            #expect(try laptop.next("message").id == reply.id)
            #expect(try bob.next("message").id == reply.id)
            // Ids come from the one sequence.
            let roomMessage = try { try bob.join("lobby"); return try bob.say("in the room") }()
            #expect((roomMessage.id ?? 0) > (reply.id ?? 0))
        }
    }

    @Test func theRecipientMustBeKnownAndTheTextValid() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            #expect(try alice.request(["type": "say", "to": "nobody", "text": "hello?"]).code == "no_such_user")
            #expect(try alice.request(["type": "say", "to": "bad name!", "text": "hello?"]).code == "no_such_user")
            #expect(try alice.request(["type": "say", "to": "alice", "room": "lobby", "text": "x"]).code == "bad_request")
            #expect(try alice.request(["type": "say", "to": "alice", "text": "   "]).code == "bad_request")
            #expect(try alice.request(["type": "say", "to": "alice", "text": String(repeating: "x", count: 2001)]).code == "too_long")
            // A user who logged in once is known, online or not; a message to oneself comes once.
            let bob = try server.user("bob")
            bob.send(#"{"type":"quit"}"#)
            _ = try bob.readUntilClosed()
            #expect(try alice.request(["type": "say", "to": "bob", "text": "for later"]).type == "message")
            let note = try alice.request(["type": "say", "to": "alice", "text": "note to self"])
            #expect(note.to == "alice")
            alice.send(#"{"type":"ping","id":"after"}"#)
            let next = try alice.next()
            #expect(next.type == "pong", "delivered once: \(next)")
        }
    }

    @Test func theRateLimitCoversDirectMessages() async throws {
        try await withServer({ $0.limits.rate = .init(messagesPerSecond: 0.001, burst: 2) }) { server in
            let alice = try server.user("alice")
            _ = try server.user("bob")
            #expect(try alice.request(["type": "say", "to": "bob", "text": "1"]).type == "message")
            #expect(try alice.request(["type": "say", "to": "bob", "text": "2"]).type == "message")
            #expect(try alice.request(["type": "say", "to": "bob", "text": "3"]).code == "rate_limited")
        }
    }

    @Test func storedDirectMessagesAreForAccountsOnly() async throws {
        try await withServer { server in
            let alice = try AccountTests.registered("alice", on: server)
            let bob = try server.user("bob")
            var ids: [Int64] = []
            for index in 0..<5 {
                let sender = index.isMultiple(of: 2) ? alice : bob
                ids.append(try sender.request(["type": "say", "to": index.isMultiple(of: 2) ? "bob" : "alice", "text": "dm \(index)"]).id ?? 0)
            }
            _ = try AccountTests.registered("carol", on: server).request(["type": "say", "to": "bob", "text": "not alice's"])

            let page = try alice.request(["type": "history", "with": "BOB", "limit": 3])
            #expect(page.type == "history")
            #expect(page.value["with"]?.stringValue == "bob")
            #expect(page.messageIDs == Array(ids.suffix(3)))
            #expect(page.more == true)
            #expect(page.messages.map { $0["to"]?.stringValue } == ["bob", "alice", "bob"])
            #expect(page.messages.allSatisfy { $0["room"] == nil })
            let older = try alice.request(["type": "history", "with": "bob", "before": ids[2]])
            #expect(older.messageIDs == Array(ids.prefix(2)))
            #expect(older.more == false)
            let newer = try alice.request(["type": "history", "with": "bob", "after": ids[3]])
            #expect(newer.messageIDs == [ids[4]])

            let conversations = try alice.request(["type": "conversations"])
            let rows = conversations.value["conversations"]?.arrayValue ?? []
            #expect(rows.count == 1)
            #expect(rows.first?["with"]?.stringValue == "bob")
            #expect(rows.first?["last_id"]?.integerValue == ids[4])

            #expect(try bob.request(["type": "history", "with": "alice"]).code == "account_required")
            #expect(try bob.request(["type": "conversations"]).code == "account_required")
            #expect(try bob.request(["type": "search", "query": "dm", "with": "alice"]).code == "account_required")
            #expect(try alice.request(["type": "history", "with": "nobody"]).code == "no_such_user")
        }
    }

    @Test func searchFindsRoomsAndOnlyOnesOwnDirectMessages() async throws {
        try await withServer { server in
            let alice = try AccountTests.registered("alice", on: server)
            let bob = try AccountTests.registered("bob", on: server)
            let carol = try server.user("carol")
            for client in [alice, bob, carol] { try client.join("lobby") }
            try alice.join("ops")
            let roomHit = try alice.say("deploy on friday", in: "ops")
            _ = try bob.say("deploy tomorrow", in: "lobby")
            let privateHit = try bob.request(["type": "say", "to": "alice", "text": "secret deploy plan"])
            let othersDM = try bob.request(["type": "say", "to": "carol", "text": "another deploy secret"])

            let all = try alice.request(["type": "search", "query": "deploy"])
            #expect(all.type == "search")
            let found = all.messageIDs
            #expect(found.contains(roomHit.id ?? -1) && found.contains(privateHit.id ?? -1))
            #expect(!found.contains(othersDM.id ?? -1), "never the direct messages of others")
            #expect(found == found.sorted(by: >), "newest first")
            #expect(all.messages.first { $0["id"]?.integerValue == privateHit.id }?["to"]?.stringValue == "alice")

            let guestView = try carol.request(["type": "search", "query": "deploy"])
            #expect(guestView.messages.allSatisfy { $0["to"] == nil }, "a guest searches rooms only")

            let inOps = try alice.request(["type": "search", "query": "deploy", "room": "#OPS"])
            #expect(inOps.messageIDs == [roomHit.id ?? -1])
            let fromBob = try alice.request(["type": "search", "query": "deploy", "from": "bob"])
            #expect(Set(fromBob.messages.compactMap { $0["from"]?.stringValue }) == ["bob"])
            let withBob = try alice.request(["type": "search", "query": "deploy", "with": "bob"])
            #expect(withBob.messageIDs == [privateHit.id ?? -1])
            let limited = try alice.request(["type": "search", "query": "deploy", "limit": 1])
            #expect(limited.messageIDs.count == 1 && limited.more == true)

            #expect(try alice.request(["type": "search", "query": "deploy", "room": "nowhere"]).code == "no_such_room")
            #expect(try alice.request(["type": "search", "query": "deploy", "room": "Not A Room!"]).code == "invalid_room")
            #expect(try alice.request(["type": "search", "query": "deploy", "with": "nobody"]).code == "no_such_user")
            let malformed = try alice.request(["type": "search", "query": "deploy AND (friday"])
            #expect(malformed.code == "bad_request")
            #expect(malformed.value["message"]?.stringValue?.isEmpty == false)
        }
    }

    @Test func directMessagesAreNotRooms() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            _ = try server.user("bob")
            _ = try alice.request(["type": "say", "to": "bob", "text": "private"])
            let rooms = try alice.request(["type": "rooms"])
            let names = (rooms.value["rooms"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            #expect(names == ["lobby"])
        }
    }
}
