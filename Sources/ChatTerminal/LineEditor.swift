/// The line being typed: cursor movement, deletion by character, word and line, and a history
/// of submitted lines browsed with up/down. Pure state, so it is tested without a terminal.
public struct LineEditor: Sendable {
    public private(set) var text: [Character] = []
    /// Position of the cursor, 0...text.count.
    public private(set) var cursor = 0
    private var history: [String] = []
    private var historyIndex: Int?
    /// What was being typed before browsing the history.
    private var draft: [Character] = []
    private let historyLimit: Int

    public init(historyLimit: Int = 500) {
        self.historyLimit = historyLimit
    }

    public var line: String { String(text) }

    /// Entering a secret (a password): shown as dots and kept out of the history.
    public var isSecret = false

    /// What a key did.
    public enum Outcome: Equatable, Sendable {
        /// The line changed (or the cursor moved): redraw it.
        case edited
        /// Enter: the submitted line (the editor is empty again).
        case submitted(String)
        /// Ctrl+C, or Ctrl+D on an empty line.
        case interrupted
        /// Ctrl+L.
        case clearScreen
        /// Nothing to do.
        case ignored
    }

    public mutating func handle(_ key: Key) -> Outcome {
        switch key {
        case .character(let character):
            text.insert(character, at: cursor)
            cursor += 1
        case .enter:
            let submitted = String(text)
            if !isSecret && !submitted.trimmingWhitespace.isEmpty && history.last != submitted {
                history.append(submitted)
                if history.count > historyLimit { history.removeFirst() }
            }
            text = []
            cursor = 0
            historyIndex = nil
            return .submitted(submitted)
        case .backspace, .control("h"):
            guard cursor > 0 else { return .ignored }
            cursor -= 1
            text.remove(at: cursor)
        case .delete:
            guard cursor < text.count else { return .ignored }
            text.remove(at: cursor)
        case .left, .control("b"):
            guard cursor > 0 else { return .ignored }
            cursor -= 1
        case .right, .control("f"):
            guard cursor < text.count else { return .ignored }
            cursor += 1
        case .home, .control("a"):
            cursor = 0
        case .end, .control("e"):
            cursor = text.count
        case .control("u"):
            text.removeSubrange(0..<cursor)
            cursor = 0
        case .control("k"):
            text.removeSubrange(cursor..<text.count)
        case .control("w"):
            var start = cursor
            while start > 0, text[start - 1].isWhitespace { start -= 1 }
            while start > 0, !text[start - 1].isWhitespace { start -= 1 }
            text.removeSubrange(start..<cursor)
            cursor = start
        case .up, .control("p"):
            guard !history.isEmpty else { return .ignored }
            let index = historyIndex.map { max(0, $0 - 1) } ?? history.count - 1
            if historyIndex == nil { draft = text }
            historyIndex = index
            text = Array(history[index])
            cursor = text.count
        case .down, .control("n"):
            guard let index = historyIndex else { return .ignored }
            if index + 1 < history.count {
                historyIndex = index + 1
                text = Array(history[index + 1])
            } else {
                historyIndex = nil
                text = draft
            }
            cursor = text.count
        case .control("c"):
            return .interrupted
        case .control("d"):
            if text.isEmpty { return .interrupted }
            guard cursor < text.count else { return .ignored }
            text.remove(at: cursor)
        case .control("l"):
            return .clearScreen
        default:
            return .ignored
        }
        return .edited
    }

    /// What to show in `width` columns and where the cursor goes: the line scrolls sideways
    /// to keep the cursor visible when it is wider than the terminal.
    public func visible(width: Int) -> (text: String, cursorColumn: Int) {
        let width = max(1, width)
        let text = isSecret ? Array(repeating: Character("•"), count: self.text.count) : self.text
        let widths = text.map(displayWidth)
        let cursorOffset = widths[0..<cursor].reduce(0, +)
        let total = widths.reduce(0, +)
        if total < width { return (String(text), cursorOffset) }
        // Scroll so the cursor sits inside the window, with the window ending at the text's end when possible.
        var first = 0
        var column = cursorOffset
        while column >= width - 1, first < cursor {
            column -= widths[first]
            first += 1
        }
        var shown = ""
        var used = 0
        for index in first..<text.count {
            guard used + widths[index] <= width - 1 else { break }
            shown.append(text[index])
            used += widths[index]
        }
        return (shown, column)
    }
}

/// Columns a character takes in a terminal: 2 for East Asian wide characters and most emoji.
public func displayWidth(_ character: Character) -> Int {
    guard let scalar = character.unicodeScalars.first else { return 0 }
    switch scalar.value {
    case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
         0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
         0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
        return 2
    default:
        return 1
    }
}

extension String {
    var trimmingWhitespace: Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? start
        return self[start..<max(start, end)]
    }
}
