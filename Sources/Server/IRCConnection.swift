import ChatProtocol
import IRCProtocol
import NIOCore
import Storage

/// IRC (RFC 1459/2812 with IRCv3) on one TCP connection: lines framed by the shared
/// `LineFramer`, parsed by `IRCMessage`, registration and capability negotiation here, every chat
/// request handed to the connection's `Session` as the protocol-neutral request it is, and every
/// answer written back as numerics and lines (SPEC.md, IRC). Touched only on its event loop.
final class IRCConnection: LineFace, @unchecked Sendable {
    /// RFC 1459's 512 bytes for the line, and IRCv3's 4,096 for a client's tags.
    static let maxBodyBytes = 512
    static let maxLineBytes = 4096 + 512

    let server: ServerContext
    let serverName: String
    let framing: Framing
    var maxLineBytes: Int { Self.maxLineBytes }
    private(set) var writer: ConnectionWriter?
    private(set) var session: Session?

    // Registration.
    var password: String?
    var requestedNick: String?
    var hasUser = false
    var isNegotiatingCaps = false
    var isRegistered = false
    var isLoggingIn = false
    /// The account SASL logged in to (the session is active under it before registration ends).
    var saslAccount: String?
    var saslState = SASLState.none
    var capabilities: Set<IRCCapability> = []
    var capVersion = 0
    var awayMessage: String?
    /// Commands that came after NICK and USER while the login was being checked.
    var waitingForRegistration: [IRCMessage] = []
    static let maxWaitingLines = 32
    var isReplayingBarrier = false

    enum SASLState {
        case none
        case awaitingPayload(String)
        case checking
    }

    /// Requests handed to the session, by the id given to them: what their answers mean here.
    var pending: [Int64: PendingRequest] = [:]
    var nextRequestID: Int64 = 1
    /// Joins waiting for their replay (sent with no request id), by room.
    var joinsAwaitingReplay: [String: Int64] = [:]
    var nextBatchID = 0

    init(server: ServerContext, framing: Framing = .lines) {
        self.server = server
        self.framing = framing
        self.serverName = server.configuration.server.name
    }

    /// The nick the client has now: the session's name once logged in.
    var nick: String {
        if let name = session?.user?.name { return name }
        return requestedNick ?? "*"
    }

    var wireFormat: WireFormat {
        var features: IRCFeatures = []
        if capabilities.contains(.messageTags) { features.insert(.messageTags) }
        if capabilities.contains(.serverTime) { features.insert(.serverTime) }
        if capabilities.contains(.accountTag) { features.insert(.accountTag) }
        return .irc(features, framing: framing)
    }

    // MARK: The connection

    var logName: String { "irc connection" }

    func attach(_ writer: ConnectionWriter) {
        self.writer = writer
    }

    func detach() {
        writer = nil
    }

    func started(_ session: Session, context: ChannelHandlerContext) {
        self.session = session
        // IRC over WebSocket counts as a web connection (the WebSocket bridge counts it).
        if framing == .lines { server.ircConnections.wrappingAdd(1, ordering: .relaxed) }
    }

    func refused(_ reason: String) {
        sendLine(IRCMessage(command: "ERROR", parameters: ["Closing link: \(reason)"]))
    }

    func ending(_ session: Session) {
        if awayMessage != nil {
            let key = Names.userKey(nick)
            server.awayMessages.withLock { $0[key] = nil }
        }
        if framing == .lines { server.ircConnections.wrappingSubtract(1, ordering: .relaxed) }
        pending = [:]
        self.session = nil
    }

    func receivedTooLongLine() {
        reply("417", ["Input line was too long"])
    }

