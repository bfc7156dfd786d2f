import NIOCore

/// What every wire adapter does the same way with its channel, whatever its protocol.
extension ChannelHandlerContext {
    /// Flushes what is written, then closes.
    func flushAndClose() {
        flush()
        close(mode: .all, promise: nil)
    }

    /// Stops reading, writes `last` after everything already queued, and closes once it has
    /// reached the client or after `allowance`: a merely slow client still reads why it goes.
    func writeLastAndClose(_ last: ByteBuffer, within allowance: TimeAmount) {
        let channel = self.channel
        channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        // Writes complete in order: this one only once everything queued before it is written.
        let delivered = writeAndFlush(NIOAny(last))
        let deadline = channel.eventLoop.scheduleTask(in: allowance) { channel.close(promise: nil) }
        delivered.whenComplete { _ in
            deadline.cancel()
            channel.close(promise: nil)
        }
    }

    /// Pauses or resumes reading from the client.
    func setReading(_ isReading: Bool) {
        channel.setOption(ChannelOptions.autoRead, value: isReading).whenFailure { _ in }
        if isReading { read() }
    }
}
