import ChatTestSupport
import Foundation
import Testing

@Suite struct FramingTests {
    @Test func malformedFramesGetBadRequestAndTheConnectionStaysOpen() async throws {
        try await withServer { server in
            let client = try server.user("alice")
            let bad = [
                "not json", "[1,2,3]", "\"text\"", "{\"type\":3}", "{\"no_type\":1}",
                "{\"type\":\"join\"}", "{\"type\":\"join\",\"room\":5}", "{\"type\":\"say\",\"room\":\"lobby\"}",
                "{\"type\":\"join\",\"room\":\"lobby\",\"after\":1,\"history\":2}",
                "{\"type\":\"join\",\"room\":\"lobby\",\"history\":-1}",
                "{\"type\":\"ping\",\"id\":[1]}", "{\"type\":\"ping\",\"id\":\"\(String(repeating: "x", count: 65))\"}",
                String(repeating: "[", count: 10_000),
                "{\"type\":\"ping\"} trailing",
            ]
            for line in bad {
                client.send(line)
                let answer = try client.next()
                #expect(answer.type == "error" && answer.code == "bad_request", "\(line.prefix(40)) → \(answer)")
            }
            client.send(#"{"type":"ping","id":"still-open"}"#)
            #expect(try client.next().re == .string("still-open"))
        }
    }

    @Test func invalidUTF8IsABadRequest() async throws {
        try await withServer { server in
            let client = try server.user("alice")
            client.send(bytes: Array(#"{"type":"say","room":"lobby","text":""#.utf8) + [0xC3, 0x28] + Array("\"}\n".utf8))
            #expect(try client.next().code == "bad_request")
            client.send(bytes: [0xFF, 0xFE, 0x0A])
            #expect(try client.next().code == "bad_request")
            client.send(#"{"type":"ping","id":1}"#)
            #expect(try client.next().type == "pong")
        }
    }

    @Test func unknownTypesAreReportedWithTheirId() async throws {
        try await withServer { server in
            let client = try server.user("alice")
            client.send(#"{"type":"dance","id":"d1","extra":true}"#)
            let answer = try client.next()
            #expect(answer.code == "unknown_type")
            #expect(answer.re == .string("d1"))
        }
    }

    @Test func anOverlongLineIsDiscardedAndAnsweredTooLong() async throws {
        try await withServer({ $0.limits.maxLineBytes = 1024 }) { server in
            let client = try server.user("alice")
            try client.join("lobby")
            // Over the limit, sent in pieces, with a valid frame right behind it.
            let long = #"{"type":"say","room":"lobby","text":""# + String(repeating: "a", count: 5000) + "\"}"
            client.send(bytes: Array(long.utf8.prefix(700)))
            client.send(bytes: Array(long.utf8.dropFirst(700)) + Array("\n{\"type\":\"ping\",\"id\":2}\n".utf8))
            let error = try client.next()
            #expect(error.code == "too_long")
            #expect(try client.next().type == "pong")
            // A line of exactly the limit is accepted.
            let padding = 1024 - #"{"type":"ping","id":1,"pad":""}"#.utf8.count
            client.send(#"{"type":"ping","id":1,"pad":""# + String(repeating: "p", count: padding) + "\"}")
            #expect(try client.next().type == "pong")
            // Nothing was stored from the discarded line.
            #expect(try server.database.countMessages() == 0)
        }
    }

    @Test func carriageReturnsAndBlankLinesAreIgnored() async throws {
        try await withServer { server in
            let client = try server.client()
            _ = try client.next("greeting")
            client.send(bytes: Array("\r\n   \n{\"type\":\"login\",\"name\":\"alice\",\"id\":1}\r\n\n".utf8))
            #expect(try client.next().type == "welcome")
        }
    }
}

@Suite struct RandomFrameTests {
    /// Thousands of frames built from odd values (huge and negative numbers, wrong types,
    /// control characters, cut-off and random bytes), seeded so a failure repeats: the server
    /// answers every connection's closing ping, and stays up for the next.
    @Test func randomFramesNeverBreakTheServer() async throws {
        try await withServer { server in
            var generator = SeededGenerator(seed: 7)
            let values: [Any] = [NSNull(), true, 0, -1, Int64.max, Int64.min, 1e308, 3.5, "", "lobby", "#LOBBY",
                                 String(repeating: "x", count: 100), "é", "\u{0}", "\u{1B}[31m", [Any](), [String: Any](),
                                 [1, [2]], ["a": 1], "a\nb", " "]
            let types: [Any] = ["login", "join", "leave", "say", "history", "rooms", "who", "ping", "pong", "bogus", 5, NSNull()]
            let keys = ["name", "password", "room", "text", "kind", "after", "history", "before", "limit", "id", "reason"]
            for round in 0..<40 {
                let client = try server.client()
                _ = try client.next("greeting")
                if round.isMultiple(of: 2) {
                    client.send(["type": "login", "name": "fuzz\(round)"])
                    client.send(#"{"type":"join","room":"lobby"}"#)
                }
                for _ in 0..<50 {
                    var frame: [String: Any] = ["type": types.randomElement(using: &generator)!]
                    for key in keys.shuffled(using: &generator).prefix(Int.random(in: 0...5, using: &generator)) {
                        frame[key] = values.randomElement(using: &generator)!
                    }
                    var bytes = Array(try JSONSerialization.data(withJSONObject: frame))
                    if Int.random(in: 0..<10, using: &generator) == 0 { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator))) }
                    if Int.random(in: 0..<20, using: &generator) == 0 {
                        bytes = (0..<Int.random(in: 1...50, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    }
                    client.send(bytes: bytes + [0x0A])
                }
                client.send(#"{"type":"ping","id":"alive"}"#)
                var answered = false
                while let line = try client.nextLine() {
                    if line.contains(#""re":"alive""#) {
                        answered = true
                        break
                    }
                }
                #expect(answered, "round \(round): the connection stopped answering")
            }
        }
    }
}

/// SplitMix64: a seeded generator, so random tests repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
