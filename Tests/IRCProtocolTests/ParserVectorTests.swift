import Foundation
import IRCProtocol
import Testing

/// ircdocs' public IRC parser test vectors (github.com/ircdocs/parser-tests, CC0), converted
/// from their YAML to JSON unchanged in `Vectors/`: every one must pass.
@Suite struct ParserVectorTests {
    static func vectors(_ name: String) throws -> [[String: Any]] {
        let url = URL(filePath: #filePath).deletingLastPathComponent().appending(path: "Vectors/\(name).json")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return document["tests"] as! [[String: Any]]
    }

    static func expected(_ atoms: [String: Any]) -> IRCMessage {
        let tags = (atoms["tags"] as? [String: Any] ?? [:]).map { ($0.key, $0.value as? String ?? "") }
        return IRCMessage(tags: tags, source: atoms["source"] as? String, command: atoms["verb"] as! String,
                          parameters: atoms["params"] as? [String] ?? [])
    }

    @Test func msgSplit() throws {
        let tests = try Self.vectors("msg-split")
        #expect(tests.count == 35)
        for test in tests {
            let input = test["input"] as! String
            let parsed = try IRCMessage.parse(input)
            let expected = Self.expected(test["atoms"] as! [String: Any])
            #expect(parsed == expected, "\(input)")
        }
    }

    @Test func msgJoin() throws {
        let tests = try Self.vectors("msg-join")
        #expect(tests.count == 17)
        for test in tests {
            let message = Self.expected(test["atoms"] as! [String: Any])
            let matches = test["matches"] as! [String]
            let line = message.serialized()
            #expect(matches.contains(line), "\(test["desc"] ?? ""): \(line) is none of \(matches)")
            #expect(try IRCMessage.parse(line) == message, "it parses back")
        }
    }

    @Test func userhostSplit() throws {
        let tests = try Self.vectors("userhost-split")
        #expect(tests.count == 9)
        for test in tests {
            let atoms = test["atoms"] as! [String: String]
            let split = IRCUserHost(parsing: test["source"] as! String)
            #expect(split == IRCUserHost(nick: atoms["nick"] ?? "", user: atoms["user"] ?? "", host: atoms["host"] ?? ""), "\(test["source"]!)")
        }
    }

    @Test func hostileLinesNeverCrash() throws {
        for line in ["", " ", "@", ":", "@ :", "@a :b", ":\u{301} x", "CMD \u{0} :\r\n", String(repeating: " ", count: 10_000) + "X",
                     "@" + String(repeating: "a=\\", count: 5_000) + " X", "X " + String(repeating: "p ", count: 10_000)] {
            _ = try? IRCMessage.parse(line)
        }
        #expect(throws: IRCMessage.ParseError.noCommand) { try IRCMessage.parse("   ") }
        #expect(throws: IRCMessage.ParseError.emptyTagsOrSource) { try IRCMessage.parse("@ PRIVMSG x") }
        // A space followed by a combining mark is one Character but still separates.
        #expect(try IRCMessage.parse("PRIVMSG #a \u{301}b").parameters == ["#a", "\u{301}b"])
        #expect(IRCMessage(command: "PRIVMSG", parameters: ["#a", "x \u{301}y"]).serialized() == "PRIVMSG #a :x \u{301}y")
    }
}

/// Inputs the fuzzer (Fuzz/, fuzz-irc) found, kept as tests.
@Suite struct IRCFuzzRegressionTests {
    @Test func aTagWithoutANameIsDropped() throws {
        // Fuzz/regressions/irc/tag-without-name: `=` alone between semicolons parsed as a tag
        // named "", which serialized to nothing and did not round-trip.
        let message = try IRCMessage.parse("@tagtag2value1;tag2;ve1'@f2;k;= vo")
        #expect(message.tags == ["tagtag2value1": "", "tag2": "", "ve1'@f2": "", "k": ""])
        #expect(try IRCMessage.parse(message.serialized()) == message)
    }

    @Test func aCommandMustBeLettersOrDigits() throws {
        // Fuzz/regressions/irc/command-with-at: " @sedf" parsed with the command "@sedf", which
        // serialized as a line of tags without a command.
        #expect(throws: IRCMessage.ParseError.invalidCommand) { try IRCMessage.parse(" @sedf") }
        #expect(throws: IRCMessage.ParseError.invalidCommand) { try IRCMessage.parse("PRIV\u{e9}MSG x") }
        #expect(try IRCMessage.parse("  privmsg x").command == "privmsg")
    }
}

/// Replays the IRC fuzz target's seeds and regressions (Fuzz/corpus/irc, Fuzz/regressions/irc)
/// through the same checks in every plain `swift test` (docs/fuzzing.md).
@Suite struct IRCFuzzCorpusTests {
    @Test func everyInputParsesAndRoundTripsOrIsRefused() throws {
        let fuzz = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appending(path: "Fuzz")
        var inputs = 0
        var parsed = 0
        for folder in ["corpus/irc", "regressions/irc"] {
            let directory = fuzz.appending(path: folder)
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() where !name.hasPrefix(".") {
                let bytes = Array(try Data(contentsOf: directory.appending(path: name)))
                inputs += 1
                guard let message = try? IRCMessage.parse(bytes: bytes) else { continue }
                parsed += 1
                if String(validating: bytes, as: UTF8.self) != nil, !bytes.contains(where: { $0 == 0 || $0 == 13 || $0 == 10 }),
                   message.parameters.dropLast().allSatisfy({ !$0.isEmpty && !$0.hasPrefix(":") }) {
                    #expect(try IRCMessage.parse(message.serialized()) == message, "\(folder)/\(name)")
                }
            }
        }
        #expect(inputs >= 35)
        #expect(parsed >= 30)
    }
}
