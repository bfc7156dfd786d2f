import ChatCore
import ChatProtocol
import NIOCore

/// Room events as PROTOCOL.md's frames.
package enum NativeEncoding {
    package static func write(_ event: RoomEvent, into buffer: inout ByteBuffer) {
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
    package static func replacement(for event: RoomEvent, allocator: ByteBufferAllocator) -> Broadcast.EncodedRun.ReplacedEvent {
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

/// The native syntax as the core encodes runs in it.
package struct NativeEventEncoding: EventEncoding {
    package init() {}

    package func write(_ event: RoomEvent, into bytes: inout ByteBuffer) {
        NativeEncoding.write(event, into: &bytes)
    }
}

extension WireFormat {
    /// PROTOCOL.md's JSON frames, in `framing` (syntax id 0).
    package static func native(framing: Framing = .lines) -> WireFormat {
        WireFormat(syntaxID: 0, encoding: NativeEventEncoding(), framing: framing)
    }

    /// JSON lines on TCP.
    package static let native = WireFormat.native(framing: .lines)
}
