import ChatProtocol
import NIOCore

/// How a face writes room events in its syntax. A face makes its `WireFormat`s with one.
package protocol EventEncoding: Sendable {
    /// Appends the lines (each ended by its line ending) that tell `event`.
    func write(_ event: RoomEvent, into bytes: inout ByteBuffer)
}

/// A wire format a run can be encoded in: a face's syntax and the transport's framing. A room
/// encodes each run once per format its members speak; a session writes the encoding of its
/// own. The core knows no syntax: the faces make their formats, each syntax with an id of its
/// own (native: 0; IRC: 16 + its features), which is what formats are compared by.
package struct WireFormat: Hashable, Sendable {
    package let syntaxID: Int
    package let encoding: any EventEncoding
    package var framing: Framing

    package init(syntaxID: Int, encoding: any EventEncoding, framing: Framing) {
        self.syntaxID = syntaxID
        self.encoding = encoding
        self.framing = framing
    }

    /// The format as one integer (syntax and framing): what the fan-out compares per member, as
    /// copying a format copies its encoding's existential.
    package var key: Int { syntaxID << 8 | Int(framing.rawValue) }

    package static func == (lhs: WireFormat, rhs: WireFormat) -> Bool {
        lhs.key == rhs.key
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(syntaxID)
        hasher.combine(framing)
    }
}

/// Something a room tells its members, in no wire format.
package enum RoomEvent: Sendable {
    case message(ChatMessage, author: Author)
    case presence(Presence)
    case tags(TagMessage, author: Author)

    /// Who said a message, as far as its delivery needs to know.
    package struct Author: Sendable {
        /// The session that sent it: its copy is the acknowledgement (or, in IRC, the echo).
        package let sessionID: Int
        /// The sender's request id, for the acknowledgement.
        package let re: RequestID?
        /// Whether the author is an account (IRC's `account` tag).
        package let isAccount: Bool
        /// IRCv3 client-only tags sent with it (`+name=value;...`), relayed to clients that take
        /// tags and never stored; empty for most.
        package var clientTags = ""
    }

    /// IRC `TAGMSG`: only tags, to a room or a user, relayed and not stored.
    package struct TagMessage: Sendable {
        package let room: String
        /// The recipient, for one sent to a user.
        package let to: String?
        package let from: String
        package let timestamp: Int64
    }

    package struct Presence: Sendable {
        package let room: String
        package let name: String
        package let event: ServerFrame.PresenceEvent
        /// A leave because the connection ended (IRC `QUIT`), not a leave of the room (`PART`).
        package let isQuit: Bool
        package let reason: String?
        package let timestamp: Int64
        /// The session whose own join this is: it is not sent it, nor anything before it in the run.
        package let joinerSessionID: Int?
    }
}

