import ChatProtocol
import NIOCore

/// A run of a room's events encoded once for the wire, shared by every member it goes to.
/// Immutable once built, so it crosses event loops freely.
final class Broadcast: Sendable {
    let room: String
    /// Every frame of the run, concatenated: what a member that sent none of them receives.
    let bytes: ByteBuffer
    /// Per-member replacements: the sender's own copy carrying `re` (an acknowledgement), or
    /// nothing in place of a joiner's own join. Where in `bytes` the shared frame sits and what
    /// replaces it. Empty for most runs.
    let acknowledgements: [Acknowledgement]
    /// The newest message id in the run (nil for a run of presence only).
    let lastMessageID: Int64?
    /// How many messages the run holds (0 for presence).
    let messageCount: Int

    struct Acknowledgement: Sendable {
        let sessionID: Int
        let range: Range<Int>
        let frame: ByteBuffer
    }

    init(room: String, bytes: ByteBuffer, acknowledgements: [Acknowledgement], lastMessageID: Int64?, messageCount: Int = 0) {
        self.room = room
        self.bytes = bytes
        self.acknowledgements = acknowledgements
        self.lastMessageID = lastMessageID
        self.messageCount = messageCount
    }

    /// The buffers to write to session `sessionID`, in order: the shared bytes, or slices of
    /// them with the session's own acknowledgements spliced in.
    func buffers(for sessionID: Int) -> BuffersForSession {
        guard !acknowledgements.isEmpty, acknowledgements.contains(where: { $0.sessionID == sessionID }) else {
            return .shared(bytes)
        }
        var parts: [ByteBuffer] = []
        var position = 0
        for acknowledgement in acknowledgements where acknowledgement.sessionID == sessionID {
            if acknowledgement.range.lowerBound > position {
                parts.append(bytes.getSlice(at: bytes.readerIndex + position, length: acknowledgement.range.lowerBound - position)!)
            }
            if acknowledgement.frame.readableBytes > 0 { parts.append(acknowledgement.frame) }
            position = acknowledgement.range.upperBound
        }
        if position < bytes.readableBytes {
            parts.append(bytes.getSlice(at: bytes.readerIndex + position, length: bytes.readableBytes - position)!)
        }
        return .parts(parts)
    }

    enum BuffersForSession {
        case shared(ByteBuffer)
        case parts([ByteBuffer])
    }
}

/// A committed message on its way from the writer to its room, with who to acknowledge.
struct CommittedDelivery: Sendable {
    let message: ChatMessage
    let senderSessionID: Int
    let re: RequestID?
}

extension Broadcast {
    /// Encodes a run of committed messages of one room.
    static func messages(_ deliveries: ArraySlice<CommittedDelivery>, room: String, allocator: ByteBufferAllocator) -> Broadcast {
        var bytes = allocator.buffer(capacity: deliveries.count * 160)
        var acknowledgements: [Acknowledgement] = []
        for delivery in deliveries {
            let start = bytes.writerIndex
            ServerFrame.message(delivery.message, re: nil, into: &bytes)
            if let re = delivery.re {
                var frame = allocator.buffer(capacity: bytes.writerIndex - start + 16)
                ServerFrame.message(delivery.message, re: re, into: &frame)
                acknowledgements.append(Acknowledgement(
                    sessionID: delivery.senderSessionID,
                    range: (start - bytes.readerIndex)..<(bytes.writerIndex - bytes.readerIndex),
                    frame: frame))
            }
        }
        return Broadcast(room: room, bytes: bytes, acknowledgements: acknowledgements, lastMessageID: deliveries.last?.message.id,
                         messageCount: deliveries.count)
    }
}
