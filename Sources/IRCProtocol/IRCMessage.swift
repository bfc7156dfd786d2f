/// One IRC message (RFC 1459 / modern IRC, with IRCv3 message tags): what a line parses into and
/// what is serialized back. Pure value type, no I/O: the IRC listener frames lines, this module
/// only splits and joins them. Checked against ircdocs' parser-tests (msg-split, msg-join,
/// userhost-split) in `IRCProtocolTests`.
public struct IRCMessage: Sendable, Equatable {
    /// Tags in the order they came (or are to be sent); a name that repeats counts once, with
    /// its last value (`tag(_:)` and `tags` follow that rule).
    public var orderedTags: [(name: String, value: String)]
    /// The source (prefix) without its leading `:`, or nil.
    public var source: String?
    /// The command or numeric as written (not case-folded here).
    public var command: String
    public var parameters: [String]

    public init(tags: [(name: String, value: String)] = [], source: String? = nil, command: String, parameters: [String] = []) {
        self.orderedTags = tags
        self.source = source
        self.command = command
        self.parameters = parameters
    }

    public static func == (lhs: IRCMessage, rhs: IRCMessage) -> Bool {
        lhs.tags == rhs.tags && lhs.source == rhs.source && lhs.command == rhs.command && lhs.parameters == rhs.parameters
    }

    /// The tags by name; a tag without a value has the empty string.
    public var tags: [String: String] {
        var result: [String: String] = [:]
        for (name, value) in orderedTags { result[name] = value }
        return result
    }

    public func tag(_ name: String) -> String? {
        orderedTags.last { $0.name == name }?.value
    }

    public enum ParseError: Error, Equatable, Sendable {
        /// Nothing but spaces (and tags or a source): there is no command.
        case noCommand
        /// `@` or `:` with nothing after it.
        case emptyTagsOrSource
        /// A command that is not letters or digits (RFC 1459: a word or a 3-digit numeric).
        case invalidCommand
    }

    /// Parses one line without its line ending (trailing `\r` and `\n` are ignored). Spaces
    /// between the parts may repeat, as RFC 1459 allows. Works on the bytes, so no grapheme
    /// cluster (a space followed by a combining mark, say) can hide a separator.
    public static func parse<Bytes: RandomAccessCollection<UInt8>>(bytes line: Bytes) throws(ParseError) -> IRCMessage {
        let space = UInt8(ascii: " ")
        var end = line.endIndex
        while end > line.startIndex {
            let before = line.index(before: end)
            guard line[before] == UInt8(ascii: "\r") || line[before] == UInt8(ascii: "\n") else { break }
            end = before
        }
        var rest = line[line.startIndex..<end]
        func text(_ slice: Bytes.SubSequence) -> String { String(decoding: slice, as: UTF8.self) }
        func skipSpaces() { while rest.first == space { rest = rest.dropFirst() } }
        var tags: [(String, String)] = []
        if rest.first == UInt8(ascii: "@") {
            let stop = rest.firstIndex(of: space) ?? rest.endIndex
            let raw = rest[rest.index(after: rest.startIndex)..<stop]
            guard !raw.isEmpty else { throw .emptyTagsOrSource }
            for item in raw.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: true) {
                let equals = item.firstIndex(of: UInt8(ascii: "=")) ?? item.endIndex
                // A tag must have a name: `=value` alone is dropped.
                guard equals > item.startIndex else { continue }
                let value = equals < item.endIndex ? unescapeTagValue(text(item[item.index(after: equals)...])) : ""
                tags.append((text(item[..<equals]), value))
            }
            rest = rest[stop...]
        }
        skipSpaces()
        var source: String?
        if rest.first == UInt8(ascii: ":") {
            let stop = rest.firstIndex(of: space) ?? rest.endIndex
            let raw = rest[rest.index(after: rest.startIndex)..<stop]
            guard !raw.isEmpty else { throw .emptyTagsOrSource }
            source = text(raw)
            rest = rest[stop...]
            skipSpaces()
        }
        let commandEnd = rest.firstIndex(of: space) ?? rest.endIndex
        let command = rest[..<commandEnd]
        guard !command.isEmpty else { throw .noCommand }
        guard command.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0 & 0xDF) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw .invalidCommand
        }
        rest = rest[commandEnd...]
        var parameters: [String] = []
        while true {
            skipSpaces()
            if rest.isEmpty { break }
            if rest.first == UInt8(ascii: ":") {
                parameters.append(text(rest.dropFirst()))
                break
            }
            let stop = rest.firstIndex(of: space) ?? rest.endIndex
            parameters.append(text(rest[..<stop]))
            rest = rest[stop...]
        }
        return IRCMessage(tags: tags, source: source, command: text(command), parameters: parameters)
    }

    public static func parse(_ line: String) throws(ParseError) -> IRCMessage {
        try parse(bytes: Array(line.utf8))
    }

    /// The line to send, without `\r\n`. The last parameter is written as a trailing one (`:`)
    /// when it must be (empty, with a space, or starting with `:`), and only then.
    public func serialized() -> String {
        var line = ""
        if !orderedTags.isEmpty {
            line += "@"
            for (index, tag) in orderedTags.enumerated() {
                if index > 0 { line += ";" }
                line += tag.name
                if !tag.value.isEmpty {
                    line += "="
                    Self.escapeTagValue(tag.value, into: &line)
                }
            }
            line += " "
        }
        if let source { line += ":" + source + " " }
        line += command
        for (index, parameter) in parameters.enumerated() {
            line += " "
            if index == parameters.count - 1,
               parameter.isEmpty || parameter.utf8.first == UInt8(ascii: ":") || parameter.utf8.contains(UInt8(ascii: " ")) {
                line += ":"
            }
            line += parameter
        }
        return line
    }

    /// IRCv3 message-tags value escaping: `;` `\s` `\\` `\r` `\n`.
    public static func escapeTagValue(_ value: String, into line: inout String) {
        for scalar in value.unicodeScalars {
            switch scalar {
            case ";": line += "\\:"
            case " ": line += "\\s"
            case "\\": line += "\\\\"
            case "\r": line += "\\r"
            case "\n": line += "\\n"
            default: line.unicodeScalars.append(scalar)
            }
        }
    }

    /// The inverse; an unknown escape stands for the character itself and a lone trailing
    /// backslash is dropped, as the spec says.
    public static func unescapeTagValue(_ raw: String) -> String {
        guard raw.contains("\\") else { return raw }
        var value = String.UnicodeScalarView()
        var escaping = false
        for scalar in raw.unicodeScalars {
            if escaping {
                switch scalar {
                case ":": value.append(";")
                case "s": value.append(" ")
                case "r": value.append("\r")
                case "n": value.append("\n")
                default: value.append(scalar)
                }
                escaping = false
            } else if scalar == "\\" {
                escaping = true
            } else {
                value.append(scalar)
            }
        }
        return String(value)
    }
}

/// `nick!user@host`, split; a missing part is empty.
public struct IRCUserHost: Sendable, Equatable {
    public var nick: String
    public var user: String
    public var host: String

    public init(nick: String, user: String = "", host: String = "") {
        self.nick = nick
        self.user = user
        self.host = host
    }

    public init(parsing source: String) {
        var rest = source[...]
        var host = ""
        if let at = rest.firstIndex(of: "@") {
            host = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        var user = ""
        if let bang = rest.firstIndex(of: "!") {
            user = String(rest[rest.index(after: bang)...])
            rest = rest[..<bang]
        }
        self.init(nick: String(rest), user: user, host: host)
    }
}
