import CServerSupport
import ChatProtocol
import NIOCore
import Storage

/// One session's membership of one room: what the room fans out to, and where replay and live
/// delivery meet. Fields are touched only on the session's event loop, except the immutable ones.
package final class Subscription: @unchecked Sendable {
    package enum State {
        /// Joined; live runs wait here until the replay has been written, so none is lost or
        /// repeated.
        case replaying(pending: [Broadcast], bytes: Int)
        case live
        /// Left or disconnected: deliveries still in flight are dropped.
        case closed
    }

    // The fields every delivery touches come first, so they share the cache lines the fan-out
    // prefetches a few members ahead (`LoopOutbox.warm`); the rest follow.
    package let sessionID: Int
    /// `format.key`, compared per member by the fan-out.
    package let formatKey: Int
    package var state = State.replaying(pending: [], bytes: 0)
    /// Where the run's shared bytes go for this member (`SessionOutput.sharedWriter`): the
    /// adapter is skipped too on the common path. A writer drops writes once its connection
    /// has closed; the session closes this subscription then too.
    private var sharedWriter: ConnectionWriter?
    /// The newest message id of the room this session has been sent: its read marker.
    package var lastSentID: Int64 = 0
    /// Strong (a weak load per delivery costs measurably on the fan-out path); the cycle with the
    /// session is broken when the subscription closes.
    package var session: Session?
    /// Where the objects a shared write touches first live (`ConnectionWriter.writePathAddresses`):
    /// the fan-out prefetches them a few members ahead. Never dereferenced, so stale addresses are
    /// harmless (a prefetch does not fault).
    private let writePathAddresses: (UnsafeRawPointer, UnsafeRawPointer?, UnsafeRawPointer?)?
    /// The session's wire adapter, straight: the per-member write skips a hop through the session
    /// (one cold object less per member and run). Cleared with `session` on close.
    private var output: (any SessionOutput)?
    package let room: RoomRecord
    package let userKey: String
    package let displayName: String
    package let loopIndex: Int
    package let eventLoop: any EventLoop
    /// The wire format of the session when it joined: what the room encodes runs in for it.
    package let format: WireFormat

    package init(room: RoomRecord, session: Session) {
        self.room = room
        self.sessionID = session.id
        self.userKey = Names.userKey(session.userName)
        self.displayName = session.userName
        self.loopIndex = session.loopIndex
        self.format = session.wireFormat
        self.formatKey = session.wireFormat.key
        self.eventLoop = session.eventLoop
        self.session = session
        self.output = session.output
        let writer = session.output?.sharedWriter
        self.sharedWriter = writer
        self.writePathAddresses = writer?.writePathAddresses
    }

    /// Warms the cache lines a shared write to this member touches first (`writePathAddresses`).
    package func prefetchWritePath() {
        guard let (first, pipeline, channel) = writePathAddresses else { return }
        chat_prefetch(first, 2)
        if let pipeline { chat_prefetch(pipeline, 2) }
        if let channel { chat_prefetch(channel, 4) }
    }

    /// Hands a run of the room's events to the session (on its event loop). Returns the session
    /// when it wrote to it without flushing, so the caller flushes it once after all its runs;
    /// with `flush` (the run is the only one this turn) it is written and flushed at once.
    package func deliver(_ broadcast: Broadcast, flush: Bool) -> Session? {
        if let id = broadcast.lastMessageID, id > lastSentID { lastSentID = id }
        switch state {
        case .closed:
            return nil
        case .replaying(var pending, let bytes):
            pending.append(broadcast)
            let total = bytes + broadcast.encoded(as: format).bytes.readableBytes
            state = .replaying(pending: pending, bytes: total)
            session?.checkBuffered(bytes: total)
            return nil
        case .live:
            guard let output else { return nil }
            output.write(broadcast, sessionID: sessionID, flush: flush)
            if !broadcast.personal.isEmpty { session?.wroteOwnEvents(of: broadcast) }
            return flush ? nil : session
        }
    }

    /// `deliver` for a member with no event of its own in the run: `bytes` is the run's shared
    /// encoding in this member's format, looked up once per run and format by the caller instead
    /// of once per member. A live member gets them straight on its connection's writer; any
    /// other takes `deliver`. Returns as `deliver` does.
    package func deliverShared(_ broadcast: Broadcast, bytes: ByteBuffer, flush: Bool) -> Session? {
        guard case .live = state, let writer = sharedWriter else { return deliver(broadcast, flush: flush) }
        if let id = broadcast.lastMessageID, id > lastSentID { lastSentID = id }
        writer.writeFromFanOut(bytes, flush: flush)
        return flush ? nil : session
    }

    /// Writes the replay's history, then what arrived meanwhile, and goes live.
    package func finishReplay(writeHistory: () -> Void) {
        guard case .replaying(let pending, _) = state else { return }
        writeHistory()
        for broadcast in pending { session?.write(broadcast) }
        state = .live
        session?.flush()
    }

    /// Stops deliveries and lets go of the session.
    package func close() {
        state = .closed
        session = nil
        output = nil
        sharedWriter = nil
    }

    package var isClosed: Bool {
        if case .closed = state { true } else { false }
    }
}
