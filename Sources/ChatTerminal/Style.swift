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
    public func message(_ message: ChatMessage, showRoom: Bool, isHistory: Bool) -> String {
        let time = dim(Self.localTime(message.timestamp))
        let room = showRoom ? dim("#\(message.room) ") : ""
        let text = message.text.replacingNewlines
        let line: String
        if message.kind == .action {
            line = "\(time) \(room)\(italic("* \(name(message.from)) \(text)"))"
        } else {
            line = "\(time) \(room)<\(name(message.from))> \(text)"
        }
        return isHistory ? dim(colors ? line.replacingOccurrences(of: "\u{1B}[0m", with: "\u{1B}[0m\u{1B}[2m") : line) : line
    }
}

extension String {
    /// Continuation lines indented under the message.
    var replacingNewlines: String {
        contains("\n") ? split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n      ") : self
    }
}
