/// Whether a message is plain text or an action (`/me waves`).
public enum MessageKind: String, Sendable, Equatable {
    case text
    case action
}

/// A stored message as every part of the system sees it.
public struct ChatMessage: Sendable, Equatable {
    /// Server-wide, strictly increasing in commit order, never reused.
    public var id: Int64
    /// Milliseconds since the Unix epoch, UTC.
    public var timestamp: Int64
    /// The room; empty for a direct message.
    public var room: String
    public var from: String
    /// The recipient of a direct message (as the user first spelled the name); nil in a room.
    public var to: String?
    public var kind: MessageKind
    public var text: String

    public init(id: Int64, timestamp: Int64, room: String, from: String, to: String? = nil, kind: MessageKind, text: String) {
        self.id = id
        self.timestamp = timestamp
        self.room = room
        self.from = from
        self.to = to
        self.kind = kind
        self.text = text
    }
}

extension ChatMessage {
    /// A direct message (to a user) rather than one said in a room.
    public var isDirect: Bool { to != nil }

    /// Where it was said, as transcripts show it: `#room`, or `@recipient` for a direct message.
    public var place: String { to.map { "@" + $0 } ?? "#" + room }

    /// What a grouped transcript heads it with: `#room`, or both people of a direct conversation
    /// in name order (`alice ↔ bob`), so both directions share one heading.
    public var conversation: String {
        guard let to else { return "#" + room }
        let pair = [from, to].sorted { $0.lowercased() < $1.lowercased() }
        return "\(pair[0]) ↔ \(pair[1])"
    }
}
