import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore
import Storage
import Synchronization

/// The session's answers as IRC lines (SessionOutput).
extension IRCConnection {
    package func sendWelcome(re: RequestID?, name: String, isAccount: Bool, defaultRoom: String, motd: String?) {
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

    package func sendRegistered(re: RequestID?, name: String) {
        _ = take(re)
    }

    package func sendJoined(re: RequestID?, room: String, members: [String]) {
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
    package func writeNames(channel: String, members: [String], into buffer: inout ByteBuffer) {
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

    package func sendHistory(re: RequestID?, subject: ServerFrame.HistorySubject, slice: HistorySlice) {
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

    package func sendConversations(re: RequestID?, _ conversations: [ServerFrame.ConversationSummary]) {
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

    package func sendSearch(re: RequestID?, messages: [ChatMessage], more: Bool) {
        guard let (_, request) = take(re) else { return }
        sendResponse(historyLines(messages.reversed(), batchType: "soju.im/search", batchTarget: nil), label: request.label)
    }

    package func sendLeft(re: RequestID?, room: String) {
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

    package func sendRooms(re: RequestID?, rooms: [ServerFrame.RoomSummary]) {
        guard let (_, request) = take(re) else { return }
        var lines = [numeric("321", ["Channel", "Users  Name"])]
        for room in rooms { lines.append(numeric("322", ["#" + room.name, String(room.members), ""])) }
        lines.append(numeric("323", ["End of /LIST"]))
        sendResponse(lines, label: request.label)
    }

    package func sendWho(re: RequestID?, room: String, members: [String]) {
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

    package var wantsReadMarkers: Bool { capabilities.contains(.readMarker) }

    package func sendReadMarker(re: RequestID?, room: String, time: Int64?) {
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

    package func sendPong(re: RequestID?) {
        guard let (_, request) = take(re), case .barrier(let message) = request.kind else { return }
        isReplayingBarrier = true
        handle(message)
        isReplayingBarrier = false
    }

    package func sendPing() {
        sendLine(IRCMessage(command: "PING", parameters: [serverName]))
    }

    package func sendBye() {
        sendLine(IRCMessage(command: "ERROR", parameters: ["Closing link: quit"]))
    }

    package func sendShutdown(reason: String) {
        sendLine(IRCMessage(source: serverName, command: "NOTICE", parameters: [nick, "Server shutting down: \(reason)"]))
        sendLine(IRCMessage(command: "ERROR", parameters: ["Closing link: \(reason)"]))
    }

    package func sendError(_ error: ProtocolError) {
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

    package func write(_ run: Broadcast, sessionID: Int, flush: Bool) {
        // Runs are encoded in the format fixed at login (`Session.wireFormat`).
        guard let writer, let format = session?.wireFormat else { return }
        let features = format.ircFeatures
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

    package func sendFinalError(_ error: ProtocolError, within allowance: TimeAmount) {
        guard let writer else { return }
        var line = writer.allocator.buffer(capacity: 128)
        line.writeString(IRCMessage(command: "ERROR", parameters: ["Closing link: \(error.message)"]).serialized() + "\r\n")
        writer.writeLastAndClose(line, framing: framing, within: allowance)
    }
}
