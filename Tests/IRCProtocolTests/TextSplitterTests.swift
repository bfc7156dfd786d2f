import IRCProtocol
import Testing

@Suite struct TextSplitterTests {
    @Test func shortTextIsOnePiece() {
        #expect(IRCTextSplitter.split("hello world", maxBytes: 400) == ["hello world"])
    }

    @Test func linesBecomeMessagesAndEmptyOnesAreDropped() {
        #expect(IRCTextSplitter.split("one\ntwo\r\nthree\r\rfour\n\n", maxBytes: 400) == ["one", "two", "three", "four"])
        #expect(IRCTextSplitter.split("\n\r\n", maxBytes: 400) == [])
        #expect(IRCTextSplitter.split("a\0b", maxBytes: 400) == ["ab"])
    }

    @Test func longLinesBreakBetweenWordsAndKeepEveryByte() {
        let words = (0..<200).map { "word\($0)" }
        let text = words.joined(separator: " ")
        let pieces = IRCTextSplitter.split(text, maxBytes: 100)
        #expect(pieces.allSatisfy { $0.utf8.count <= 100 })
        #expect(pieces.count > 1)
        #expect(pieces.joined(separator: " ") == text, "only the spaces broken at are gone")
        #expect(pieces.allSatisfy { !$0.hasPrefix(" ") && !$0.hasSuffix(" ") })
    }

    @Test func neverCutsInsideACharacter() {
        let text = String(repeating: "é👩‍👩‍👧", count: 300)
        for limit in [4, 7, 13, 64, 100, 449] {
            let pieces = IRCTextSplitter.split(text, maxBytes: limit)
            #expect(pieces.allSatisfy { $0.utf8.count <= limit && !$0.isEmpty }, "limit \(limit)")
            #expect(pieces.joined() == text, "limit \(limit)")
            if limit >= 25 {
                // The family emoji is 25 bytes: from there on every piece holds whole characters.
                #expect(pieces.allSatisfy { String($0).count == $0.count }, "limit \(limit)")
            }
        }
    }

    @Test func aCharacterLongerThanAPieceIsCutBetweenScalars() {
        let zalgo = "a" + String(repeating: "\u{301}", count: 300)   // one grapheme, 601 bytes
        let pieces = IRCTextSplitter.split(zalgo, maxBytes: 100)
        #expect(pieces.allSatisfy { $0.utf8.count <= 100 })
        #expect(pieces.joined().unicodeScalars.count == zalgo.unicodeScalars.count)
    }

    @Test func theBudgetLeavesRoomForTheLine() {
        let budget = IRCTextSplitter.textBudget(source: "alice!alice@chat", command: "PRIVMSG", target: "#lobby")
        // A text with a space, so it goes out as a trailing parameter (with its ':').
        let text = "x " + String(repeating: "x", count: budget - 2)
        let line = IRCMessage(source: "alice!alice@chat", command: "PRIVMSG", parameters: ["#lobby", text]).serialized() + "\r\n"
        #expect(line.utf8.count == IRCTextSplitter.maximumLineBytes)
    }
}
