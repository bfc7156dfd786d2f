import ChatCore
import NIOCore
import NIOHTTP1

/// The web listener's plain HTTP: the client's page and files, `/healthz`, and clear refusals
/// for everything else (a WebSocket upgrade at `/ws` never reaches here unless it was refused).
/// Requests carry no bodies; one that sends more than a little is answered 413 and closed.
package final class WebHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = HTTPServerRequestPart
    package typealias OutboundOut = HTTPServerResponsePart

    package static let maxBodyBytes = 4096
    /// What the page may do: its own script, style and WebSocket, nothing inline, no frames.
    package static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    private let assets: WebClientAssets
    private let health: @Sendable () -> String
    private let admission: Admission
    private let allowedOrigins: [String]
    private var request: HTTPRequestHead?
    private var bodyBytes = 0
    /// The address this connection is counted under while it is plain HTTP (an anonymous peer,
    /// like a chat connection not logged in yet: `limits.maxPendingLogins*` bound both).
    private var admittedAddress: String?
    /// Over the limits: the first request is answered 503, and the connection closed.
    private var refusal: String?

    /// Whether the abuse limits let this connection in (a refused one gets 503 and no upgrade).
    package var isAdmitted: Bool { admittedAddress != nil }

    package init(assets: WebClientAssets, admission: Admission, allowedOrigins: [String], health: @escaping @Sendable () -> String) {
        self.assets = assets
        self.allowedOrigins = allowedOrigins
        self.admission = admission
        self.health = health
    }

    package func channelActive(context: ChannelHandlerContext) {
        let address = context.remoteAddress?.ipAddress ?? "?"
        if let refused = admission.admit(address) {
            // HTTP answers requests only: the 503 waits for one, for 2 seconds at most.
            refusal = refused.message
            let channel = context.channel
            context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        } else {
            admittedAddress = address
        }
        context.fireChannelActive()
    }

    /// On close, as the connection goes (NIO removes handlers only in a later task, and a new
    /// connection from the same address may be admitted before it).
    package func channelInactive(context: ChannelHandlerContext) {
        releaseAdmission()
        context.fireChannelInactive()
    }

    /// When a WebSocket upgrade takes the connection over (it is then admitted as a chat
    /// connection), or on close if not yet released.
    package func handlerRemoved(context: ChannelHandlerContext) {
        releaseAdmission()
    }

    private func releaseAdmission() {
        if let admittedAddress { admission.release(admittedAddress, wasPending: true) }
        admittedAddress = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let refusal {
            if case .end = unwrapInboundIn(data) {
                self.refusal = nil
                respond(context: context, status: .serviceUnavailable, text: refusal + "\n", keepAlive: false)
            }
            return
        }
        guard admittedAddress != nil else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            bodyBytes = 0
        case .body(let body):
            bodyBytes += body.readableBytes
            if bodyBytes > Self.maxBodyBytes, request != nil {
                request = nil
                respond(context: context, status: .payloadTooLarge, text: "request bodies are not accepted here\n", keepAlive: false)
            }
        case .end:
            guard let head = request else { return }
            request = nil
            route(context: context, head)
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A connection that sent no request for a while (IdleStateHandler) is closed.
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused upgrade goes on as a plain request, answered in `route`.
        if error is WebSocketUpgrader.Refused { return }
        context.close(promise: nil)
    }

    private func route(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let keepAlive = head.isKeepAlive
        guard head.method == .GET || head.method == .HEAD else {
            var headers = HTTPHeaders([("Allow", "GET, HEAD")])
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            return respond(context: context, status: .methodNotAllowed, headers: headers, body: ByteBuffer(string: "method not allowed\n"),
                           isHead: false, keepAlive: keepAlive)
        }
        let path = WebRequest.path(of: head.uri)
        switch path {
        case "/healthz":
            var headers = HTTPHeaders([("Content-Type", "application/json"), ("Cache-Control", "no-store")])
            headers.add(name: "X-Content-Type-Options", value: "nosniff")
            respond(context: context, status: .ok, headers: headers, body: ByteBuffer(string: health()), isHead: head.method == .HEAD,
                    keepAlive: keepAlive)
        case "/ws":
            // An upgrade that got here was refused by the upgrader.
            if head.headers["upgrade"].contains(where: { $0.lowercased() == "websocket" }) {
                if !WebRequest.isAllowedOrigin(head, allowed: allowedOrigins) {
                    respond(context: context, status: .forbidden, text: "WebSocket origin not allowed\n", keepAlive: false)
                } else {
                    respond(context: context, status: .badRequest, text: "bad WebSocket handshake (RFC 6455, version 13)\n", keepAlive: false)
                }
            } else {
                var headers = HTTPHeaders([("Upgrade", "websocket"), ("Connection", "Upgrade")])
                headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
                respond(context: context, status: .upgradeRequired, headers: headers, body: ByteBuffer(string: "a WebSocket endpoint\n"),
                        isHead: head.method == .HEAD, keepAlive: keepAlive)
            }
        default:
            guard let asset = assets[String(path)] else {
                return respond(context: context, status: .notFound, text: "not found\n", keepAlive: keepAlive)
            }
            var headers = HTTPHeaders([("Content-Type", asset.contentType), ("X-Content-Type-Options", "nosniff")])
            if let version = asset.version, head.uri.hasSuffix("?v=" + version) {
                headers.add(name: "Cache-Control", value: "public, max-age=31536000, immutable")
            } else {
                headers.add(name: "Cache-Control", value: "no-cache")
            }
            if asset.contentType.hasPrefix("text/html") {
                headers.add(name: "Content-Security-Policy", value: Self.contentSecurityPolicy)
                headers.add(name: "Referrer-Policy", value: "no-referrer")
                headers.add(name: "X-Frame-Options", value: "DENY")
            }
            respond(context: context, status: .ok, headers: headers, body: asset.body, isHead: head.method == .HEAD, keepAlive: keepAlive)
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, text: String, keepAlive: Bool) {
        let headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")])
        respond(context: context, status: status, headers: headers, body: ByteBuffer(string: text), isHead: false, keepAlive: keepAlive)
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer,
                         isHead: Bool, keepAlive: Bool) {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !isHead { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let sent = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            sent.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
