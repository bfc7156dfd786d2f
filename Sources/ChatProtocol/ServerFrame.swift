import NIOCore

/// Encoders for every frame the server sends. Each appends one complete line, `\n` included,
/// so a broadcast is encoded once and its bytes shared by every recipient.
public enum ServerFrame {
    public static let protocolVersion = 1

    public static func greeting(server: String, passwordRequired: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"greeting","server":"#)
        buffer.writeJSONString(server)
        buffer.writeStaticString(#","protocol":1,"password_required":"#)
        buffer.writeStaticString(passwordRequired ? "true}\n" : "false}\n")
    }

    public static func welcome(re: RequestID?, name: String, isAccount: Bool = false, defaultRoom: String, motd: String?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"welcome""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString(#","name":"#)
        buffer.writeJSONString(name)
        buffer.writeStaticString(isAccount ? #","account":true"# : #","account":false"#)
        buffer.writeStaticString(#","default_room":"#)
        buffer.writeJSONString(defaultRoom)
        if let motd {
            buffer.writeStaticString(#","motd":"#)
            buffer.writeJSONString(motd)
        }
        buffer.writeStaticString("}\n")
    }

    public static func joined(re: RequestID?, room: String, members: some Sequence<String>, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"joined""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString(#","room":"#)
        buffer.writeJSONString(room)
        buffer.writeStaticString(#","members":"#)
        writeStringArray(members, into: &buffer)
        buffer.writeStaticString("}\n")
    }

    /// What a `history` frame pages through: a room, or the direct messages with a user.
    public enum HistorySubject: Sendable, Equatable {
        case room(String)
        case conversation(with: String)
    }

    /// A `history` frame: the replay after `joined` (no `re`) or the answer to a `history` request.
    public static func history(re: RequestID?, room: String, messages: [ChatMessage], more: Bool, into buffer: inout ByteBuffer) {
        history(re: re, subject: .room(room), messages: messages, more: more, into: &buffer)
    }

    public static func history(re: RequestID?, subject: HistorySubject, messages: [ChatMessage], more: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"history""#)
        writeRe(re, into: &buffer)
        switch subject {
        case .room(let room):
            buffer.writeStaticString(#","room":"#)
            buffer.writeJSONString(room)
        case .conversation(let user):
            buffer.writeStaticString(#","with":"#)
            buffer.writeJSONString(user)
        }
        writeMessagesAndEnd(messages, more: more, into: &buffer)
    }

    /// The answer to `search`: matches newest first.
    public static func search(re: RequestID?, messages: [ChatMessage], more: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"search""#)
        writeRe(re, into: &buffer)
        writeMessagesAndEnd(messages, more: more, into: &buffer)
    }

    /// One row of a `conversations` answer.
    public struct ConversationSummary: Sendable, Equatable {
        public var with: String
        public var lastID: Int64
        /// When the last message was said (not in the native frame; IRC's chathistory TARGETS).
        public var lastTimestamp: Int64

        public init(with: String, lastID: Int64, lastTimestamp: Int64 = 0) {
            self.with = with
            self.lastID = lastID
            self.lastTimestamp = lastTimestamp
        }
    }

    public static func conversations(re: RequestID?, _ conversations: [ConversationSummary], into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"conversations""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString(#","conversations":["#)
        for (index, conversation) in conversations.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeStaticString(#"{"with":"#)
            buffer.writeJSONString(conversation.with)
            buffer.writeStaticString(#","last_id":"#)
            buffer.writeDecimal(conversation.lastID)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeStaticString("]}\n")
    }

    public static func registered(re: RequestID?, name: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"registered""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString(#","name":"#)
        buffer.writeJSONString(name)
        buffer.writeStaticString("}\n")
    }

    /// `"messages":[...],"more":…}` and the newline: how `history` and `search` frames end.
    private static func writeMessagesAndEnd(_ messages: [ChatMessage], more: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#","messages":"#)
        writeMessageArray(messages, into: &buffer)
        buffer.writeStaticString(#","more":"#)
        buffer.writeStaticString(more ? "true}\n" : "false}\n")
    }

    private static func writeMessageArray(_ messages: [ChatMessage], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, message) in messages.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            writeMessageObject(message, into: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// A live `message` frame; the sender's copy carries `re`, its acknowledgement.
    public static func message(_ message: ChatMessage, re: RequestID?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"message","id":"#)
        buffer.writeDecimal(message.id)
        writeRe(re, into: &buffer)
        writeMessageFields(message, into: &buffer)
        buffer.writeStaticString("}\n")
    }

    /// The object of a stored message, as in `history.messages` and the admin tool's JSON.
    public static func writeMessageObject(_ message: ChatMessage, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"id":"#)
        buffer.writeDecimal(message.id)
        writeMessageFields(message, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    private static func writeMessageFields(_ message: ChatMessage, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#","ts":""#)
        Timestamp.write(message.timestamp, into: &buffer)
        if let to = message.to {
            buffer.writeStaticString(#"","from":"#)
            buffer.writeJSONString(message.from)
            buffer.writeStaticString(#","to":"#)
            buffer.writeJSONString(to)
        } else {
            buffer.writeStaticString(#"","room":"#)
            buffer.writeJSONString(message.room)
            buffer.writeStaticString(#","from":"#)
            buffer.writeJSONString(message.from)
        }
        buffer.writeStaticString(message.kind == .text ? #","kind":"text","text":"# : #","kind":"action","text":"#)
        buffer.writeJSONString(message.text)
    }

    public enum PresenceEvent: String, Sendable {
        case join
        case leave
    }

    public static func presence(room: String, name: String, event: PresenceEvent, reason: String?, timestamp: Int64, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"presence","room":"#)
        buffer.writeJSONString(room)
        buffer.writeStaticString(#","name":"#)
        buffer.writeJSONString(name)
        buffer.writeStaticString(event == .join ? #","event":"join""# : #","event":"leave""#)
        if let reason {
            buffer.writeStaticString(#","reason":"#)
            buffer.writeJSONString(reason)
        }
        buffer.writeStaticString(#","ts":""#)
        Timestamp.write(timestamp, into: &buffer)
        buffer.writeStaticString("\"}\n")
    }

    public static func left(re: RequestID?, room: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"left""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString(#","room":"#)
        buffer.writeJSONString(room)
        buffer.writeStaticString("}\n")
    }

    /// One row of a `rooms` answer.
    public struct RoomSummary: Sendable, Equatable {
        public var name: String
        public var members: Int
        public var messages: Int

        public init(name: String, members: Int, messages: Int) {
            self.name = name
            self.members = members
            self.messages = messages
        }
    }

    public static func rooms(re: RequestID?, rooms: [RoomSummary], into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"rooms""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString(#","rooms":["#)
        for (index, room) in rooms.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeStaticString(#"{"name":"#)
            buffer.writeJSONString(room.name)
            buffer.writeStaticString(#","members":"#)
            buffer.writeDecimal(room.members)
            buffer.writeStaticString(#","messages":"#)
            buffer.writeDecimal(room.messages)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeStaticString("]}\n")
    }

    public static func who(re: RequestID?, room: String, members: some Sequence<String>, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"who""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString(#","room":"#)
        buffer.writeJSONString(room)
        buffer.writeStaticString(#","members":"#)
        writeStringArray(members, into: &buffer)
        buffer.writeStaticString("}\n")
    }

    public static func pong(re: RequestID?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"pong""#)
        writeRe(re, into: &buffer)
        buffer.writeStaticString("}\n")
    }

    public static func ping(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"type\":\"ping\"}\n")
    }

    public static func bye(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"type\":\"bye\"}\n")
    }

    public static func shutdown(reason: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"shutdown","reason":"#)
        buffer.writeJSONString(reason)
        buffer.writeStaticString("}\n")
    }

    public static func error(_ error: ProtocolError, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"error","code":""#)
        buffer.writeString(error.code.rawValue)
        buffer.writeStaticString(#"","message":"#)
        buffer.writeJSONString(error.message)
        writeRe(error.re, into: &buffer)
        buffer.writeStaticString("}\n")
    }

    private static func writeRe(_ re: RequestID?, into buffer: inout ByteBuffer) {
        switch re {
        case nil: return
        case .integer(let value)?:
            buffer.writeStaticString(#","re":"#)
            buffer.writeDecimal(value)
        case .string(let value)?:
            buffer.writeStaticString(#","re":"#)
            buffer.writeJSONString(value)
        }
    }

    private static func writeStringArray(_ strings: some Sequence<String>, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        var first = true
        for string in strings {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeJSONString(string)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }
}
