import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore
import Storage
import Synchronization

/// IRC (RFC 1459/2812 with IRCv3) on one TCP connection: lines framed by the shared
/// `LineFramer`, parsed by `IRCMessage`, registration and capability negotiation here, every chat
/// request handed to the connection's `Session` as the protocol-neutral request it is, and every
/// answer written back as numerics and lines (SPEC.md, IRC). Touched only on its event loop.
package final class IRCConnection: LineFace, @unchecked Sendable {
    /// RFC 1459's 512 bytes for the line, and IRCv3's 4,096 for a client's tags.
    package static let maxBodyBytes = 512
    package static let maxLineBytes = 4096 + 512

    package let server: ServerContext
    package let serverName: String
    package let framing: Framing
    package var maxLineBytes: Int { Self.maxLineBytes }
    package private(set) var writer: ConnectionWriter?
    package private(set) var session: Session?

    // Registration.
    package var password: String?
    package var requestedNick: String?
    package var hasUser = false
    package var isNegotiatingCaps = false
    package var isRegistered = false
    package var isLoggingIn = false
    /// The account SASL logged in to (the session is active under it before registration ends).
    package var saslAccount: String?
    package var saslState = SASLState.none
    package var capabilities: Set<IRCCapability> = []
    package var capVersion = 0
    package var awayMessage: String?
    /// Commands that came after NICK and USER while the login was being checked.
    package var waitingForRegistration: [IRCMessage] = []
    package static let maxWaitingLines = 32
    package var isReplayingBarrier = false

    package enum SASLState {
        case none
        case awaitingPayload(String)
        case checking
    }

    /// Requests handed to the session, by the id given to them: what their answers mean here.
    package var pending: [Int64: PendingRequest] = [:]
    package var nextRequestID: Int64 = 1
    /// Joins waiting for their replay (sent with no request id), by room.
    package var joinsAwaitingReplay: [String: Int64] = [:]
    package var nextBatchID = 0

    /// What the face keeps for the whole server (AWAY messages).
    package let state: IRCServerState

    package init(server: ServerContext, state: IRCServerState, framing: Framing = .lines) {
        self.server = server
        self.state = state
        self.framing = framing
        self.serverName = server.configuration.server.name
    }

    /// The nick the client has now: the session's name once logged in.
    package var nick: String {
        if let name = session?.user?.name { return name }
        return requestedNick ?? "*"
    }

    package var wireFormat: WireFormat {
        var features: IRCFeatures = []
        if capabilities.contains(.messageTags) { features.insert(.messageTags) }
        if capabilities.contains(.serverTime) { features.insert(.serverTime) }
        if capabilities.contains(.accountTag) { features.insert(.accountTag) }
        return .irc(features, framing: framing)
    }

    // MARK: The connection

    package var logName: String { "irc connection" }

    package func attach(_ writer: ConnectionWriter) {
        self.writer = writer
    }

    package func detach() {
        writer = nil
    }

    package func started(_ session: Session, context: ChannelHandlerContext) {
        self.session = session
        // IRC over WebSocket counts as a web connection (the WebSocket bridge counts it).
        if framing == .lines { server.transports.opened("irc") }
    }

    package func refused(_ reason: String) {
        sendLine(IRCMessage(command: "ERROR", parameters: ["Closing link: \(reason)"]))
    }

    package func ending(_ session: Session) {
        if awayMessage != nil {
            let key = Names.userKey(nick)
            state.awayMessages.withLock { $0[key] = nil }
        }
        if framing == .lines { server.transports.closed("irc") }
        pending = [:]
        self.session = nil
    }

    package func receivedTooLongLine() {
        reply("417", ["Input line was too long"])
    }

    package func received(line: ByteBuffer) {
        handleLine(line)
    }

    private func handleLine(_ line: ByteBuffer) {
        guard let session, !session.isClosedPhase else { return }
        guard line.readableBytesView.contains(where: { $0 != UInt8(ascii: " ") }) else { return }
        guard String(validating: line.readableBytesView, as: UTF8.self) != nil else {
            session.heard()
            sendLine(failure("*", "INVALID_UTF8", "Messages must be UTF-8"))
            return
        }
        let message: IRCMessage
        do {
            message = try IRCMessage.parse(bytes: line.readableBytesView)
        } catch {
            session.heard()
            return // nothing a client can act on; RFC 1459 servers drop such lines silently
        }
        let tagsLength = line.readableBytesView.first == UInt8(ascii: "@")
            ? (line.readableBytesView.firstIndex(of: UInt8(ascii: " ")).map { $0 - line.readerIndex + 1 } ?? 0) : 0
        guard line.readableBytes - tagsLength + 2 <= Self.maxBodyBytes else {
            session.heard()
            reply("417", ["Input line was too long"])
            return
        }
        session.heard()
        handle(message)
    }

    // MARK: Writing

    /// Writes one line (the label and batch tags are the caller's).
    package func sendLine(_ message: IRCMessage) {
        guard let writer else { return }
        let text = message.serialized()
        var buffer = writer.allocator.buffer(capacity: text.utf8.count + 2)
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
        writer.write(lines: buffer, framing: framing)
    }

    /// A numeric (or command) from the server to this client: `:server CODE nick params...`.
    package func numeric(_ code: String, _ parameters: [String]) -> IRCMessage {
        IRCMessage(source: serverName, command: code, parameters: [nick] + parameters)
    }

    /// An IRCv3 standard reply: `FAIL <command> <code> [<context>...] :<description>`.
    package func failure(_ command: String, _ code: String, context: [String] = [], _ description: String) -> IRCMessage {
        IRCMessage(source: serverName, command: "FAIL", parameters: [command, code] + context + [description])
    }

    package func reply(_ code: String, _ parameters: [String]) {
        sendLine(numeric(code, parameters))
    }

    package func makeBatchID() -> String {
        nextBatchID += 1
        return String(nextBatchID, radix: 36)
    }

    /// Sends the lines that answer one command: as they are, or with its label (IRCv3
    /// labeled-response): `ACK` for none, the tag on a single line, a batch around several.
    package func sendResponse(_ lines: [IRCMessage], label: String?) {
        labeled(lines, label: label).forEach(sendLine)
    }

    /// The lines that answer one command as labeled-response has them: as they are without a
    /// label (or the capability), an `ACK` for none, the tag on a single line, a batch around several.
    package func labeled(_ lines: [IRCMessage], label: String?) -> [IRCMessage] {
        guard let label, capabilities.contains(.labeledResponse) else { return lines }
        switch lines.count {
        case 0:
            return [IRCMessage(tags: [("label", label)], source: serverName, command: "ACK")]
        case 1:
            var line = lines[0]
            line.orderedTags.insert(("label", label), at: 0)
            return [line]
        default:
            let batch = makeBatchID()
            var wrapped = [IRCMessage(tags: [("label", label)], source: serverName, command: "BATCH", parameters: ["+" + batch, "labeled-response"])]
            for var line in lines {
                if !line.orderedTags.contains(where: { $0.name == "batch" }) { line.orderedTags.insert(("batch", batch), at: 0) }
                wrapped.append(line)
            }
            wrapped.append(IRCMessage(source: serverName, command: "BATCH", parameters: ["-" + batch]))
            return wrapped
        }
    }

    /// Messages as PRIVMSG lines with this client's tags, inside a batch of `type` when the
    /// client takes batches.
    package func historyLines(_ messages: [ChatMessage], batchType: String?, batchTarget: String?) -> [IRCMessage] {
        var lines: [IRCMessage] = []
        var batch: String?
        if let batchType, capabilities.contains(.batch) {
            let id = makeBatchID()
            batch = id
            lines.append(IRCMessage(source: serverName, command: "BATCH", parameters: ["+" + id, batchType] + (batchTarget.map { [$0] } ?? [])))
        }
        let features = wireFormat.ircFeatures
        guard let allocator = context?.channel.allocator else { return [] }
        var buffer = allocator.buffer(capacity: 256 * messages.count)
        for message in messages {
            IRCEncoding.writeMessage(message, isAccount: false, features: features, batch: batch, into: &buffer)
        }
        lines += self.messages(in: buffer)
        if let batch { lines.append(IRCMessage(source: serverName, command: "BATCH", parameters: ["-" + batch])) }
        return lines
    }

    /// The lines an encoder wrote, as messages again: an answer that may be labeled is a list of
    /// messages, and the encoders (one for live and stored messages, one for names) stay the only
    /// place their lines are made.
    package func messages(in buffer: ByteBuffer) -> [IRCMessage] {
        String(buffer: buffer).split(separator: "\r\n").compactMap { try? IRCMessage.parse(String($0)) }
    }

    // MARK: Requests to the session

    package struct PendingRequest {
        package let kind: Kind
        package let label: String?
        /// Lines gathered for the answer so far (a JOIN's own lines wait for its replay).
        package var lines: [IRCMessage] = []

        package enum Kind {
            case login(viaSASL: Bool)
            case join(channel: String)
            case part(channel: String, reason: String?)
            case message(target: String, command: String)
            case names(channel: String)
            case who(mask: String)
            case list
            case chathistory(target: String)
            case targets(from: Int64, to: Int64, limit: Int)
            case search
            case markRead(channel: String)
            /// A command answered here, once the session answered everything before it.
            case barrier(IRCMessage)
        }
    }

    /// Hands `request` to the session, remembering what its answer means.
    package func submit(_ request: ClientRequest, _ kind: PendingRequest.Kind, label: String?) {
        let id = nextRequestID
        nextRequestID += 1
        pending[id] = PendingRequest(kind: kind, label: label)
        session?.receive(.frame(ClientFrame(id: .integer(id), request: request)))
    }

    /// The pending request an answer is for, taken out of the table when `finishing`.
    package func take(_ re: RequestID?) -> (Int64, PendingRequest)? {
        guard case .integer(let id)? = re, let request = pending.removeValue(forKey: id) else { return nil }
        // An idle connection keeps no table storage (10,000 of them add up).
        if pending.isEmpty { pending = [:] }
        return (id, request)
    }
}

/// What the IRC face keeps for the whole server, shared by its connections (over TCP and
/// WebSocket): `AWAY` messages by user key, which other IRC users see (301) in WHOIS and when
/// they send the user a direct message.
package final class IRCServerState: Sendable {
    package let awayMessages = Mutex<[String: String]>([:])

    package init() {}
}
