import NIOCore

/// How a connection's bytes are delimited on its transport.
package enum Framing: UInt8, Hashable, Sendable {
    /// A byte stream of lines (TCP, TLS).
    case lines
    /// One WebSocket text message per line (RFC 6455; ircv3.net's WebSocket spec for IRC).
    case webSocket

    /// `lines` (whole lines, each ended by LF or CR LF) as this framing sends them.
    package func framed(_ lines: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        switch self {
        case .lines:
            return lines
        case .webSocket:
            var bytes = allocator.buffer(capacity: lines.readableBytes + 16)
            WebSocketFraming.writeLinesAsTextMessages(lines, into: &bytes)
            return bytes
        }
    }
}

/// Server-to-client WebSocket frames, written straight into buffers: a run is framed once for
/// all its WebSocket members, so this never happens per recipient (the frames are unmasked, as
/// RFC 6455 requires of a server).
package enum WebSocketFraming {
    package static let textOpcode: UInt8 = 0x1
    package static let closeOpcode: UInt8 = 0x8
    package static let pingOpcode: UInt8 = 0x9
    package static let pongOpcode: UInt8 = 0xA

    /// Each line of `lines` (its LF or CR LF dropped) as one final text frame.
    package static func writeLinesAsTextMessages(_ lines: ByteBuffer, into bytes: inout ByteBuffer) {
        lines.withUnsafeReadableBytes { raw in
            var start = 0
            while start < raw.count {
                let newline = raw[start...].firstIndex(of: UInt8(ascii: "\n")) ?? raw.count
                var end = newline
                if end > start, raw[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                writeFrame(opcode: textOpcode, payload: UnsafeRawBufferPointer(rebasing: raw[start..<end]), into: &bytes)
                start = newline + 1
            }
        }
    }

    /// One final, unmasked frame.
    package static func writeFrame(opcode: UInt8, payload: UnsafeRawBufferPointer, into bytes: inout ByteBuffer) {
        bytes.writeInteger(0x80 | opcode)
        switch payload.count {
        case ..<126:
            bytes.writeInteger(UInt8(payload.count))
        case ...0xFFFF:
            bytes.writeInteger(UInt8(126))
            bytes.writeInteger(UInt16(payload.count))
        default:
            bytes.writeInteger(UInt8(127))
            bytes.writeInteger(UInt64(payload.count))
        }
        bytes.writeBytes(payload)
    }

    /// A control frame (close, ping, pong) with `payload` (at most 125 bytes).
    package static func controlFrame(opcode: UInt8, payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var bytes = allocator.buffer(capacity: payload.readableBytes + 2)
        payload.withUnsafeReadableBytes { raw in
            writeFrame(opcode: opcode, payload: UnsafeRawBufferPointer(rebasing: raw.prefix(125)), into: &bytes)
        }
        return bytes
    }

    /// A close frame with a status code (RFC 6455, 7.4) and a short reason.
    package static func closeFrame(code: UInt16, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(code)
        payload.writeString(String(reason.utf8.prefix(120)) ?? "")
        return controlFrame(opcode: closeOpcode, payload: payload, allocator: allocator)
    }
}
