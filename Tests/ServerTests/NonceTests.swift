import ChatProtocol
import ChatTestSupport
import Foundation
import GRDB
import Storage
import Testing

/// PROTOCOL.md, Sending exactly once: a `say` with a nonce its user already had committed in the
/// last 24 hours stores nothing and is answered with that message.
@Suite struct NonceTests {
    @Test func aRepeatedNonceIsAnsweredWithTheStoredMessageAndReachesNobodyAgain() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            let bob = try server.user("bob")
            try bob.join("lobby")
            _ = try alice.next("presence")
            let first = try alice.request(["type": "say", "room": "lobby", "text": "once", "nonce": "n-1"], id: "first")
            #expect(first.type == "message" && first.re == .string("first"))
            let again = try alice.request(["type": "say", "room": "lobby", "text": "once (typed again)", "nonce": "n-1"], id: "second")
            #expect(again.type == "message" && again.re == .string("second"))
            #expect(again.id == first.id && again["ts"] == first["ts"])
            #expect(again.text == "once", "the stored message, not the resent text")
            // Bob got the message once: the next thing he receives is what Alice says next.
            #expect(try bob.next("message").id == first.id)
            let next = try alice.say("after", id: "third")
            #expect(try bob.next("message").id == next.id)
            let history = try bob.request(["type": "history", "room": "lobby", "after": 0, "limit": 50])
            #expect(history.messages.compactMap { $0["text"]?.stringValue } == ["once", "after"])
        }
    }

    /// The case the nonce exists for: the connection drops right after the `say` (before, or
    /// after, the commit: the client cannot tell); the client reconnects and sends it again.
    @Test func aResendAfterADroppedConnectionIsStoredOnce() async throws {
        try await withServer { server in
            for round in 0..<5 {
                let nonce = "drop-\(round)"
                do {
                    let alice = try server.user("alice\(round)")
                    try alice.join("lobby")
                    alice.send(["type": "say", "room": "lobby", "text": "said in round \(round)", "nonce": nonce, "id": 1])
                } // the connection closes here, its acknowledgement unread
                // The name is free once the server has noticed the close.
                var again = try server.client()
                try await waitUntil("alice\(round)'s name is free again") {
                    if try again.loginAnswer("alice\(round)", accountPassword: nil).type == "welcome" { return true }
                    again = try server.client()
                    return false
                }
                try again.join("lobby", extra: ["history": 0])
                let answer = try again.request(["type": "say", "room": "lobby", "text": "said in round \(round)", "nonce": nonce])
                #expect(answer.type == "message" && answer.text == "said in round \(round)")
                var stored: [ChatMessage] = []
                try server.database.forEachMessage { if $0.text == "said in round \(round)" { stored.append($0) } }
                #expect(stored.count == 1, "round \(round): stored once, whether or not the first try had committed")
                #expect(stored.first?.id == answer.id)
            }
        }
    }

    @Test func directMessagesTakeNoncesToo() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            let bob = try server.user("bob")
            let first = try alice.request(["type": "say", "to": "bob", "text": "psst", "nonce": "dm"])
            #expect(try bob.next("message").id == first.id)
            let again = try alice.request(["type": "say", "to": "bob", "text": "psst", "nonce": "dm"])
            #expect(again.id == first.id && again.to == "bob")
            let ping = try bob.request(["type": "ping"])
            #expect(ping.type == "pong", "bob got nothing in between")
        }
    }

    @Test func aNonceNamesOneMessage() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            try alice.join("dev")
            _ = try alice.request(["type": "say", "room": "lobby", "text": "here", "nonce": "k"])
            let elsewhere = try alice.request(["type": "say", "room": "dev", "text": "there", "nonce": "k"])
            #expect(elsewhere.code == "bad_request")
            // Another user's nonces are their own.
            let bob = try server.user("bob")
            try bob.join("lobby")
            let bobs = try bob.request(["type": "say", "room": "lobby", "text": "bob's", "nonce": "k"])
            #expect(bobs.type == "message" && bobs.text == "bob's")
            for bad: Any in ["", String(repeating: "n", count: 65), 5] {
                #expect(try alice.request(["type": "say", "room": "lobby", "text": "x", "nonce": bad]).code == "bad_request")
            }
        }
    }

    /// After 24 hours a nonce names nothing: the message is stored anew.
    @Test func aNonceOlderThanADayIsFree() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            let first = try alice.request(["type": "say", "room": "lobby", "text": "yesterday", "nonce": "daily"])
            let queue = try DatabaseQueue(path: server.folder + "/chat.sqlite")
            try queue.write { db in
                try db.execute(sql: "UPDATE messages SET ts = ts - ? WHERE id = ?", arguments: [nonceLifetime + 1000, first.id])
            }
            try queue.close()
            let today = try alice.request(["type": "say", "room": "lobby", "text": "today", "nonce": "daily"])
            #expect(today.type == "message" && today.id != first.id && today.text == "today")
            let again = try alice.request(["type": "say", "room": "lobby", "text": "today", "nonce": "daily"])
            #expect(again.id == today.id)
        }
    }
}
