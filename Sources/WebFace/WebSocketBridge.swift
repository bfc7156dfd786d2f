import ChatCore
import NIOCore
import NIOWebSocket

/// Between NIO's WebSocket frame decoder and a wire adapter (native or IRC): a text message's
/// bytes go up as the adapter's input, ended by a newline, so the adapter's own line framer
/// bounds it; control frames are answered here. Going down, the adapter's writes are already
/// WebSocket frames (`Framing.webSocket`) and pass as they are; a close from the adapter sends a
/// close frame first.
package final class WebSocketBridge: ChannelDuplexHandler, @unchecked Sendable {
    package typealias InboundIn = WebSocketFrame
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    /// Inside a fragmented binary message: its continuations are dropped.
    private var isInBinaryMessage = false
    private var sentClose = false

    package init(server: ServerContext) {
        self.server = server
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        server.transports.opened("websocket")
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        server.transports.closed("websocket")
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.maskKey != nil else {
            return fail(context: context, code: 1002, reason: "client frames must be masked")
        }
        switch frame.opcode {
        case .text, .continuation:
            if frame.opcode == .text { isInBinaryMessage = false }
            guard !isInBinaryMessage else { return }
            var bytes = frame.unmaskedData
            if frame.fin { bytes.writeInteger(UInt8(ascii: "\n")) }
            context.fireChannelRead(wrapInboundOut(bytes))
        case .binary:
            fail(context: context, code: 1003, reason: "text messages only")
        case .ping:
            let pong = WebSocketFraming.controlFrame(opcode: WebSocketFraming.pongOpcode, payload: frame.unmaskedData,
                                                     allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            // Echo the status code, then close (RFC 6455, 5.5.1).
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self) ?? 1000
            closeWithFrame(context: context, code: code, reason: "")
        default:
            fail(context: context, code: 1002, reason: "unknown opcode")
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? NIOWebSocketError else { return context.fireErrorCaught(error) }
        switch error {
        case .invalidFrameLength: fail(context: context, code: 1009, reason: "frame too large")
        default: fail(context: context, code: 1002, reason: "protocol error")
        }
    }

    /// The adapter closes (quit, bad password, slow consumer, shutdown): a close frame goes last.
    /// The close goes on once the frame is written (a close would drop it if the socket were
    /// still full), or after 2 s for a peer that reads nothing.
    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !sentClose, mode == .all, context.channel.isActive else {
            return context.close(mode: mode, promise: promise)
        }
        sentClose = true
        let frame = WebSocketFraming.closeFrame(code: 1000, reason: "", allocator: context.channel.allocator)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let deadline = context.eventLoop.scheduleTask(in: .seconds(2)) { bound.value.close(mode: mode, promise: nil) }
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in
            deadline.cancel()
            bound.value.close(mode: mode, promise: promise)
        }
    }

    private func fail(context: ChannelHandlerContext, code: UInt16, reason: String) {
        server.logger.debug("websocket: closing (\(code) \(reason))")
        closeWithFrame(context: context, code: code, reason: reason)
    }

    private func closeWithFrame(context: ChannelHandlerContext, code: UInt16, reason: String) {
        guard !sentClose else { return }
        sentClose = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        let frame = WebSocketFraming.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)
        // Closed from this handler down, so the close frame is not sent twice.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
