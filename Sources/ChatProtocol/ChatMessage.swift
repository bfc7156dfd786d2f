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
    public var room: String
    public var from: String
    public var kind: MessageKind
    public var text: String

    public init(id: Int64, timestamp: Int64, room: String, from: String, kind: MessageKind, text: String) {
        self.id = id
        self.timestamp = timestamp
        self.room = room
        self.from = from
        self.kind = kind
        self.text = text
    }
}
