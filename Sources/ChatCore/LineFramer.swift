import NIOCore

/// Splits a byte stream into lines ending in LF (a CR before it is dropped), holding at most
/// `maxLineBytes` of an unfinished line: a longer line is reported once as `tooLong` and its
/// bytes are dropped up to its newline. One framer for every line protocol (native, IRC); a
/// struct inside the connection's handler rather than a handler of its own, so a read costs no
/// extra pipeline hop and a complete line is a slice of the read buffer, not a copy.
package struct LineFramer {
    package enum Line {
        case line(ByteBuffer)
        case tooLong
    }

    package let maxLineBytes: Int
    /// The start of a line whose end has not arrived yet.
    private var partialLine: ByteBuffer?
    /// Inside a line over the limit: its bytes are dropped until its newline.
    private var isDiscardingLine = false

    package init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
    }

    /// Calls `body` with every line completed by `buffer`, in order, and keeps the rest. `body`
    /// may close the connection, so it must not touch the framer (exclusive access).
    package mutating func process(_ buffer: inout ByteBuffer, allocator: ByteBufferAllocator, _ body: (Line) -> Void) {
        while buffer.readableBytes > 0 {
            guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                keepPartial(&buffer, allocator: allocator)
                return
            }
            let length = newline - buffer.readerIndex
            if isDiscardingLine {
                buffer.moveReaderIndex(forwardBy: length + 1)
                isDiscardingLine = false
                body(.tooLong)
                continue
            }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if var partial = partialLine {
                partialLine = nil
                partial.writeBuffer(&line)
                line = partial
            }
            if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
            body(line.readableBytes <= maxLineBytes ? .line(line) : .tooLong)
        }
    }

    private mutating func keepPartial(_ buffer: inout ByteBuffer, allocator: ByteBufferAllocator) {
        if isDiscardingLine {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return
        }
        let total = (partialLine?.readableBytes ?? 0) + buffer.readableBytes
        if total > maxLineBytes + 1 {
            partialLine = nil
            isDiscardingLine = true
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return
        }
        if partialLine == nil {
            // Copy, so the (large) read buffer is not kept alive for a few bytes.
            var copy = allocator.buffer(capacity: max(buffer.readableBytes, 64))
            copy.writeBuffer(&buffer)
            partialLine = copy
        } else {
            partialLine!.writeBuffer(&buffer)
        }
    }
}