/// A run of a room's events (committed messages in id order, or presence), with its encoding in
/// every wire format present among the members it goes to. Immutable once built, so it crosses
/// event loops freely; nothing in it is per recipient.
package final class Broadcast: Sendable {
    package let room: String
    package let events: [RoomEvent]
    /// Events that one session gets differently (its acknowledgements, its own join), as
    /// (session id, event index), in event order. Empty for most runs.
    package let personal: [(sessionID: Int, event: Int)]
    /// The newest message id in the run (nil for a run of presence only).
    package let lastMessageID: Int64?
    /// How many messages the run holds (0 for presence).
    package let messageCount: Int
    /// The run in each format, by the format's key.
    private let encodings: [(key: Int, run: EncodedRun)]

    /// A run in one wire format: all of its events' frames, concatenated, as every member that
    /// has no personal event in it receives them.
    package struct EncodedRun: Sendable {
        package var bytes: ByteBuffer
        /// Where each event's frames start in `bytes`, and the end (only when `personal` is not
        /// empty, for the sessions that get a spliced copy).
        package var offsets: [Int]
    }

    package init(room: String, events: [RoomEvent], formats: some Sequence<WireFormat>, allocator: ByteBufferAllocator) {
        self.room = room
        self.events = events
        var personal: [(sessionID: Int, event: Int)] = []
        var lastMessageID: Int64?
        var messageCount = 0
        for (index, event) in events.enumerated() {
            switch event {
            case .message(let message, let author):
                lastMessageID = message.id
                messageCount += 1
                personal.append((author.sessionID, index))
            case .presence(let presence):
                if let joiner = presence.joinerSessionID { personal.append((joiner, index)) }
            case .tags(_, let author):
                personal.append((author.sessionID, index))
            }
        }
        self.personal = personal
        self.lastMessageID = lastMessageID
        self.messageCount = messageCount
        let needsOffsets = !personal.isEmpty
        encodings = formats.map { format in
            (format.key, Self.encode(events, as: format, withOffsets: needsOffsets, allocator: allocator))
        }
    }

    private init(copying other: Broadcast, allocator: ByteBufferAllocator) {
        room = other.room
        events = other.events
        personal = other.personal.map { $0 }
        lastMessageID = other.lastMessageID
        messageCount = other.messageCount
        encodings = other.encodings.map { encoding in
            var bytes = allocator.buffer(capacity: encoding.run.bytes.readableBytes)
            bytes.writeImmutableBuffer(encoding.run.bytes)
            return (encoding.key, EncodedRun(bytes: bytes, offsets: encoding.run.offsets.map { $0 }))
        }
    }

    /// The same run in storage of its own, for the members on another event loop. Every member
    /// write retains and releases the run's buffers; with one copy per loop those reference
    /// counts are only ever touched by one thread, instead of bouncing a cache line between
    /// cores on every write (`swift_retain` was 11% of the loops' time at 200 msg/s).
    package func copyForAnotherLoop(allocator: ByteBufferAllocator) -> Broadcast {
        Broadcast(copying: self, allocator: allocator)
    }

    /// The run in `format` (which was among the formats it was built for).
    package func encoded(as format: WireFormat) -> EncodedRun {
        // One or two formats in practice: a scan beats hashing.
        let key = format.key
        for encoding in encodings where encoding.key == key { return encoding.run }
        preconditionFailure("a run was not encoded for a format among its recipients")
    }

    /// Whether session `sessionID` gets any event of the run its own way.
    package func hasPersonalEvents(of sessionID: Int) -> Bool {
        personal.contains { $0.sessionID == sessionID }
    }

    /// The events of the run that session `sessionID` gets its own way, in order.
    package func personalEvents(of sessionID: Int) -> [Int] {
        // Every member asks, one (the author) gets something: no array for the others.
        guard hasPersonalEvents(of: sessionID) else { return [] }
        return personal.compactMap { $0.sessionID == sessionID ? $0.event : nil }
    }

    private static func encode(_ events: [RoomEvent], as format: WireFormat, withOffsets: Bool, allocator: ByteBufferAllocator) -> EncodedRun {
        var bytes = allocator.buffer(capacity: events.count * 160)
        var offsets: [Int] = []
        if withOffsets { offsets.reserveCapacity(events.count + 1) }
        // WebSocket: each event's lines are encoded here first, then written as one message each.
        var lines = format.framing == .webSocket ? allocator.buffer(capacity: 512) : nil
        for event in events {
            if withOffsets { offsets.append(bytes.readableBytes) }
            if lines == nil {
                format.encoding.write(event, into: &bytes)
            } else {
                lines!.clear()
                format.encoding.write(event, into: &lines!)
                WebSocketFraming.writeLinesAsTextMessages(lines!, into: &bytes)
            }
        }
        if withOffsets { offsets.append(bytes.readableBytes) }
        return EncodedRun(bytes: bytes, offsets: offsets)
    }

}

package extension Broadcast {
    /// A run of committed messages of one room.
    static func messages(_ deliveries: ArraySlice<CommittedDelivery>, room: String, formats: some Sequence<WireFormat>,
                         allocator: ByteBufferAllocator) -> Broadcast {
        Broadcast(room: room, events: deliveries.map { .message($0.message, author: $0.author) }, formats: formats, allocator: allocator)
    }
}

/// A committed message on its way from the writer to its room, with who to acknowledge.
package struct CommittedDelivery: Sendable {
    package let message: ChatMessage
    package let author: RoomEvent.Author
}

/// How a run reaches a session that has events of its own in it (`personal`, not empty): the
/// shared parts around them, each of them replaced as `replace` says.
package extension Broadcast.EncodedRun {
    func write(personal: [Int], events: [RoomEvent], to write: (ByteBuffer) -> Void,
               replace: (_ index: Int, _ event: RoomEvent, _ frames: ByteBuffer) -> ReplacedEvent) {
        var position = 0
        for index in personal {
            let start = offsets[index], end = offsets[index + 1]
            let frames = bytes.getSlice(at: bytes.readerIndex + start, length: end - start)!
            switch replace(index, events[index], frames) {
            case .keep:
                continue
            case .skipThrough:
                position = end
            case .with(let replacement):
                if start > position { write(bytes.getSlice(at: bytes.readerIndex + position, length: start - position)!) }
                if let replacement, replacement.readableBytes > 0 { write(replacement) }
                position = end
            }
        }
        if position < bytes.readableBytes {
            write(bytes.getSlice(at: bytes.readerIndex + position, length: bytes.readableBytes - position)!)
        }
    }

    enum ReplacedEvent {
        /// The shared frames, unchanged.
        case keep
        /// Nothing of the run up to and including this event (a joiner's own join).
        case skipThrough
        /// These frames instead (nil: nothing).
        case with(ByteBuffer?)
    }
}
