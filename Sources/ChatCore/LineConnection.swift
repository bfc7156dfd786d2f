import NIOCore

/// What every line protocol does the same way with its connection (native JSON lines, IRC; on
/// TCP or inside WebSocket frames): the writer (and with it the direct socket path's safety
/// calls), admission and the session, framing lines with a bounded buffer, flushing after each
/// read, slow-consumer protection, and closing. The connection's protocol is a `LineFace` that
/// plugs in what differs: what it says when it starts or is refused, and what a line means.
package final class LineConnection: ChannelInboundHandler, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    package let face: any LineFace
    private let server: ServerContext
    /// The connection's socket, when nothing stands between this handler and it (plain TCP).
    private let socket: CInt?
    private var writer: ConnectionWriter?
    private var session: Session?
    private var framer: LineFramer

    package init(_ face: any LineFace, server: ServerContext, socket: CInt? = nil) {
        self.face = face
        self.server = server
        self.socket = socket
        self.framer = LineFramer(maxLineBytes: face.maxLineBytes)
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        let writer = ConnectionWriter(context: context, socket: socket)
        self.writer = writer
        face.attach(writer)
        // Added to a connection that is already open (a WebSocket after its upgrade).
        if context.channel.isActive { start(context: context) }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        writer?.connectionClosed()
        writer = nil
        face.detach()
    }

    package func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard session == nil else { return }
        switch server.admitConnection(on: context, output: face) {
        case .refused(let reason):
            face.refused(reason)
            writer?.close()
        case .session(let session):
            self.session = session
            face.started(session, context: context)
        }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        writer?.connectionClosed()
        if let session {
            face.ending(session)
            server.connectionClosed(session)
        }
        session = nil
        context.fireChannelInactive()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        framer.process(&buffer, allocator: context.channel.allocator) { line in
            switch line {
            case .line(let line): face.received(line: line)
            case .tooLong: face.receivedTooLongLine()
            }
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        writer?.flush()
        context.fireChannelReadComplete()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable { session?.slowConsumer() }
        context.fireChannelWritabilityChanged()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.logger.debug("\(face.logName) error: \(error)")
        writer?.connectionClosed()
        context.close(promise: nil)
    }
}

/// A line protocol on a `LineConnection`: the session's output, and the answers to what the
/// connection reports. Called on the connection's event loop only.
package protocol LineFace: SessionOutput {
    /// The longest line it takes (longer ones are discarded and reported).
    var maxLineBytes: Int { get }
    /// Its name in the log.
    var logName: String { get }
    /// The writer while the connection is in the pipeline (set by `attach`, cleared by `detach`).
    var writer: ConnectionWriter? { get }
    /// The connection's writer: everything the face writes goes through it, in order.
    func attach(_ writer: ConnectionWriter)
    /// The connection left the pipeline.
    func detach()
    /// The connection was admitted and has its session.
    func started(_ session: Session, context: ChannelHandlerContext)
    /// The connection was refused (`reason` for the client); it is closed after this.
    func refused(_ reason: String)
    /// One line, without its ending.
    func received(line: ByteBuffer)
    /// A line longer than `maxLineBytes` was discarded.
    func receivedTooLongLine()
    /// The connection closed; `session` is about to be let go.
    func ending(_ session: Session)
}

/// What a face's `SessionOutput` does the same way whatever its protocol.
package extension LineFace {
    var context: ChannelHandlerContext? { writer?.context }
    var sharedWriter: ConnectionWriter? { writer }

    func flush() {
        writer?.flush()
    }

    /// Flushes what is written, then closes the connection.
    func close() {
        writer?.close()
    }

    func setReading(_ isReading: Bool) {
        context?.setReading(isReading)
    }
}