    func received(line: ByteBuffer) {
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
    func sendLine(_ message: IRCMessage) {
        guard let writer else { return }
        let text = message.serialized()
        var buffer = writer.allocator.buffer(capacity: text.utf8.count + 2)
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
        writer.write(lines: buffer, framing: framing)
    }

    /// A numeric (or command) from the server to this client: `:server CODE nick params...`.
    func numeric(_ code: String, _ parameters: [String]) -> IRCMessage {
        IRCMessage(source: serverName, command: code, parameters: [nick] + parameters)
    }

    /// An IRCv3 standard reply: `FAIL <command> <code> [<context>...] :<description>`.
    func failure(_ command: String, _ code: String, context: [String] = [], _ description: String) -> IRCMessage {
        IRCMessage(source: serverName, command: "FAIL", parameters: [command, code] + context + [description])
    }

    func reply(_ code: String, _ parameters: [String]) {
        sendLine(numeric(code, parameters))
    }

    func makeBatchID() -> String {
        nextBatchID += 1
        return String(nextBatchID, radix: 36)
    }

    /// Sends the lines that answer one command: as they are, or with its label (IRCv3
    /// labeled-response): `ACK` for none, the tag on a single line, a batch around several.
    func sendResponse(_ lines: [IRCMessage], label: String?) {
        labeled(lines, label: label).forEach(sendLine)
    }

    /// The lines that answer one command as labeled-response has them: as they are without a
    /// label (or the capability), an `ACK` for none, the tag on a single line, a batch around several.
    func labeled(_ lines: [IRCMessage], label: String?) -> [IRCMessage] {
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
    func historyLines(_ messages: [ChatMessage], batchType: String?, batchTarget: String?) -> [IRCMessage] {
        var lines: [IRCMessage] = []
        var batch: String?
        if let batchType, capabilities.contains(.batch) {
            let id = makeBatchID()
            batch = id
            lines.append(IRCMessage(source: serverName, command: "BATCH", parameters: ["+" + id, batchType] + (batchTarget.map { [$0] } ?? [])))
        }
        let features: IRCFeatures = {
            if case .irc(let features) = wireFormat.syntax { return features }
            return []
        }()
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
    func messages(in buffer: ByteBuffer) -> [IRCMessage] {
        String(buffer: buffer).split(separator: "\r\n").compactMap { try? IRCMessage.parse(String($0)) }
    }

    // MARK: Requests to the session

    struct PendingRequest {
        let kind: Kind
        let label: String?
        /// Lines gathered for the answer so far (a JOIN's own lines wait for its replay).
        var lines: [IRCMessage] = []

        enum Kind {
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
    func submit(_ request: ClientRequest, _ kind: PendingRequest.Kind, label: String?) {
        let id = nextRequestID
        nextRequestID += 1
        pending[id] = PendingRequest(kind: kind, label: label)
        session?.receive(.frame(ClientFrame(id: .integer(id), request: request)))
    }

    /// The pending request an answer is for, taken out of the table when `finishing`.
    func take(_ re: RequestID?) -> (Int64, PendingRequest)? {
        guard case .integer(let id)? = re, let request = pending.removeValue(forKey: id) else { return nil }
        // An idle connection keeps no table storage (10,000 of them add up).
        if pending.isEmpty { pending = [:] }
        return (id, request)
    }

    // MARK: SessionOutput

    func sendWelcome(re: RequestID?, name: String, isAccount: Bool, defaultRoom: String, motd: String?) {
        isLoggingIn = false
        guard let (_, request) = take(re) else { return }
        if case .login(viaSASL: true) = request.kind {
            saslAccount = name
            saslState = .none
            reply("900", ["\(IRCEncoding.source(name))", name, "You are now logged in as \(name)"])
            reply("903", ["SASL authentication successful"])
        }
        completeRegistrationIfReady()
    }

    func sendRegistered(re: RequestID?, name: String) {
        _ = take(re)
    }

    func sendJoined(re: RequestID?, room: String, members: [String]) {
        guard case .integer(let id)? = re, var request = pending[id] else { return }
        let channel = "#" + room
        joinsAwaitingReplay[room] = id
        if request.label == nil || !capabilities.contains(.labeledResponse), !wantsReadMarkers, let writer {
            // The common case: JOIN and the names go out now, written straight into one buffer (a
            // big room's names are one allocation, not a string per name); the replay follows.
            var buffer = writer.allocator.buffer(capacity: 64 + members.count * 12)
            buffer.writeString(":\(IRCEncoding.source(nick)) JOIN \(channel)\r\n")
            writeNames(channel: channel, members: members, into: &buffer)
            writer.write(lines: buffer, framing: framing)
            return
        }
        var lines = [IRCMessage(source: IRCEncoding.source(nick), command: "JOIN", parameters: [channel])]
        lines += namesLines(channel: channel, members: members)
        request.lines = lines
        pending[id] = request
    }

    /// RPL_NAMREPLY lines of at most ~400 bytes of names each, then RPL_ENDOFNAMES.
    func writeNames(channel: String, members: [String], into buffer: inout ByteBuffer) {
        let head = ":\(serverName) 353 \(nick) = \(channel) :"
        var lineBytes = 0
        for member in members {
            if lineBytes > 0, lineBytes + member.utf8.count > 400 {
                buffer.writeStaticString("\r\n")
                lineBytes = 0
            }
            if lineBytes == 0 {
                buffer.writeString(head)
            } else {
                buffer.writeStaticString(" ")
            }
            buffer.writeString(member)
            lineBytes += member.utf8.count + 1
        }
        if lineBytes > 0 { buffer.writeStaticString("\r\n") }
        buffer.writeString(":\(serverName) 366 \(nick) \(channel) :End of /NAMES list\r\n")
    }

    func sendHistory(re: RequestID?, subject: ServerFrame.HistorySubject, slice: HistorySlice) {
        if re == nil, case .room(let room) = subject, let id = joinsAwaitingReplay.removeValue(forKey: room),
           let (_, request) = take(.integer(id)) {
            if joinsAwaitingReplay.isEmpty { joinsAwaitingReplay = [:] }
            // A join's replay: the JOIN and NAMES lines, then what the user missed.
            var lines = request.lines
            if !slice.messages.isEmpty { lines += historyLines(slice.messages, batchType: "chathistory", batchTarget: "#" + room) }
            sendResponse(lines, label: request.label)
            return
        }
        guard let (_, request) = take(re) else { return }
        guard case .chathistory(let target) = request.kind else { return sendResponse([], label: request.label) }
        sendResponse(historyLines(slice.messages, batchType: "chathistory", batchTarget: target), label: request.label)
    }

    func sendConversations(re: RequestID?, _ conversations: [ServerFrame.ConversationSummary]) {
        guard let (_, request) = take(re) else { return }
        guard case .targets(let from, let to, let limit) = request.kind else { return sendResponse([], label: request.label) }
        var lines: [IRCMessage] = []
        var batch: String?
        if capabilities.contains(.batch) {
            let id = makeBatchID()
            batch = id
            lines.append(IRCMessage(source: serverName, command: "BATCH", parameters: ["+" + id, "draft/chathistory-targets"]))
        }
        let (low, high) = from <= to ? (from, to) : (to, from)
        for conversation in conversations where conversation.lastTimestamp >= low && conversation.lastTimestamp <= high {
            if lines.count > limit { break }
            lines.append(IRCMessage(tags: batch.map { [("batch", $0)] } ?? [], source: serverName, command: "CHATHISTORY",
                                    parameters: ["TARGETS", conversation.with, "timestamp=" + Timestamp.string(conversation.lastTimestamp)]))
        }
        if let batch { lines.append(IRCMessage(source: serverName, command: "BATCH", parameters: ["-" + batch])) }
        sendResponse(lines, label: request.label)
    }

    func sendSearch(re: RequestID?, messages: [ChatMessage], more: Bool) {
        guard let (_, request) = take(re) else { return }
        sendResponse(historyLines(messages.reversed(), batchType: "soju.im/search", batchTarget: nil), label: request.label)
    }

    func sendLeft(re: RequestID?, room: String) {
        // Messages to the room still on their way to the writer will not come back to this
        // session (it is no longer a member): their answers are not waited for.
        let channel = "#" + room
        pending = pending.filter { entry in
            if case .message(let target, _) = entry.value.kind, roomName(ofChannel: target) == room { return false }
            return true
        }
        guard let (_, request) = take(re) else { return }
        var reason: String?
        if case .part(_, let given) = request.kind { reason = given }
        sendResponse([IRCMessage(source: IRCEncoding.source(nick), command: "PART", parameters: [channel] + (reason.map { [$0] } ?? []))],
                     label: request.label)
    }

    func sendRooms(re: RequestID?, rooms: [ServerFrame.RoomSummary]) {
        guard let (_, request) = take(re) else { return }
        var lines = [numeric("321", ["Channel", "Users  Name"])]
        for room in rooms { lines.append(numeric("322", ["#" + room.name, String(room.members), ""])) }
        lines.append(numeric("323", ["End of /LIST"]))
        sendResponse(lines, label: request.label)
    }

    func sendWho(re: RequestID?, room: String, members: [String]) {
        guard let (_, request) = take(re) else { return }
        let channel = "#" + room
        switch request.kind {
        case .names where request.label == nil || !capabilities.contains(.labeledResponse):
            guard let writer else { return }
            var buffer = writer.allocator.buffer(capacity: 64 + members.count * 12)
            writeNames(channel: channel, members: members, into: &buffer)
            writer.write(lines: buffer, framing: framing)
        case .names:
            sendResponse(namesLines(channel: channel, members: members), label: request.label)
        case .who(let mask):
            var lines = members.map { whoLine(channel: channel, member: $0) }
            lines.append(numeric("315", [mask, "End of /WHO list"]))
            sendResponse(lines, label: request.label)
        default:
            sendResponse([], label: request.label)
        }
    }

    var wantsReadMarkers: Bool { capabilities.contains(.readMarker) }

    func sendReadMarker(re: RequestID?, room: String, time: Int64?) {
        let line = IRCMessage(source: serverName, command: "MARKREAD", parameters: ["#" + room, time.map { "timestamp=" + Timestamp.string($0) } ?? "*"])
        if re == nil, let id = joinsAwaitingReplay[room], var request = pending[id] {
            // A join's marker goes after its JOIN line, before the names.
            request.lines.insert(line, at: min(1, request.lines.count))
            pending[id] = request
            return
        }
        guard let re else { return sendLine(line) }
        guard let (_, request) = take(re) else { return }
        sendResponse([line], label: request.label)
    }

    func sendPong(re: RequestID?) {
        guard let (_, request) = take(re), case .barrier(let message) = request.kind else { return }
        isReplayingBarrier = true
        handle(message)
        isReplayingBarrier = false
    }

    func sendPing() {
        sendLine(IRCMessage(command: "PING", parameters: [serverName]))
    }

    func sendBye() {
        sendLine(IRCMessage(command: "ERROR", parameters: ["Closing link: quit"]))
    }

    func sendShutdown(reason: String) {
        sendLine(IRCMessage(source: serverName, command: "NOTICE", parameters: [nick, "Server shutting down: \(reason)"]))
        sendLine(IRCMessage(command: "ERROR", parameters: ["Closing link: \(reason)"]))
    }

    func sendError(_ error: ProtocolError) {
        guard let (_, request) = take(error.re) else {
            if error.code == .notLoggedIn {
                sendLine(IRCMessage(command: "ERROR", parameters: ["Closing link: \(error.message)"]))
            } else {
                sendLine(IRCMessage(source: serverName, command: "NOTICE", parameters: [nick, error.message]))
            }
            return
        }
        if case .join(let channel) = request.kind { joinsAwaitingReplay["\(channel.dropFirst())"] = nil }
        sendResponse(errorLines(for: request.kind, error), label: request.label)
    }

    func write(_ run: Broadcast, sessionID: Int, flush: Bool) {
        // Runs are encoded in the format fixed at login (`Session.wireFormat`).
        guard let writer, let format = session?.wireFormat, case .irc(let features) = format.syntax else { return }
        let echo = capabilities.contains(.echoMessage)
        let allocator = writer.allocator
        writer.write(run, as: format, sessionID: sessionID, flush: flush) { _, event, frames in
            switch event {
            case .presence:
                return .skipThrough
            case .tags(let tags, let author):
                // This client's own TAGMSG: the echo, labeled when it asked; an ACK; or nothing.
                let label = take(author.re)?.1.label
                guard label != nil, capabilities.contains(.labeledResponse) else { return echo ? .keep : .with(nil) }
                var echoed = allocator.buffer(capacity: frames.readableBytes)
                if echo { IRCEncoding.writeTagMessage(tags, author: author, features: features, into: &echoed) }
                return .with(lines(labeled(messages(in: echoed), label: label)))
            case .message(let message, let author):
                // This client's own message, committed: the echo, labeled when it asked; or
                // nothing; a PRIVMSG to someone away is answered 301 first (RFC 2812, 3.3.1).
                let request = take(author.re)?.1
                var answer: [IRCMessage] = []
                if case .message(let target, "PRIVMSG")? = request?.kind, !target.hasPrefix("#"), let to = message.to,
                   let away = awayMessage(of: target) {
                    answer.append(numeric("301", [to, away]))
                }
                let label = capabilities.contains(.labeledResponse) ? request?.label : nil
                guard label != nil || !answer.isEmpty else { return echo ? .keep : .with(nil) }
                if echo {
                    var echoed = allocator.buffer(capacity: frames.readableBytes)
                    IRCEncoding.writeMessage(message, isAccount: author.isAccount, features: features, batch: nil,
                                             clientTags: author.clientTags, into: &echoed)
                    answer += messages(in: echoed)
                }
                return .with(lines(labeled(answer, label: label)))
            }
        }
    }

    /// Messages as IRC lines in one buffer.
    private func lines(_ messages: [IRCMessage]) -> ByteBuffer {
        var buffer = writer?.allocator.buffer(capacity: messages.count * 128) ?? ByteBuffer()
        for message in messages {
            buffer.writeString(message.serialized())
            buffer.writeStaticString("\r\n")
        }
        return buffer
    }

    func sendFinalError(_ error: ProtocolError, within allowance: TimeAmount) {
        guard let writer else { return }
        var line = writer.allocator.buffer(capacity: 128)
        line.writeString(IRCMessage(command: "ERROR", parameters: ["Closing link: \(error.message)"]).serialized() + "\r\n")
        writer.writeLastAndClose(line, framing: framing, within: allowance)
    }
}
