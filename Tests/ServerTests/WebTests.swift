import ChatConfiguration
import ChatProtocol
import ChatTestSupport
import Foundation
import IRCProtocol
import Testing

/// SPEC.md, `web`: the web listener over real sockets — the page and `/healthz` over HTTP, the
/// native protocol and IRC over WebSocket at `/ws`, beside TCP clients in the same rooms.
@Suite struct WebTests {
    func withWebServer(_ adjust: @escaping (inout ServerConfiguration) -> Void = { _ in },
                       _ body: (TestServer, Int) async throws -> Void) async throws {
        try await withServer({ configuration in
            configuration.web.enabled = true
            configuration.web.port = 0
            adjust(&configuration)
        }) { server in
            try await body(server, try #require(server.server.webPort))
        }
    }

    @Test func nativeFramesOverWebSocketBesideTCP() async throws {
        try await withWebServer { server, port in
            let browser = try LineClient(webSocketPort: port)
            let greeting = try browser.next()
            #expect(greeting.type == "greeting")
            try browser.login("webber", readGreeting: false)
            _ = try browser.join("lobby")
            let terminal = try server.user("tcpuser")
            _ = try terminal.join("lobby")
            #expect(try browser.next("presence")["name"]?.stringValue == "tcpuser")

            let fromTerminal = try terminal.say("hello browser")
            let received = try browser.next("message")
            #expect(received.text == "hello browser")
            #expect(received.id == fromTerminal.id)
            #expect(received.re == nil, "only the sender's copy carries re")

            let ack = try browser.say("hello terminal")
            #expect(ack.from == "webber")
            #expect(try terminal.next("message").text == "hello terminal")

            // Bounds as on TCP: a line over the limit is too_long, and the connection stays.
            browser.send(String(repeating: "x", count: 16_385))
            #expect(try browser.next("error").code == "too_long")
            // A text message split into fragments is one frame.
            let say = #"{"type":"say","room":"lobby","text":"in pieces","id":"f"}"#
            browser.sendFrame(opcode: 0x1, payload: Array(say.utf8.prefix(10)), fin: false)
            browser.sendFrame(opcode: 0x9, payload: Array("are you there".utf8)) // a ping between fragments
            browser.sendFrame(opcode: 0x0, payload: Array(say.utf8.dropFirst(10)))
            #expect(try browser.answer(to: "f").text == "in pieces")

            // Stored before delivery: the history has both, in order.
            let history = try terminal.request(["type": "history", "room": "lobby", "before": 1_000_000, "limit": 10])
            let texts = history.messages.compactMap { $0["text"]?.stringValue }
            #expect(texts == ["hello browser", "hello terminal", "in pieces"])

            browser.send(#"{"type":"quit","reason":"tab closed"}"#)
            #expect(try browser.next("bye").type == "bye")
            #expect(try browser.readUntilClosed().isEmpty)
            #expect(browser.closeCode == 1000)
            let leave = try terminal.next("presence")
            #expect(leave["event"]?.stringValue == "leave")
            #expect(leave["reason"]?.stringValue == "tab closed")
        }
    }

    @Test func ircOverWebSocketWithTheIRCv3Subprotocol() async throws {
        try await withWebServer({ $0.irc.enabled = false }) { server, port in
            let native = try server.user("native")
            _ = try native.join("lobby")
            _ = try native.say("said before")

            let connection = try LineClient(webSocketPort: port, subprotocol: "text.ircv3.net")
            let irc = IRCTestClient(connection: connection)
            let welcome = try irc.register("webirc", capabilities: ["server-time", "message-tags", "batch"])
            #expect(welcome.map(\.command).contains("001"))
            irc.send("JOIN #lobby")
            let joined = try irc.read(until: "the replay") { $0.command == "PRIVMSG" && $0.text == "said before" }
            #expect(joined.map(\.command).contains("JOIN"))
            #expect(joined.last?.tag("msgid") != nil)

            _ = try native.say("live to irc")
            let live = try irc.read(until: "PRIVMSG") { $0.command == "PRIVMSG" }.last!
            #expect(live.parameters == ["#lobby", "live to irc"])
            #expect(live.nick == "native")

            irc.send("PRIVMSG #lobby :from a web IRC client")
            #expect(try native.next("message").text == "from a web IRC client")
            irc.send("QUIT :bye")
            _ = try irc.readUntilClosed()
            #expect(connection.closeCode == 1000)
        }
    }

    @Test func httpServesThePageHealthAndClearRefusals() async throws {
        try await withWebServer { server, port in
            let page = try httpRequest(port, "/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            let policy = try #require(page.headers["content-security-policy"])
            #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
            #expect(page.headers["cache-control"] == "no-cache")
            // Every script and style is linked by its content's version, and then cached for good.
            let start = try #require(page.body.range(of: "src=\"/app.js?v="))
            let script = page.body[page.body.index(start.lowerBound, offsetBy: 5)...].prefix { $0 != "\"" }
            let asset = try httpRequest(port, String(script))
            #expect(asset.status == 200)
            #expect(asset.headers["content-type"] == "text/javascript; charset=utf-8")
            #expect(asset.headers["cache-control"]?.contains("immutable") == true)
            #expect(try httpRequest(port, "/app.js").headers["cache-control"] == "no-cache")

            let health = try httpRequest(port, "/healthz")
            #expect(health.status == 200)
            #expect(health.body.contains(#""status":"ok""#))

            #expect(try httpRequest(port, "/nothing-here").status == 404)
            #expect(try httpRequest(port, "/../../etc/passwd").status == 404)
            #expect(try httpRequest(port, "/", method: "DELETE").status == 405)
            #expect(try httpRequest(port, "/", method: "POST", body: String(repeating: "b", count: 10_000)).status == 413)
            #expect(try httpRequest(port, "/ws").status == 426)
            let upgrade = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
            #expect(try httpRequest(port, "/ws", headers: upgrade + ["Origin: http://evil.example"]).status == 403)
            #expect(try httpRequest(port, "/ws", headers: Array(upgrade.dropLast()) + ["Sec-WebSocket-Version: 8"]).status == 400)
            #expect(throws: LineClient.HandshakeRefused.self) { _ = try LineClient(webSocketPort: port, origin: "null") }
            // The page's own origin is welcome.
            let sameOrigin = try LineClient(webSocketPort: port, origin: "http://127.0.0.1:\(port)")
            #expect(try sameOrigin.next().type == "greeting")
            // Hostile HTTP gets an answer or a close, and the server goes on.
            let hostile = [
                "\u{1}\u{2} NOT HTTP\r\n\r\n",
                "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    + "Sec-WebSocket-Key: a\r\nSec-WebSocket-Key: b\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\nDELETE / HTTP/1.1\r\n\r\n",
                "GET /\u{0}\u{ff} HTTP/1.1\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            ]
            for request in hostile {
                let client = try LineClient(port: port)
                client.send(bytes: Array(request.utf8))
                client.send(bytes: Array("\r\n".utf8))
                _ = try? client.nextLine(timeout: 5)
            }
            let garbage = try LineClient(port: port)
            garbage.send(bytes: Array("\u{1}\u{2} NOT HTTP\r\n\r\n".utf8))
            _ = try? garbage.readUntilClosed()
            let huge = try LineClient(port: port)
            huge.send(bytes: Array(("GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 200_000) + "\r\n\r\n").utf8))
            _ = try? huge.readUntilClosed()
            #expect(try httpRequest(port, "/healthz").status == 200)
        }
    }

    @Test func hostileWebSocketFramesCloseOnlyThatConnection() async throws {
        try await withWebServer { server, port in
            let bystander = try LineClient(webSocketPort: port)
            try bystander.login("bystander")
            _ = try bystander.join("lobby")

            let unmasked = try LineClient(webSocketPort: port)
            _ = try unmasked.next()
            unmasked.sendFrame(opcode: 0x1, payload: Array(#"{"type":"ping"}"#.utf8), masked: false)
            _ = try unmasked.readUntilClosed()
            #expect(unmasked.closeCode == 1002)

            let binary = try LineClient(webSocketPort: port)
            _ = try binary.next()
            binary.sendFrame(opcode: 0x2, payload: [0, 1, 2])
            _ = try binary.readUntilClosed()
            #expect(binary.closeCode == 1003)

            let oversized = try LineClient(webSocketPort: port)
            _ = try oversized.next()
            oversized.sendFrame(opcode: 0x1, payload: Array(repeating: UInt8(ascii: "a"), count: 200_000))
            _ = try oversized.readUntilClosed()
            #expect(oversized.closeCode == 1009)

            let notUTF8 = try LineClient(webSocketPort: port)
            _ = try notUTF8.next()
            notUTF8.sendFrame(opcode: 0x1, payload: [0xFF, 0xFE, 0x7B])
            #expect(try notUTF8.next("error").code == "bad_request")

            // The bystander noticed nothing and still talks.
            #expect(try bystander.say("still here").text == "still here")
            let health = try httpRequest(port, "/healthz")
            #expect(health.status == 200)
        }
    }

    @Test func anonymousHTTPConnectionsAreBoundedLikeConnectionsNotLoggedIn() async throws {
        try await withWebServer({ $0.limits.maxPendingLoginsPerAddress = 2 }) { server, port in
            // Two kept-alive HTTP connections, each answered once (so surely counted).
            var held: [LineClient] = []
            for _ in 0..<2 {
                let client = try LineClient(port: port)
                client.send(bytes: Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                while let line = try client.nextLine(), !line.hasPrefix(#"{"status""#) {}
                held.append(client)
            }
            let refused = try httpRequest(port, "/healthz")
            #expect(refused.status == 503)
            #expect(refused.body.contains("not logged in"))
            // A refused connection is not upgraded either: its handshake is answered 503.
            #expect(throws: LineClient.HandshakeRefused.self) { try LineClient(webSocketPort: port) }
            // One closes: a WebSocket may come in, and once upgraded it counts as a chat
            // connection (and, logged in, as none): the slot is free again. (Each probe holds a
            // slot until the server has closed it, which another event loop may not have done
            // yet when the next connection arrives: the WebSocket is tried until it gets in.)
            held.removeFirst()
            var browser: LineClient?
            try await waitUntil("a WebSocket admitted once the closed connection released its slot") {
                guard let candidate = try? LineClient(webSocketPort: port), (try? candidate.login("counted")) != nil else { return false }
                browser = candidate
                return true
            }
            #expect(try httpRequest(port, "/healthz").status == 200)
            _ = (held, browser)
        }
    }

    /// The same slow-consumer protection as on TCP: the backlog, then `slow_consumer`, then the
    /// close frame.
    @Test func aSlowWebSocketReaderIsDroppedLikeATCPOne() async throws {
        try await withWebServer({ $0.limits.maxOutboundBytes = 256 * 1024 }) { server, port in
            let slow = try LineClient(webSocketPort: port, receiveBuffer: 4096)
            try slow.login("slowweb")
            try slow.join("lobby")
            #expect(try floodUntilDropped(server, member: "slowweb"))
            let frames = try slow.readUntilClosed()
            #expect(frames.last?.code == "slow_consumer", "last: \(frames.last.map(\.line) ?? "none")")
            #expect(frames.count > 10, "it read the backlog first")
            #expect(slow.closeCode == 1000)
        }
    }

    /// A small fuzz over real sockets, deterministic (xorshift, fixed seed): mutated HTTP requests
    /// and random WebSocket frames after a real upgrade. No input stops the server or touches a
    /// bystander; each connection gets an answer or a close.
    @Test func mutatedRequestsAndRandomFramesNeverStopTheServer() async throws {
        try await withWebServer { server, port in
            let bystander = try LineClient(webSocketPort: port)
            try bystander.login("bystander")
            _ = try bystander.join("lobby")
            var random = XorShift(seed: 0x5eed_c4a7)
            let seeds = [
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n\r\n",
                "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                "HEAD /app.js?v=1 HTTP/1.0\r\n\r\n",
            ].map { Array($0.utf8) }
            for _ in 0..<150 {
                var bytes = seeds[random.next(below: seeds.count)]
                for _ in 0..<(1 + random.next(below: 6)) {
                    let position = random.next(below: bytes.count + 1)
                    switch random.next(below: 4) {
                    case 0 where position < bytes.count: bytes[position] = UInt8(random.next(below: 256))
                    case 1: bytes.insert(contentsOf: (0..<random.next(below: 40)).map { _ in UInt8(random.next(below: 256)) }, at: position)
                    case 2 where position < bytes.count: bytes.removeSubrange(position..<min(bytes.count, position + random.next(below: 20)))
                    default: bytes.insert(contentsOf: Array("\r\n".utf8), at: position)
                    }
                }
                let client = try LineClient(port: port)
                client.send(bytes: bytes)
                _ = try? client.nextLine(timeout: 0.3)
            }
            for _ in 0..<60 {
                let client = try LineClient(webSocketPort: port)
                for _ in 0..<(1 + random.next(below: 5)) {
                    let opcode = UInt8(random.next(below: 16))
                    let payload = (0..<random.next(below: 300)).map { _ in UInt8(random.next(below: 256)) }
                    client.sendFrame(opcode: opcode, payload: payload, fin: random.next(below: 3) != 0, masked: random.next(below: 8) != 0)
                }
                _ = try? client.nextLine(timeout: 0.3)
            }
            #expect(try bystander.say("still here").text == "still here")
            #expect(try httpRequest(port, "/healthz").status == 200)
            #expect(try server.user("newcomer").join("lobby").joined.type == "joined")
        }
    }

    @Test func originsOnTheAllowListMayOpenTheWebSocket() async throws {
        try await withWebServer({ $0.web.allowedOrigins = ["https://gamja.example.org"] }) { _, port in
            let allowed = try LineClient(webSocketPort: port, subprotocol: "text.ircv3.net", origin: "https://gamja.example.org")
            allowed.send("NICK gamja\r\nUSER gamja 0 * :gamja")
            #expect(try allowed.nextLine() != nil)
            #expect(throws: LineClient.HandshakeRefused.self) { _ = try LineClient(webSocketPort: port, origin: "https://evil.example.org") }
            #expect(throws: LineClient.HandshakeRefused.self) { _ = try LineClient(webSocketPort: port, origin: "http://gamja.example.org") }
        }
    }
}

/// A seeded pseudo-random source (xorshift64*), so a failing run can be replayed.
struct XorShift {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 1 : seed }
    mutating func next(below bound: Int) -> Int {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return Int((state &* 2_685_821_657_736_338_717) >> 33) % max(1, bound)
    }
}
