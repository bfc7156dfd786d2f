import Foundation
import Testing

@Suite struct MessageTests {
    @Test func aMessageGoesToEveryMemberAndTheSendersCopyIsTheAck() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            let bob = try server.user("bob")
            try bob.join("lobby")
            _ = try alice.next("presence")
            let ack = try alice.say("hello *world*", id: "m1")
            #expect(ack.re == .string("m1"))
            #expect(ack["from"]?.stringValue == "alice")
            #expect(ack["kind"]?.stringValue == "text")
            let copy = try bob.next("message")
            #expect(copy.re == nil)
            #expect(copy.id == ack.id)
            #expect(copy.text == "hello *world*")
            #expect(copy["ts"] == ack["ts"])
            // The timestamp is RFC 3339 UTC with milliseconds.
            let ts = try #require(copy["ts"]?.stringValue)
            #expect(ts.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
        }
    }

    @Test func actionsKeepTheirKind() async throws {
        try await withServer { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            alice.send(#"{"type":"say","room":"lobby","text":"waves","kind":"action","id":1}"#)
            #expect(try alice.next("message")["kind"]?.stringValue == "action")
            alice.send(#"{"type":"say","room":"lobby","text":"x","kind":"shout","id":2}"#)
            #expect(try alice.next().code == "bad_request")
        }
    }

    @Test func textIsValidated() async throws {
        try await withServer({ $0.limits.maxMessageBytes = 10 }) { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            let cases: [(String, String)] = [
                ("", "bad_request"), ("   \n\t ", "bad_request"), ("bell\u{07}", "bad_request"),
                ("del\u{7F}", "bad_request"), ("c1\u{85}", "bad_request"), ("12345678901", "too_long"),
                ("ééééé√", "too_long"),
            ]
            for (text, code) in cases {
                alice.send(["type": "say", "room": "lobby", "text": text, "id": 9])
                let answer = try alice.next()
                #expect(answer.code == code, "\(text.debugDescription) → \(answer)")
                #expect(answer.re == .integer(9))
            }
            try alice.say("line\none\tx")
            #expect(try server.database.countMessages() == 1)
        }
    }

    @Test func theRateLimitRefusesWithoutStoring() async throws {
        try await withServer({ $0.limits.rate = .init(messagesPerSecond: 0.001, burst: 3) }) { server in
            let alice = try server.user("alice")
            try alice.join("lobby")
            for index in 0..<3 { try alice.say("ok \(index)") }
            alice.send(#"{"type":"say","room":"lobby","text":"one too many","id":"x"}"#)
            let refused = try alice.next()
            #expect(refused.code == "rate_limited")
            #expect(refused.re == .string("x"))
            #expect(try server.database.countMessages() == 3)
        }
    }

    @Test func everyMemberSeesOneTotalOrderUnderConcurrentSenders() async throws {
        try await withServer { server in
            let senders = try (0..<4).map { index in
                let client = try server.user("sender\(index)")
                try client.join("lobby")
                return client
            }
            let listeners = try (0..<3).map { index in
                let client = try server.user("listener\(index)")
                try client.join("lobby")
                return client
            }
            let perSender = 50
            await withTaskGroup(of: Void.self) { group in
                for (index, sender) in senders.enumerated() {
                    group.addTask {
                        for number in 0..<perSender {
                            sender.send(["type": "say", "room": "lobby", "text": "s\(index) m\(number)"])
                        }
                    }
                }
            }
            let total = senders.count * perSender
            var sequences: [[Int64]] = []
            for client in senders + listeners {
                var ids: [Int64] = []
                while ids.count < total {
                    let frame = try client.next("message")
                    ids.append(try #require(frame.id))
                }
                sequences.append(ids)
            }
            #expect(sequences.allSatisfy { $0 == sequences[0] })
            #expect(sequences[0] == sequences[0].sorted())
            #expect(Set(sequences[0]).count == total)
            #expect(try server.database.countMessages() == total)
        }
    }
}
