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
