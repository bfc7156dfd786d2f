import ChatProtocol
import Foundation
import NIOCore

/// The formats a transcript can be written in.
public enum TranscriptFormat: String, CaseIterable, Sendable {
    /// `[ts] #room <name> text`, one message a line (continuation lines indented by four spaces);
    /// a direct message shows `@recipient` where a room message shows `#room`.
    case text
    /// One JSON array of message objects.
    case json
    /// One JSON message object a line.
    case ndjson
    /// RFC 4180, header `id,ts,room,from,kind,text`; a direct message's `room` is `dm:recipient`
    /// (not `@recipient`: a spreadsheet reads a leading `@` as a formula).
    case csv
    /// Grouped by room and day.
    case markdown
    /// A standalone page, grouped by room and day.
    case html

    /// Whether messages must arrive grouped by room (and in id order within each).
    public var groupsByRoom: Bool { self == .markdown || self == .html }

    /// A writer of this format onto `output`.
    public func writer(to output: BufferedOutput, title: String = "Chat transcript") -> TranscriptWriter {
        switch self {
        case .text: TextWriter(output: output, highlight: nil)
        case .json: JSONArrayWriter(output: output)
        case .ndjson: NDJSONWriter(output: output)
        case .csv: CSVWriter(output: output)
        case .markdown: MarkdownWriter(output: output, title: title)
        case .html: HTMLWriter(output: output, title: title)
        }
    }
}

/// Writes messages in one format: `begin`, `write` for each message, `end`.
public protocol TranscriptWriter: AnyObject {
    func begin() throws
    func write(_ message: ChatMessage) throws
    func end() throws
}

/// How search hits are marked in text output (for a terminal: ANSI bold).
public struct Highlight: Sendable {
    public var start: String
    public var end: String

    public init(start: String, end: String) {
        self.start = start
        self.end = end
    }

    public static let terminal = Highlight(start: "\u{1B}[1;33m", end: "\u{1B}[0m")
}

public final class TextWriter: TranscriptWriter {
    private let output: BufferedOutput
    private let highlight: Highlight?

    public init(output: BufferedOutput, highlight: Highlight?) {
        self.output = output
        self.highlight = highlight
    }

    public func begin() throws {}
    public func end() throws {}

    public func write(_ message: ChatMessage) throws {
        try write(message, text: message.text)
    }

    /// Writes a message whose text carries `SearchHit`-style markers around matched words.
    public func write(_ message: ChatMessage, markedText: String, start: String, end: String) throws {
        let text = markedText
            .replacingOccurrences(of: start, with: highlight?.start ?? "")
            .replacingOccurrences(of: end, with: highlight?.end ?? "")
        try write(message, text: text)
    }

    private func write(_ message: ChatMessage, text: String) throws {
        output.buffer.writeInteger(UInt8(ascii: "["))
        Timestamp.write(message.timestamp, into: &output.buffer)
        output.buffer.writeStaticString("] ")
        output.buffer.writeString(message.place)
        if message.kind == .action {
            output.buffer.writeStaticString(" * ")
            output.buffer.writeString(message.from)
            output.buffer.writeStaticString(" ")
        } else {
            output.buffer.writeStaticString(" <")
            output.buffer.writeString(message.from)
            output.buffer.writeStaticString("> ")
        }
        // Continuation lines of a multi-line message are indented: every message starts a line
        // with `[`, so line tools (`grep '^\['`) still see one message per entry.
        if text.utf8.contains(0x0A) {
            output.buffer.writeString(text.replacingOccurrences(of: "\n", with: "\n    "))
        } else {
            output.buffer.writeString(text)
        }
        output.buffer.writeInteger(UInt8(ascii: "\n"))
        try output.flushIfFull()
    }
}

public final class NDJSONWriter: TranscriptWriter {
    private let output: BufferedOutput

    public init(output: BufferedOutput) { self.output = output }

    public func begin() throws {}
    public func end() throws {}

    public func write(_ message: ChatMessage) throws {
        ServerFrame.writeMessageObject(message, into: &output.buffer)
        output.buffer.writeInteger(UInt8(ascii: "\n"))
        try output.flushIfFull()
    }
}

public final class JSONArrayWriter: TranscriptWriter {
    private let output: BufferedOutput
    private var isFirst = true

    public init(output: BufferedOutput) { self.output = output }

    public func begin() throws {
        output.buffer.writeInteger(UInt8(ascii: "["))
    }

    public func write(_ message: ChatMessage) throws {
        output.buffer.writeStaticString(isFirst ? "\n" : ",\n")
        isFirst = false
        ServerFrame.writeMessageObject(message, into: &output.buffer)
        try output.flushIfFull()
    }

    public func end() throws {
        output.buffer.writeStaticString(isFirst ? "]\n" : "\n]\n")
    }
}

public final class CSVWriter: TranscriptWriter {
    private let output: BufferedOutput

    public init(output: BufferedOutput) { self.output = output }

    public func begin() throws {
        output.buffer.writeStaticString("id,ts,room,from,kind,text\r\n")
    }

    public func end() throws {}

    public func write(_ message: ChatMessage) throws {
        output.buffer.writeDecimal(message.id)
        output.buffer.writeInteger(UInt8(ascii: ","))
        Timestamp.write(message.timestamp, into: &output.buffer)
        output.buffer.writeInteger(UInt8(ascii: ","))
        writeField(message.to.map { "dm:" + $0 } ?? message.room)
        output.buffer.writeInteger(UInt8(ascii: ","))
        writeField(message.from)
        output.buffer.writeInteger(UInt8(ascii: ","))
        output.buffer.writeString(message.kind.rawValue)
        output.buffer.writeInteger(UInt8(ascii: ","))
        writeField(message.text)
        output.buffer.writeStaticString("\r\n")
        try output.flushIfFull()
    }

