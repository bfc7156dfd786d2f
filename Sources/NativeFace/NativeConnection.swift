import ChatCore
import ChatProtocol
import NIOCore
import Storage

/// The native wire protocol on a `LineConnection`: JSON objects on lines, decoded into requests
/// for the connection's `Session`, and its answers encoded back.
package final class NativeConnection: LineFace, @unchecked Sendable {
    private let server: ServerContext
    private let framing: Framing
    package let maxLineBytes: Int
    package private(set) var writer: ConnectionWriter?
    private var session: Session?

    package init(server: ServerContext, framing: Framing = .lines) {
        self.server = server
        self.framing = framing
        self.maxLineBytes = server.configuration.limits.maxLineBytes
    }

    package var wireFormat: WireFormat { .native(framing: framing) }
    package var logName: String { "connection" }

    package func attach(_ writer: ConnectionWriter) {
        self.writer = writer
    }

    package func detach() {
        writer = nil
    }

    package func ending(_ session: Session) {
        self.session = nil
    }

    package func started(_ session: Session, context: ChannelHandlerContext) {
        self.session = session
        var buffer = context.channel.allocator.buffer(capacity: 96)
        ServerFrame.greeting(server: server.configuration.server.name, passwordRequired: server.reloadable.withLock { $0.password != nil },
                             into: &buffer)
        writer?.write(lines: buffer, framing: framing, flush: true)
    }

    package func refused(_ reason: String) {
        sendError(ProtocolError(.serverFull, reason))
    }

    package func receivedTooLongLine() {
        session?.receive(.error(ProtocolError(.tooLong, "line longer than \(maxLineBytes) bytes (discarded)")))
    }

    package func received(line: ByteBuffer) {
        guard line.readableBytesView.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) else {
            return // blank lines are ignored
        }
        let decoded = line.withUnsafeReadableBytes { raw in
            Result { () throws(ProtocolError) -> ClientFrame in
                try ClientFrame.decode(line: raw.bindMemory(to: UInt8.self))
            }
        }
        switch decoded {
        case .success(let frame): session?.receive(.frame(frame))
        case .failure(let error): session?.receive(.error(error))
        }
    }

    // MARK: SessionOutput

    private func send(_ encode: (inout ByteBuffer) -> Void) {
        guard let writer else { return }
        var buffer = writer.allocator.buffer(capacity: 128)
        encode(&buffer)
        writer.write(lines: buffer, framing: framing)
    }

    package func sendWelcome(re: RequestID?, name: String, isAccount: Bool, defaultRoom: String, motd: String?) {
        send { ServerFrame.welcome(re: re, name: name, isAccount: isAccount, defaultRoom: defaultRoom, motd: motd, into: &$0) }
    }

    package func sendRegistered(re: RequestID?, name: String) {
        send { ServerFrame.registered(re: re, name: name, into: &$0) }
    }

    package func sendJoined(re: RequestID?, room: String, members: [String]) {
        send { ServerFrame.joined(re: re, room: room, members: members, into: &$0) }
    }

    package func sendHistory(re: RequestID?, subject: ServerFrame.HistorySubject, slice: HistorySlice) {
        send { ServerFrame.history(re: re, subject: subject, messages: slice.messages, more: slice.more, into: &$0) }
    }

    package func sendConversations(re: RequestID?, _ conversations: [ServerFrame.ConversationSummary]) {
        send { ServerFrame.conversations(re: re, conversations, into: &$0) }
    }

    package func sendSearch(re: RequestID?, messages: [ChatMessage], more: Bool) {
        send { ServerFrame.search(re: re, messages: messages, more: more, into: &$0) }
    }

    package func sendLeft(re: RequestID?, room: String) {
        send { ServerFrame.left(re: re, room: room, into: &$0) }
    }

    package func sendRooms(re: RequestID?, rooms: [ServerFrame.RoomSummary]) {
        send { ServerFrame.rooms(re: re, rooms: rooms, into: &$0) }
    }

    package func sendWho(re: RequestID?, room: String, members: [String]) {
        send { ServerFrame.who(re: re, room: room, members: members, into: &$0) }
    }

    package func sendPong(re: RequestID?) {
        send { ServerFrame.pong(re: re, into: &$0) }
    }

    package func sendPing() {
        send { ServerFrame.ping(into: &$0) }
    }

    package func sendBye() {
        send { ServerFrame.bye(into: &$0) }
    }

    package func sendShutdown(reason: String) {
        send { ServerFrame.shutdown(reason: reason, into: &$0) }
    }

    package func sendError(_ error: ProtocolError) {
        send { ServerFrame.error(error, into: &$0) }
    }

    package func write(_ run: Broadcast, sessionID: Int, flush: Bool) {
        guard let writer else { return }
        let allocator = writer.allocator
        writer.write(run, as: wireFormat, sessionID: sessionID, flush: flush) { _, event, _ in
            NativeEncoding.replacement(for: event, allocator: allocator)
        }
    }

    package func sendFinalError(_ error: ProtocolError, within allowance: TimeAmount) {
        guard let writer else { return }
        var frame = writer.allocator.buffer(capacity: 128)
        ServerFrame.error(error, into: &frame)
        writer.writeLastAndClose(frame, framing: framing, within: allowance)
    }
}
