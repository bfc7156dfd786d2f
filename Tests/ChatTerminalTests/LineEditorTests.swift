import ChatTerminal
import Testing

@Suite struct KeyDecoderTests {
    @Test func decodesCharactersControlKeysAndEscapeSequences() {
        var decoder = KeyDecoder()
        #expect(decoder.decode(Array("hé😀".utf8)) == [.character("h"), .character("é"), .character("😀")])
        #expect(decoder.decode([0x01, 0x05, 0x15, 0x17, 0x03, 0x7F, 0x0D]) ==
                [.control("a"), .control("e"), .control("u"), .control("w"), .control("c"), .backspace, .enter])
        #expect(decoder.decode(Array("\u{1B}[A\u{1B}[B\u{1B}[C\u{1B}[D\u{1B}[H\u{1B}[F\u{1B}[3~\u{1B}OH\u{1B}[1~\u{1B}[4~".utf8)) ==
                [.up, .down, .right, .left, .home, .end, .delete, .home, .home, .end])
    }

    @Test func keepsPartialInputUntilItCompletes() {
        var decoder = KeyDecoder()
        let bytes = Array("é\u{1B}[D".utf8)
        #expect(decoder.decode([bytes[0]]) == [])
        #expect(decoder.decode([bytes[1], bytes[2]]) == [.character("é")])
        #expect(decoder.decode([bytes[3]]) == [])
        #expect(decoder.decode([bytes[4]]) == [.left])
        #expect(decoder.decode([0x0D, 0x0A]) == [.enter], "CR LF is one Enter")
    }
}

@Suite struct LineEditorTests {
    func type(_ text: String, into editor: inout LineEditor) {
        for character in text { _ = editor.handle(.character(character)) }
    }

    @Test func editsAtTheCursor() {
        var editor = LineEditor()
        type("hello world", into: &editor)
        _ = editor.handle(.home)
        _ = editor.handle(.right)
        _ = editor.handle(.delete)
        #expect(editor.line == "hllo world")
        _ = editor.handle(.control("e"))
        _ = editor.handle(.control("w"))
        #expect(editor.line == "hllo ")
        _ = editor.handle(.backspace)
        type("!", into: &editor)
        #expect(editor.line == "hllo!")
        _ = editor.handle(.left)
        _ = editor.handle(.control("k"))
        #expect(editor.line == "hllo")
        _ = editor.handle(.control("u"))
        #expect(editor.line.isEmpty)
        #expect(editor.handle(.backspace) == .ignored)
    }

    @Test func enterSubmitsAndHistoryBrowsesEarlierLines() {
        var editor = LineEditor()
        type("first", into: &editor)
        #expect(editor.handle(.enter) == .submitted("first"))
        type("second", into: &editor)
        #expect(editor.handle(.enter) == .submitted("second"))
        type("draft", into: &editor)
        _ = editor.handle(.up)
        #expect(editor.line == "second")
        _ = editor.handle(.up)
        #expect(editor.line == "first")
        _ = editor.handle(.up)
        #expect(editor.line == "first")
        _ = editor.handle(.down)
        #expect(editor.line == "second")
        _ = editor.handle(.down)
        #expect(editor.line == "draft", "the line being typed comes back")
    }

    @Test func ctrlCAndCtrlDOnAnEmptyLineInterrupt() {
        var editor = LineEditor()
        #expect(editor.handle(.control("d")) == .interrupted)
        type("x", into: &editor)
        #expect(editor.handle(.control("c")) == .interrupted)
    }

    @Test func aLongLineScrollsToKeepTheCursorVisible() {
        var editor = LineEditor()
        type(String(repeating: "a", count: 50) + "XYZ", into: &editor)
        let view = editor.visible(width: 20)
        #expect(view.text.hasSuffix("XYZ"))
        #expect(view.cursorColumn < 20)
        _ = editor.handle(.home)
        let start = editor.visible(width: 20)
        #expect(start.cursorColumn == 0)
        #expect(start.text.hasPrefix("aaa"))
        #expect(displayWidth("漢") == 2)
    }
}
