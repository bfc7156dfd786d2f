import NIOCore

/// What every line protocol does the same way with its connection (native JSON lines, IRC; on
/// TCP or inside WebSocket frames): the writer (and with it the direct socket path's safety
/// calls), admission and the session, framing lines with a bounded buffer, flushing after each
/// read, slow-consumer protection, and closing. A face subclasses it and plugs in what differs:
/// what it says when it starts or is refused, and what a line means.
class LineConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let server: ServerContext
    let framing: Framing
    /// Everything the face writes goes through it, in order.
    private(set) var writer: ConnectionWriter?
    /// The handler's context while it is in the pipeline (the writer's).
    var context: ChannelHandlerContext? { writer?.context }
    /// The connection's socket, when nothing stands between this handler and it (plain TCP).
    private let socket: CInt?
    private(set) var session: Session?
    private var framer: LineFramer

    init(server: ServerContext, framing: Framing, socket: CInt?, maxLineBytes: Int) {
        self.server = server
        self.framing = framing
        self.socket = socket
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
    }

    // MARK: What a face plugs in

    /// The connection was admitted and has its session.
    func started(_ session: Session, context: ChannelHandlerContext) {}
    /// The connection was refused (`reason` for the client); it is closed after this.
    func refused(_ reason: String) {}
    /// One line, without its ending.
    func received(line: ByteBuffer) {}
    /// A line longer than the face's limit was discarded.
    func receivedTooLongLine() {}
    /// The connection closed; `session` is about to be let go.
    func ending(_ session: Session) {}
    /// The face's name in the log.
    var logName: String { "connection" }

    // MARK: The channel

    func handlerAdded(context: ChannelHandlerContext) {
        writer = ConnectionWriter(context: context, socket: socket)
        // Added to a connection that is already open (a WebSocket after its upgrade).
        if context.channel.isActive { start(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        writer?.connectionClosed()
        writer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard session == nil else { return }
        guard let output = self as? any SessionOutput else { return }
        switch server.admitConnection(on: context, output: output) {
        case .refused(let reason):
            refused(reason)
            writer?.close()
        case .session(let session):
            self.session = session
            started(session, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        writer?.connectionClosed()
        if let session {
            ending(session)
            server.connectionClosed(session)
        }
        session = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        framer.process(&buffer, allocator: context.channel.allocator) { line in
            switch line {
            case .line(let line): received(line: line)
            case .tooLong: receivedTooLongLine()
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writer?.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable { session?.slowConsumer() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.logger.debug("\(logName) error: \(error)")
        writer?.connectionClosed()
        context.close(promise: nil)
    }

    // MARK: For the faces' SessionOutput

    /// Flushes what is written, then closes the connection.
    func close() {
        writer?.close()
    }

    func flush() {
        writer?.flush()
    }

    var sharedWriter: ConnectionWriter? { writer }

    /// Pauses or resumes reading from the client.
    func setReading(_ isReading: Bool) {
        context?.setReading(isReading)
    }

    /// Stops reading, writes `lines` after everything already queued, and closes once they have
    /// reached the client or after `allowance`.
    func writeFinal(_ lines: ByteBuffer, within allowance: TimeAmount) {
        writer?.writeLastAndClose(lines, framing: framing, within: allowance)
    }
}
