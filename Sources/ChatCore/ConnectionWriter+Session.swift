import NIOCore

/// What every wire adapter does the same way with its connection, whatever its protocol.
package extension ConnectionWriter {
    /// Stops reading, writes `last` after everything already queued, and closes once it has
    /// reached the client or after `allowance`: a merely slow client still reads why it goes.
    func writeLastAndClose(_ last: ByteBuffer, framing: Framing, within allowance: TimeAmount) {
        let channel = context.channel
        let last = framing.framed(last, allocator: channel.allocator)
        channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        // Writes complete in order: this one only once everything queued before it is written.
        let delivered = writeLast(last)
        let deadline = channel.eventLoop.scheduleTask(in: allowance) { channel.close(promise: nil) }
        delivered.whenComplete { _ in
            deadline.cancel()
            channel.close(promise: nil)
        }
    }

    /// Writes a run to the session `sessionID`: its shared encoding in `format` in one write (and
    /// flush, with `flush`), or, when some of its events are the session's own, the shared parts
    /// around them with each replaced as `replace` says.
    func write(_ run: Broadcast, as format: WireFormat, sessionID: Int, flush: Bool,
               replace: (_ index: Int, _ event: RoomEvent, _ frames: ByteBuffer) -> Broadcast.EncodedRun.ReplacedEvent) {
        let encoded = run.encoded(as: format)
        let personal = run.personalEvents(of: sessionID)
        guard !personal.isEmpty else {
            write(encoded.bytes, flush: flush)
            return
        }
        let allocator = self.allocator
        encoded.write(personal: personal, events: run.events, to: { write($0, flush: false) }) { index, event, frames in
            // Replacements are lines: framed here like the rest of the session's own writes.
            let replaced = replace(index, event, frames)
            guard format.framing == .webSocket, case .with(let lines?) = replaced else { return replaced }
            return .with(format.framing.framed(lines, allocator: allocator))
        }
        if flush { self.flush() }
    }

    /// Writes `lines` (whole lines of the connection's protocol) in the connection's framing.
    func write(lines: ByteBuffer, framing: Framing, flush: Bool = false) {
        write(framing.framed(lines, allocator: allocator), flush: flush)
    }
}

package extension ChannelHandlerContext {
    /// Pauses or resumes reading from the client.
    func setReading(_ isReading: Bool) {
        channel.setOption(ChannelOptions.autoRead, value: isReading).whenFailure { _ in }
        if isReading { read() }
    }
}
