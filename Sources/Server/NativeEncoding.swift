import ChatProtocol
import NIOCore

/// Room events as PROTOCOL.md's frames.
enum NativeEncoding {
    static func write(_ event: RoomEvent, into buffer: inout ByteBuffer) {
        switch event {
        case .message(let message, _):
            ServerFrame.message(message, re: nil, into: &buffer)
        case .presence(let presence):
            ServerFrame.presence(room: presence.room, name: presence.name, event: presence.event, reason: presence.reason,
                                 timestamp: presence.timestamp, into: &buffer)
        case .tags:
            break // IRC's TAGMSG: the native protocol has no tags
        }
    }

    /// What a session gets in place of its own events: its messages carry its request id (the
    /// acknowledgement), and a joiner is sent nothing up to its own join.
    static func replacement(for event: RoomEvent, allocator: ByteBufferAllocator) -> Broadcast.EncodedRun.ReplacedEvent {
        switch event {
        case .message(let message, let author):
            guard let re = author.re else { return .keep }
            var frame = allocator.buffer(capacity: 160 + message.text.utf8.count)
            ServerFrame.message(message, re: re, into: &frame)
            return .with(frame)
        case .presence:
            return .skipThrough
        case .tags:
            return .with(nil)
        }
    }
}
