import ChatProtocol
import NIOCore
import Testing

@Suite struct FrameTests {
    func decode(_ line: String) throws(ProtocolError) -> ClientFrame {
        let bytes = Array(line.utf8)
        let result = bytes.withUnsafeBufferPointer { pointer in
            Result { () throws(ProtocolError) -> ClientFrame in try ClientFrame.decode(line: pointer) }
        }
        return try result.get()
    }

    @Test func decodesEveryRequest() throws {
        #expect(try decode(#"{"type":"login","name":"a","password":"p","id":1}"#) == ClientFrame(id: .integer(1), request: .login(name: "a", password: "p", accountPassword: nil)))
        #expect(try decode(#"{"type":"login","name":"a","account_password":"secret99"}"#).request == .login(name: "a", password: nil, accountPassword: "secret99"))
        #expect(try decode(#"{"type":"register","password":"secret99","id":2}"#).request == .register(password: "secret99"))
        #expect(try decode(#"{"type":"join","room":"r","after":5}"#).request == .join(room: "r", replay: .after(5)))
        #expect(try decode(#"{"type":"join","room":"r","history":5}"#).request == .join(room: "r", replay: .latest(5)))
        #expect(try decode(#"{"type":"join","room":"r"}"#).request == .join(room: "r", replay: .missed))
        #expect(try decode(#"{"type":"say","room":"r","text":"t","kind":"action","id":"x"}"#) == ClientFrame(id: .string("x"), request: .say(.room("r"), text: "t", kind: .action)))
        #expect(try decode(#"{"type":"say","to":"Bob","text":"t"}"#).request == .say(.user("Bob"), text: "t", kind: .text))
        #expect(try decode(#"{"type":"say","room":"r","text":"t","nonce":"n-1"}"#).request == .say(.room("r"), text: "t", kind: .text, nonce: "n-1"))
        for bad in [#""""#, "\"" + String(repeating: "n", count: 65) + "\"", "7"] {
            #expect(throws: ProtocolError.self, "nonce \(bad)") { try decode(#"{"type":"say","room":"r","text":"t","nonce":"# + bad + "}") }
        }
        #expect(try decode(#"{"type":"history","room":"r","before":9,"limit":3}"#).request == .history(.room("r"), page: .before(9), limit: 3))
        #expect(try decode(#"{"type":"history","with":"bob","before":9}"#).request == .history(.user("bob"), page: .before(9), limit: nil))
        #expect(try decode(#"{"type":"conversations"}"#).request == .conversations)
        #expect(try decode(#"{"type":"search","query":"a b","room":"r","from":"x","limit":5}"#).request
                == .search(SearchRequest(query: "a b", room: "r", from: "x", limit: 5)))
        #expect(try decode(#"{"type":"search","query":"a","with":"bob"}"#).request == .search(SearchRequest(query: "a", with: "bob")))
        #expect(try decode(#"{"type":"history","room":"r","after":9}"#).request == .history(.room("r"), page: .after(9), limit: nil))
        #expect(try decode(#"{"type":"quit","reason":"bye","unknown":[1]}"#).request == .quit(reason: "bye"))
        #expect(try decode(#"{"type":"rooms"}"#).request == .rooms)
        #expect(try decode(#"{"type":"who","room":"r"}"#).request == .who(room: "r"))
    }

    @Test(arguments: [
        (#"{"type":"join","room":"r","after":1,"history":1,"id":4}"#, ErrorCode.badRequest),
        (#"{"type":"say","room":"r","id":4}"#, .badRequest),
        (#"{"type":"say","room":"r","text":7,"id":4}"#, .badRequest),
        (#"{"type":"history","room":"r","limit":0,"id":4}"#, .badRequest),
        (#"{"type":"say","room":"r","to":"bob","text":"t","id":4}"#, .badRequest),
        (#"{"type":"say","text":"t","id":4}"#, .badRequest),
        (#"{"type":"history","room":"r","with":"bob","id":4}"#, .badRequest),
        (#"{"type":"search","id":4}"#, .badRequest),
        (#"{"type":"search","query":"x","room":"r","with":"bob","id":4}"#, .badRequest),
        (#"{"type":"register","id":4}"#, .badRequest),
        (#"{"type":"fly","id":4}"#, .unknownType),
    ])
    func errorsKeepTheRequestID(line: String, code: ErrorCode) {
        #expect {
            try decode(line)
        } throws: { error in
            let error = error as? ProtocolError
            return error?.code == code && error?.re == .integer(4)
        }
    }

    @Test func namesFollowTheRules() {
        #expect(Names.isValidUserName("Alice_1-x", maximumLength: 32))
        #expect(!Names.isValidUserName("-alice", maximumLength: 32))
        #expect(!Names.isValidUserName("al ice", maximumLength: 32))
        #expect(!Names.isValidUserName(String(repeating: "a", count: 33), maximumLength: 32))
        #expect(Names.canonicalRoom("#Lobby") == "lobby")
        #expect(Names.canonicalRoom("dev-team_2") == "dev-team_2")
        #expect(Names.canonicalRoom("##x") == nil)
        #expect(Names.canonicalRoom("") == nil)
        #expect(Names.canonicalRoom(String(repeating: "r", count: 33)) == nil)
    }

    @Test func textRules() {
        #expect(Names.problem(withText: "hi\tthere\nok", maximumBytes: 100) == nil)
        #expect(Names.problem(withText: " \n ", maximumBytes: 100) == .blank)
        #expect(Names.problem(withText: "\u{1B}[31m", maximumBytes: 100) == .controlCharacter)
        #expect(Names.problem(withText: "\u{9F}", maximumBytes: 100) == .controlCharacter)
        #expect(Names.problem(withText: "ééé", maximumBytes: 5) == .tooLong(limit: 5))
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        #expect(Timestamp.string(0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.string(1_795_253_400_125) == "2026-11-21T09:30:00.125Z")
        #expect(Timestamp.string(951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp.string(-1) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.days(year: 2026, month: 11, day: 21) * 86_400_000 + 34_200_125 == 1_795_253_400_125)
    }

    @Test func serverFramesMatchTheContract() throws {
        var buffer = ByteBuffer()
        let message = ChatMessage(id: 1235, timestamp: 1_795_253_400_125, room: "lobby", from: "alice", kind: .text, text: "hello")
        ServerFrame.message(message, re: .integer(5), into: &buffer)
        let frame = try JSONParser.parse(String(buffer: buffer).trimmingSuffix("\n"))
        #expect(frame == .object([
            "type": .string("message"), "id": .integer(1235), "re": .integer(5), "ts": .string("2026-11-21T09:30:00.125Z"),
            "room": .string("lobby"), "from": .string("alice"), "kind": .string("text"), "text": .string("hello"),
        ]))
        #expect(String(buffer: buffer).hasSuffix("}\n"))
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
