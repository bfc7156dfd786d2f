import ChatProtocol
import NIOCore
import Testing

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}} "#)
        #expect(value["a"] == .array([.integer(1), .integer(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null]))
        #expect(value["b"]?["c"] == .string("d\né😀"))
    }

    @Test func integersBeyond64BitsBecomeDoubles() throws {
        #expect(try JSONParser.parse("9223372036854775807") == .integer(.max))
        #expect(try JSONParser.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
    }

    @Test(arguments: [
        ("", "unexpected end of input"), ("{", "unexpected end"), ("{\"a\" 1}", "expected ':'"),
        ("[1,]", "unexpected character ']'"), ("01", "unexpected text after"), ("\"\\x\"", "invalid escape"),
        ("\"\\ud800\"", "unpaired surrogate"), ("\"a\u{01}\"", "control character"), ("tru", "unexpected end"),
        ("nul", "unexpected end"), ("-", "invalid number"), ("1.", "invalid number"), ("{} {}", "unexpected text after"),
    ])
    func rejectsMalformedInputWithAReason(text: String, reason: String) {
        #expect {
            try JSONParser.parse(text)
        } throws: { error in
            (error as? JSONParseError)?.reason.contains(reason) == true
        }
    }

    @Test func reportsLineAndColumn() {
        #expect {
            try JSONParser.parse("{\n  \"a\": 1,\n  \"b\": ?\n}")
        } throws: { error in
            let error = error as? JSONParseError
            return error?.line == 3 && error?.column == 8
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(String(repeating: "[", count: 100_000)) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(String(repeating: "{\"a\":", count: 100_000)) }
    }

    @Test(arguments: [[0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] as [[UInt8]])
    func invalidUTF8IsRejected(bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22] + bytes + [0x22]) }
    }

    @Test func writerEscapesWhatJSONRequiresAndRoundTrips() throws {
        let text = "quote \" backslash \\ newline \n tab \t bell \u{07} é 😀 </script>"
        var buffer = ByteBuffer()
        buffer.writeJSONString(text)
        let written = String(buffer: buffer)
        #expect(written.contains("\\u0007"))
        #expect(try JSONParser.parse(written) == .string(text))
    }

    @Test func decimalsAreWrittenExactly() {
        for value: Int64 in [0, 7, -7, 1234567890, .max, .min] {
            var buffer = ByteBuffer()
            buffer.writeDecimal(value)
            #expect(String(buffer: buffer) == String(value))
        }
    }
}
