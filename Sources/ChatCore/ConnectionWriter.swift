import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Everything a wire adapter writes to its connection goes through here, in order.
///
/// On a plain TCP connection whose socket the server accepted itself (`SocketListener`), a
/// flushed write goes straight to the socket, one `send`, whenever NIO holds nothing of the
/// connection's: the fan-out's per-member write then touches this object and the kernel, not
/// NIO's pipeline, channel and pending-write queue (issue 10). Whatever the socket does not take
/// at once (its buffer is full, or it failed) is handed to NIO with everything written after it,
/// until NIO reports all of it written: bytes keep their order, and NIO's flow control (the
/// write-buffer water marks behind slow-consumer protection) and error handling see every byte
/// that has to wait. Without a socket (TLS, WebSocket), every write is NIO's.
///
/// The socket is NIO's (it closes it), so this writes to it only while the channel is active. NIO
/// closes a connection on its loop in this order (`BaseSocketChannel.close0`): it closes the
/// descriptor, marks the channel inactive, and only then calls out to user code: it fails the
/// writes it holds (whose callbacks run code of ours that may write) and fires `channelInactive`.
/// Between the descriptor's close and `channelInactive` the kernel may already have given its
/// number to a new connection, so every `send`/`writev` first checks `channel.isActive`, which
/// is false from before the first of those callouts; `channelInactive`, `close` and a failed
/// hand-off also stop direct writes for good. The fan-out's pass, a loop task of its own, is
/// never inside those callouts and skips the check (`writeFromFanOut`). `server.directWrites`
/// false turns the path off.
/// Used on the connection's event loop only (asserted).
package final class ConnectionWriter: @unchecked Sendable {
    package let context: ChannelHandlerContext
    /// The connection's socket when writes may go to it directly, or -1.
    private let socket: CInt
    /// Batches handed to NIO whose last write has not completed yet: while any has not, every
    /// write goes to NIO too, behind them.
    private var handedToNIO = 0
    private var isOpen = true
    /// Written but not flushed (direct mode): sent together, in one `writev`, by `flush`.
    private var unflushed: [ByteBuffer] = []

    package init(context: ChannelHandlerContext, socket: CInt?) {
        self.context = context
        self.socket = socket ?? -1
    }

    package var allocator: ByteBufferAllocator { context.channel.allocator }

    /// Writes `bytes`, and flushes with `flush`.
    package func write(_ bytes: ByteBuffer, flush: Bool) {
        write(bytes, flush: flush, checksChannel: true)
    }

    /// `write` for the fan-out's per-member pass (`LoopOutbox`), which runs as an event-loop task
    /// of its own and so never inside NIO's close: a close it causes (a failed write handed to
    /// NIO) has finished, and stopped this writer, before the call returns. It skips the channel
    /// check, whose three pointer hops to objects that are cold by a member's turn doubled the
    /// user CPU of a delivery (docs/performance.md, issue 24).
    package func writeFromFanOut(_ bytes: ByteBuffer, flush: Bool) {
        write(bytes, flush: flush, checksChannel: false)
    }

    private func write(_ bytes: ByteBuffer, flush: Bool, checksChannel: Bool) {
        // In debug builds only (an `assert`: release builds do not even touch the context).
        assert(context.eventLoop.inEventLoop, "a ConnectionWriter is used on its event loop only")
        guard socket >= 0 else {
            if flush { context.writeAndFlush(NIOAny(bytes), promise: nil) } else { context.write(NIOAny(bytes), promise: nil) }
            return
        }
        guard isOpen else { return }
        if flush && unflushed.isEmpty && handedToNIO == 0 {
            send(bytes, checksChannel: checksChannel) // the fan-out's steady state: one run, one member, one system call
        } else {
            unflushed.append(bytes)
            if flush { self.flush(checksChannel: checksChannel) }
        }
    }

    /// Sends what was written since the last flush.
    package func flush() {
        flush(checksChannel: true)
    }

    /// `flush` for the fan-out's pass (see `writeFromFanOut`).
    package func flushFromFanOut() {
        flush(checksChannel: false)
    }

    private func flush(checksChannel: Bool) {
        // In debug builds only (an `assert`: release builds do not even touch the context).
        assert(context.eventLoop.inEventLoop, "a ConnectionWriter is used on its event loop only")
        guard socket >= 0 else {
            context.flush()
            return
        }
        guard isOpen, !unflushed.isEmpty else { return }
        var buffers: [ByteBuffer] = []
        swap(&buffers, &unflushed)
        if handedToNIO > 0 {
            hand(buffers[...])
        } else if buffers.count == 1 {
            send(buffers[0], checksChannel: checksChannel)
        } else {
            send(buffers, checksChannel: checksChannel)
        }
    }

    /// Writes `last` after everything written before it, and returns when it has been written
    /// (or failed).
    package func writeLast(_ last: ByteBuffer) -> EventLoopFuture<Void> {
        guard socket >= 0 else { return context.writeAndFlush(NIOAny(last)) }
        flush()
        guard isOpen else { return context.eventLoop.makeSucceededVoidFuture() }
        // NIO writes it, behind anything it still holds: its promise says when it is out.
        return hand(CollectionOfOne(last))
    }

    /// Flushes, then closes the connection.
    package func close() {
        flush()
        isOpen = false
        context.close(mode: .all, promise: nil)
    }

    /// The connection closed (`channelInactive`): nothing more goes to its socket.
    package func connectionClosed() {
        isOpen = false
        unflushed = []
    }

    /// Where a fan-out touches memory first when it writes to this connection: this object, or
    /// (without a socket) NIO's context, pipeline and channel. The drain prefetches them a few
    /// members ahead.
    package var writePathAddresses: (UnsafeRawPointer, UnsafeRawPointer?, UnsafeRawPointer?) {
        func address(_ object: AnyObject) -> UnsafeRawPointer { UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()) }
        if socket >= 0 { return (address(self), nil, nil) }
        return (address(context), address(context.pipeline), address(context.channel as AnyObject))
    }

    // MARK: The socket

    /// Whether the socket is still this connection's: NIO marks the channel inactive before it
    /// runs any code of ours after closing the descriptor (see the type's comment). The fan-out's
    /// pass need not ask the channel (`writeFromFanOut`).
    private func socketIsLive(checksChannel: Bool) -> Bool {
        guard isOpen, !checksChannel || context.channel.isActive else {
            isOpen = false
            return false
        }
        return true
    }

    /// One buffer: `send`, NIO for whatever it did not take.
    private func send(_ bytes: ByteBuffer, checksChannel: Bool) {
        let count = bytes.readableBytes
        guard count > 0 else { return }
        guard socketIsLive(checksChannel: checksChannel) else { return }
        let sent = bytes.withUnsafeReadableBytes { Glibc.send(socket, $0.baseAddress, count, CInt(MSG_NOSIGNAL)) }
        guard sent < count else { return }
        var rest = bytes
        if sent > 0 { rest.moveReaderIndex(forwardBy: sent) }
        // EAGAIN (the socket's buffer is full) or an error: NIO retries when the socket is
        // writable again, or reports the error and closes the connection.
        hand(CollectionOfOne(rest))
    }

    /// `IOV_MAX` on Linux (not imported into Swift).
    private static let maxVectors = 1024

    /// Several buffers: one `writev` (per `IOV_MAX` of them), NIO for whatever it did not take.
    private func send(_ buffers: [ByteBuffer], checksChannel: Bool) {
        guard socketIsLive(checksChannel: checksChannel) else { return }
        var start = 0
        while start < buffers.count {
            let end = min(buffers.count, start + Self.maxVectors)
            let expected = buffers[start..<end].reduce(0) { $0 + $1.readableBytes }
            let sent = withUnsafeTemporaryAllocation(of: iovec.self, capacity: end - start) { vectors in
                for index in start..<end {
                    // The array keeps every buffer's storage alive (and unchanged) until `writev`
                    // returns, so the pointer stays valid outside its closure.
                    let base = buffers[index].withUnsafeReadableBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress) }
                    vectors[index - start] = iovec(iov_base: base, iov_len: buffers[index].readableBytes)
                }
                return writev(socket, vectors.baseAddress, CInt(end - start))
            }
            if sent == expected {
                start = end
                continue
            }
            // The first buffer not wholly sent, its unsent part, and everything after it.
            var rest: [ByteBuffer] = []
            var skipped = max(0, sent)
            for index in start..<buffers.count {
                var buffer = buffers[index]
                if skipped >= buffer.readableBytes {
                    skipped -= buffer.readableBytes
                    continue
                }
                buffer.moveReaderIndex(forwardBy: skipped)
                skipped = 0
                rest.append(buffer)
            }
            hand(rest[...])
            return
        }
    }

    /// Hands `buffers` to NIO, flushed, and counts them until their last write completes; a
    /// failure (the connection is closing) means no more writes of ours go to the socket.
    @discardableResult
    private func hand(_ buffers: some Collection<ByteBuffer>) -> EventLoopFuture<Void> {
        guard !buffers.isEmpty else { return context.eventLoop.makeSucceededVoidFuture() }
        let promise = context.eventLoop.makePromise(of: Void.self)
        var remaining = buffers.count
        for buffer in buffers {
            remaining -= 1
            context.write(NIOAny(buffer), promise: remaining == 0 ? promise : nil)
        }
        context.flush()
        handedToNIO += 1
        promise.futureResult.whenComplete { result in
            self.handedToNIO -= 1
            if case .failure = result { self.isOpen = false }
        }
        return promise.futureResult
    }
}