    /// RFC 4180: a field with a comma, quote, CR or LF is quoted, its quotes doubled. A field a
    /// spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a CR) gets a
    /// leading `'`, as OWASP advises against CSV injection; nothing else is changed.
    private func writeField(_ field: String) {
        if let first = field.utf8.first, [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0D].contains(first) {
            return writeQuotedIfNeeded("'" + field)
        }
        writeQuotedIfNeeded(field)
    }

    private func writeQuotedIfNeeded(_ field: String) {
        let needsQuotes = field.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
        guard needsQuotes else {
            output.buffer.writeString(field)
            return
        }
        output.buffer.writeInteger(UInt8(ascii: "\""))
        output.buffer.writeString(field.replacingOccurrences(of: "\"", with: "\"\""))
        output.buffer.writeInteger(UInt8(ascii: "\""))
    }
}

/// Shared by the grouped formats: notices when the room or the UTC day changes.
struct Grouping {
    var room: String?
    var day: Int64?

    /// Which headings a message needs before it.
    mutating func headings(for message: ChatMessage) -> (room: Bool, day: Bool) {
        let day = message.timestamp >= 0 ? message.timestamp / 86_400_000 : (message.timestamp - 86_399_999) / 86_400_000
        let newRoom = message.conversation != room
        let newDay = newRoom || day != self.day
        room = message.conversation
        self.day = day
        return (newRoom, newDay)
    }
}

extension Timestamp {
    /// `2026-11-21` of a time.
    static func dayString(_ milliseconds: Int64) -> String { String(string(milliseconds).prefix(10)) }
    /// `09:30:00` of a time.
    static func timeString(_ milliseconds: Int64) -> String { String(string(milliseconds).dropFirst(11).prefix(8)) }
}

public final class MarkdownWriter: TranscriptWriter {
    private let output: BufferedOutput
    private let title: String
    private var grouping = Grouping()

    public init(output: BufferedOutput, title: String) {
        self.output = output
        self.title = title
    }

    public func begin() throws {
        try output.write("# \(Self.escape(title))\n")
    }

    public func end() throws {}

    public func write(_ message: ChatMessage) throws {
        let headings = grouping.headings(for: message)
        if headings.room { try output.write("\n## \(message.isDirect ? Self.escape(message.conversation) : "#" + Self.escape(message.room))\n") }
        if headings.day { try output.write("\n### \(Timestamp.dayString(message.timestamp))\n\n") }
        let text = Self.escape(message.text).replacingOccurrences(of: "\n", with: "  \n  ")
        let time = Timestamp.timeString(message.timestamp)
        if message.kind == .action {
            try output.write("- `\(time)` \\* **\(Self.escape(message.from))** \(text)\n")
        } else {
            try output.write("- `\(time)` **\(Self.escape(message.from))**: \(text)\n")
        }
    }

    /// Backslash-escapes what Markdown would read as markup, and HTML's `<` and `&`.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "\\", "`", "*", "_", "{", "}", "[", "]", "(", ")", "#", "+", "-", ".", "!", "|", ">", "~":
                escaped.append("\\")
                escaped.append(character)
            case "<": escaped += "&lt;"
            case "&": escaped += "&amp;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

public final class HTMLWriter: TranscriptWriter {
    private let output: BufferedOutput
    private let title: String
    private var grouping = Grouping()
    private var isInList = false
    private var isInRoom = false

    public init(output: BufferedOutput, title: String) {
        self.output = output
        self.title = title
    }

    public func begin() throws {
        try output.write("""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Self.escape(title))</title>
            <style>
            body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
            h2 { border-bottom: 1px solid #ddd; margin-top: 2.5rem; }
            h3 { color: #666; font-size: 1rem; margin: 1.5rem 0 .5rem; }
            ol { list-style: none; padding: 0; margin: 0; }
            li { padding: .1rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
            time { color: #888; font-variant-numeric: tabular-nums; margin-right: .5rem; }
            .from { font-weight: 600; }
            .action { font-style: italic; }
            </style>
            </head>
            <body>
            <h1>\(Self.escape(title))</h1>

            """)
    }

    public func write(_ message: ChatMessage) throws {
        let headings = grouping.headings(for: message)
        if headings.day && isInList { try output.write("</ol>\n") }
        if headings.room {
            if isInRoom { try output.write("</section>\n") }
            try output.write("<section>\n<h2>\(message.isDirect ? Self.escape(message.conversation) : "#" + Self.escape(message.room))</h2>\n")
            isInRoom = true
        }
        if headings.day {
            try output.write("<h3>\(Timestamp.dayString(message.timestamp))</h3>\n<ol>\n")
            isInList = true
        }
        let time = "<time datetime=\"\(Timestamp.string(message.timestamp))\">\(Timestamp.timeString(message.timestamp))</time>"
        let from = Self.escape(message.from)
        let text = Self.escape(message.text)
        if message.kind == .action {
            try output.write("<li class=\"action\" id=\"m\(message.id)\">\(time)* <span class=\"from\">\(from)</span> \(text)</li>\n")
        } else {
            try output.write("<li id=\"m\(message.id)\">\(time)<span class=\"from\">\(from)</span>: \(text)</li>\n")
        }
    }

    public func end() throws {
        if isInList { try output.write("</ol>\n") }
        if isInRoom { try output.write("</section>\n") }
        if !isInRoom { try output.write("<p>No messages.</p>\n") }
        try output.write("</body>\n</html>\n")
    }

    /// Escapes the five characters that could make text into markup.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
