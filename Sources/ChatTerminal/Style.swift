import ChatProtocol
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How things look: colours (or none, with NO_COLOR or off a terminal), names in a stable
/// colour each, local times.
public struct Style: Sendable {
    public let colors: Bool

    public init(colors: Bool) {
        self.colors = colors
    }

    private func wrap(_ code: String, _ text: String) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    public func dim(_ text: String) -> String { wrap("2", text) }
    public func bold(_ text: String) -> String { wrap("1", text) }
    public func italic(_ text: String) -> String { wrap("3", text) }
    public func error(_ text: String) -> String { wrap("31", text) }
    public func notice(_ text: String) -> String { wrap("33", text) }

    /// A name in its own colour, the same in every session (a hash of the lower-cased name).
    public func name(_ name: String) -> String {
        let palette = ["31", "32", "33", "34", "35", "36", "91", "92", "93", "94", "95", "96"]
        var hash: UInt32 = 2_166_136_261
        for byte in name.lowercased().utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return wrap("1;" + palette[Int(hash % UInt32(palette.count))], name)
    }

    /// `09:30` in local time.
    public static func localTime(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        let hour = parts.tm_hour < 10 ? "0\(parts.tm_hour)" : "\(parts.tm_hour)"
        let minute = parts.tm_min < 10 ? "0\(parts.tm_min)" : "\(parts.tm_min)"
        return "\(hour):\(minute)"
    }

    /// One message as a line: `09:30 <alice> hello`, or `09:30 * alice waves` for an action;
    /// `#room` is shown when it is not the current room.
    /// A direct message stands apart from room traffic: a magenta `[DM alice → bob]` tag.
    public func message(_ message: ChatMessage, showRoom: Bool, isHistory: Bool, highlighting terms: [String] = []) -> String {
        let time = dim(Self.localTime(message.timestamp))
        let room: String
        if let to = message.to {
            room = wrap("1;35", "[DM \(message.from) → \(to)]") + " "
        } else {
            room = showRoom ? dim("#\(message.room) ") : ""
        }
        let text = highlight(terms, in: message.text).replacingNewlines
        let line: String
        if message.kind == .action {
            line = "\(time) \(room)\(italic("* \(name(message.from)) \(text)"))"
        } else {
            line = "\(time) \(room)<\(name(message.from))> \(text)"
        }
        return isHistory ? dim(colors ? line.replacingOccurrences(of: "\u{1B}[0m", with: "\u{1B}[0m\u{1B}[2m") : line) : line
    }
}

extension Style {
    /// `text` with every case-insensitive occurrence of `terms` in reverse video (or between
    /// `*` marks without colours).
    public func highlight(_ terms: [String], in text: String) -> String {
        let terms = terms.filter { !$0.isEmpty }
        guard !terms.isEmpty else { return text }
        let lower = text.lowercased()
        // Case folding can change lengths (ß, İ): then highlight nothing rather than misplace marks.
        guard lower.count == text.count else { return text }
        let characters = Array(text)
        let lowered = Array(lower)
        var marked = [Bool](repeating: false, count: characters.count)
        for term in terms.map({ Array($0.lowercased()) }) where term.count <= lowered.count {
            for start in 0...(lowered.count - term.count) where Array(lowered[start..<(start + term.count)]) == term {
                for index in start..<(start + term.count) { marked[index] = true }
            }
        }
        var result = ""
        var index = 0
        while index < characters.count {
            guard marked[index] else {
                result.append(characters[index])
                index += 1
                continue
            }
            var end = index
            while end < characters.count, marked[end] { end += 1 }
            let run = String(characters[index..<end])
            result += colors ? "\u{1B}[7m\(run)\u{1B}[27m" : "*\(run)*"
            index = end
        }
        return result
    }

    /// The words of an FTS5 query worth highlighting: operators, quotes, prefixes' `*` and
    /// column filters dropped.
    public static func searchTerms(_ query: String) -> [String] {
        let separators = CharacterSet.alphanumerics.inverted
        return query.components(separatedBy: separators)
            .filter { !$0.isEmpty && !["AND", "OR", "NOT", "NEAR"].contains($0) }
    }
}

extension String {
    /// Continuation lines indented under the message.
    var replacingNewlines: String {
        contains("\n") ? split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n      ") : self
    }
}
