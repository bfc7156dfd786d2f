import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore

/// Room events as IRC lines (SPEC.md, IRC). Written straight into the run's buffer: this is the
/// fan-out path, encoded once per set of tag capabilities, never per recipient.
package enum IRCEncoding {
    /// The host part of every user's `nick!user@host`: the server shows no addresses.
    package static let userHost = "chat"

    package static func source(_ nick: String) -> String {
        "\(nick)!\(nick)@\(userHost)"
    }

    /// The IRC target of a message: `#room`, or the recipient's nick for a direct message.
    package static func target(of message: ChatMessage) -> String {
        message.to ?? "#" + message.room
    }

    package static func write(_ event: RoomEvent, features: IRCFeatures, into buffer: inout ByteBuffer) {
        switch event {
        case .message(let message, let author):
            writeMessage(message, isAccount: author.isAccount, features: features, batch: nil, clientTags: author.clientTags, into: &buffer)
        case .tags(let tags, let author):
            writeTagMessage(tags, author: author, features: features, into: &buffer)
        case .presence(let presence):
            writeTags(time: presence.timestamp, msgid: nil, account: nil, features: features, batch: nil, into: &buffer)
            buffer.writeStaticString(":")
            writeSource(presence.name, into: &buffer)
            switch (presence.event, presence.isQuit) {
            case (.join, _):
                buffer.writeStaticString(" JOIN #")
                buffer.writeString(presence.room)
            case (.leave, false):
                buffer.writeStaticString(" PART #")
                buffer.writeString(presence.room)
            case (.leave, true):
                buffer.writeStaticString(" QUIT :")
                buffer.writeString(sanitized(presence.reason ?? "Connection closed"))
            }
            buffer.writeStaticString("\r\n")
        }
    }

    /// A stored message as PRIVMSG lines: one per line of its text, each within IRC's 512 bytes
    /// (an action is a CTCP ACTION on every line).
    package static func writeMessage(_ message: ChatMessage, isAccount: Bool, features: IRCFeatures, batch: String?,
                             clientTags: String = "", into buffer: inout ByteBuffer) {
        let target = target(of: message)
        let source = source(message.from)
        let isAction = message.kind == .action
        let budget = IRCTextSplitter.textBudget(source: source, command: "PRIVMSG", target: target) - (isAction ? 9 : 0)
        let pieces = fastSplit(message.text, maxBytes: budget)
        for (index, piece) in pieces.enumerated() {
            writeTags(time: message.timestamp, msgid: message.id, account: isAccount ? message.from : nil, features: features,
                      batch: batch, clientTags: index == 0 ? clientTags : "", into: &buffer)
            buffer.writeStaticString(":")
            buffer.writeString(source)
            buffer.writeStaticString(" PRIVMSG ")
            buffer.writeString(target)
            buffer.writeStaticString(isAction ? " :\u{1}ACTION " : " :")
            buffer.writeString(piece)
            if isAction { buffer.writeStaticString("\u{1}") }
            buffer.writeStaticString("\r\n")
        }
    }

    /// `TAGMSG`, for clients that take tags (`message-tags`); nothing for the others.
    package static func writeTagMessage(_ tags: RoomEvent.TagMessage, author: RoomEvent.Author, features: IRCFeatures,
                                into buffer: inout ByteBuffer) {
        guard features.contains(.messageTags) else { return }
        writeTags(time: tags.timestamp, msgid: nil, account: author.isAccount ? tags.from : nil, features: features,
                  batch: nil, clientTags: author.clientTags, into: &buffer)
        buffer.writeStaticString(":")
        writeSource(tags.from, into: &buffer)
        buffer.writeStaticString(" TAGMSG ")
        buffer.writeString(tags.to ?? "#" + tags.room)
        buffer.writeStaticString("\r\n")
    }

    /// The common case (one short line) without the splitter's work.
    private static func fastSplit(_ text: String, maxBytes: Int) -> [String] {
        let utf8 = text.utf8
        if utf8.count <= maxBytes, !utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }), !text.isEmpty {
            return [text]
        }
        let pieces = IRCTextSplitter.split(text, maxBytes: max(maxBytes, 4))
        return pieces.isEmpty ? [" "] : pieces
    }

    private static func writeSource(_ nick: String, into buffer: inout ByteBuffer) {
        buffer.writeString(nick)
        buffer.writeStaticString("!")
        buffer.writeString(nick)
        buffer.writeStaticString("@")
        buffer.writeString(userHost)
    }

    /// The tags a client asked for, in one `@...` prefix (nothing when none applies).
    package static func writeTags(time: Int64?, msgid: Int64?, account: String?, features: IRCFeatures, batch: String?,
                          clientTags: String = "", into buffer: inout ByteBuffer) {
        var separator = UInt8(ascii: "@")
        func next(_ buffer: inout ByteBuffer) {
            buffer.writeInteger(separator)
            separator = UInt8(ascii: ";")
        }
        if let batch {
            next(&buffer)
            buffer.writeStaticString("batch=")
            buffer.writeString(batch)
        }
        if let time, features.contains(.serverTime) {
            next(&buffer)
            buffer.writeStaticString("time=")
            Timestamp.write(time, into: &buffer)
        }
        if let msgid, features.contains(.messageTags) {
            next(&buffer)
            buffer.writeStaticString("msgid=")
            buffer.writeDecimal(msgid)
        }
        if let account, features.contains(.accountTag) {
            next(&buffer)
            buffer.writeStaticString("account=")
            buffer.writeString(account)
        }
        if !clientTags.isEmpty, features.contains(.messageTags) {
            next(&buffer)
            buffer.writeString(clientTags)
        }
        if separator == UInt8(ascii: ";") { buffer.writeStaticString(" ") }
    }

    package static func escapedTagValue(_ value: String) -> String {
        var escaped = ""
        IRCMessage.escapeTagValue(value, into: &escaped)
        return escaped
    }

    /// Text safe for a trailing parameter: no CR, LF or NUL.
    package static func sanitized(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }) else { return text }
        return String(text.unicodeScalars.map { $0 == "\n" || $0 == "\r" || $0 == "\0" ? " " : Character($0) })
    }
}

/// What changes the bytes of an IRC line for a client: the capabilities that add tags. Each set
/// is a wire format of its own.
package struct IRCFeatures: OptionSet, Hashable, Sendable {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `message-tags`: `msgid` (and client tags).
    package static let messageTags = IRCFeatures(rawValue: 1)
    /// `server-time`: `time`.
    package static let serverTime = IRCFeatures(rawValue: 2)
    /// `account-tag`: `account` on messages of accounts.
    package static let accountTag = IRCFeatures(rawValue: 4)
}

/// IRC lines with a set of features, as the core encodes runs in them.
package struct IRCEventEncoding: EventEncoding {
    package let features: IRCFeatures

    package func write(_ event: RoomEvent, into bytes: inout ByteBuffer) {
        IRCEncoding.write(event, features: features, into: &bytes)
    }
}

extension WireFormat {
    /// IRC lines with `features`, in `framing` (syntax ids 16 and up).
    package static func irc(_ features: IRCFeatures, framing: Framing = .lines) -> WireFormat {
        WireFormat(syntaxID: 16 + Int(features.rawValue), encoding: IRCEventEncoding(features: features), framing: framing)
    }

    /// The IRC features of an IRC format (none for another face's).
    package var ircFeatures: IRCFeatures {
        (encoding as? IRCEventEncoding)?.features ?? []
    }
}
