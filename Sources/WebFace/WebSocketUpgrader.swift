import IRCFace
import NativeFace
import ChatCore
import Crypto
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The WebSocket handshake at `/ws` (RFC 6455, 4.2): same-origin browsers and non-browser
/// clients only, version 13, and the subprotocol `text.ircv3.net` for IRC (else the native
/// protocol). NIO's own upgrader installs its frame encoder, which takes frames one by one; our
/// adapters write runs that are already framed (once per format, not per recipient), so this
/// upgrader installs only NIO's frame decoder and the bridge.
package struct WebSocketUpgrader: HTTPServerProtocolUpgrader, Sendable {
    package static let ircSubprotocol = "text.ircv3.net"

    /// An upgrade this server does not make: NIO passes the request on as plain HTTP, and
    /// `WebHTTPHandler` answers why.
    package struct Refused: Error {}

    package let supportedProtocol = "websocket"
    package let requiredUpgradeHeaders: [String] = []
    package let server: ServerContext
    /// Whether the connection's page handler admitted it: one refused by the abuse limits is
    /// answered 503 by that handler, never upgraded (asked on the connection's loop).
    package let isAdmitted: @Sendable () -> Bool
    /// The IRC face's state, for WebSocket clients speaking IRC.
    package let ircState: IRCServerState

    package init(server: ServerContext, ircState: IRCServerState, isAdmitted: @escaping @Sendable () -> Bool) {
        self.server = server
        self.ircState = ircState
        self.isAdmitted = isAdmitted
    }

    package func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        let headers = upgradeRequest.headers
        guard isAdmitted(), WebRequest.path(of: upgradeRequest.uri) == "/ws",
              WebRequest.isAllowedOrigin(upgradeRequest, allowed: server.configuration.web.allowedOrigins),
              headers["sec-websocket-version"].first == "13",
              let key = headers["sec-websocket-key"].first, headers["sec-websocket-key"].count == 1,
              !key.isEmpty, key.utf8.count <= 64 else {
            return channel.eventLoop.makeFailedFuture(Refused())
        }
        var response = initialResponseHeaders
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        response.replaceOrAdd(name: "Upgrade", value: "websocket")
        response.replaceOrAdd(name: "Connection", value: "upgrade")
        response.add(name: "Sec-WebSocket-Accept", value: Base64.encode(Array(digest)))
        if Self.speaksIRC(upgradeRequest) { response.add(name: "Sec-WebSocket-Protocol", value: Self.ircSubprotocol) }
        return channel.eventLoop.makeSucceededFuture(response)
    }

    package func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        let server = self.server
        let irc = Self.speaksIRC(upgradeRequest)
        return channel.eventLoop.makeCompletedFuture {
            // A message is taken line by line by the adapter's framer (a line over the limit is
            // `too_long`, as on TCP); one frame may be a little over it, and no more.
            let maxLineBytes = irc ? IRCConnection.maxLineBytes : server.configuration.limits.maxLineBytes
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxLineBytes + 1024)))
            try pipeline.addHandler(WebSocketBridge(server: server))
            if irc {
                try pipeline.addHandler(LineConnection(IRCConnection(server: server, state: ircState, framing: .webSocket), server: server))
            } else {
                try pipeline.addHandler(LineConnection(NativeConnection(server: server, framing: .webSocket), server: server))
            }
        }
    }

    private static func speaksIRC(_ request: HTTPRequestHead) -> Bool {
        request.headers[canonicalForm: "sec-websocket-protocol"].contains { $0.lowercased() == ircSubprotocol }
    }
}

/// What the web listener's handlers both need to know about a request.
package enum WebRequest {
    /// The path of a request target, without its query.
    package static func path(of uri: String) -> Substring {
        uri.prefix { $0 != "?" && $0 != "#" }
    }

    /// Whether a browser's request may open a WebSocket: its `Origin` is the page this server
    /// serves (it names the host it asked for, `Host`) or one of `allowed` (`web.allowedOrigins`).
    /// Requests without `Origin` are not from a browser's page (bots, command-line clients) and
    /// are let through; `Origin: null` is refused.
    package static func isAllowedOrigin(_ request: HTTPRequestHead, allowed: [String]) -> Bool {
        guard let origin = request.headers["origin"].first?.lowercased() else { return true }
        if allowed.contains(origin) { return true }
        guard let host = request.headers["host"].first, !host.isEmpty else { return false }
        for scheme in ["http://", "https://"] where origin.hasPrefix(scheme) {
            return origin.dropFirst(scheme.count) == host.lowercased()
        }
        return false
    }
}
