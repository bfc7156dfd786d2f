import CServerSupport
import CoreMetrics
import NIOCore
import Synchronization

/// Everything rooms send to the members on one event loop, drained by one task: each member is
/// written every run queued for it and flushed once. When the loop keeps up, a run goes out
/// alone at once; when it falls behind, runs that queued meanwhile share one system call per
/// member, so the work per message shrinks exactly when the load grows.
final class LoopOutbox: Sendable {
    struct Item: Sendable {
        let broadcast: Broadcast
        let members: [Subscription]
    }

    private struct State {
        var items: [Item] = []
        var isScheduled = false
    }

    private let state = Mutex(State())
    private let loop: any EventLoop
    private let deliveries: CoreMetrics.Counter

    init(loop: any EventLoop, deliveries: CoreMetrics.Counter) {
        self.loop = loop
        self.deliveries = deliveries
    }

    func post(_ item: Item) {
        let shouldSchedule = state.withLock { state in
            state.items.append(item)
            if state.isScheduled { return false }
            state.isScheduled = true
            return true
        }
        if shouldSchedule { loop.execute { self.drain() } }
    }

    private func drain() {
        let items = state.withLock { state in
            state.isScheduled = false
            defer { state.items = [] }
            return state.items
        }
        // One atomic add per drain, however many members and messages; before anything is
        // written, so a scrape never lags what a client has seen.
        let delivered = items.reduce(0) { $0 + $1.members.count * $1.broadcast.messageCount }
        if delivered > 0 { deliveries.increment(by: delivered) }
        // One run this turn (the steady state): each member gets one write, flushed with it.
        // Several: each member is written all of them, then flushed once.
        let flushesAsItWrites = items.count == 1
        var touched: [Session] = []
        for item in items {
            let broadcast = item.broadcast
            // The run's shared bytes in the last format met: members of one room mostly speak
            // one format, so this is looked up once per run, not once per member.
            var format: WireFormat?
            var shared = ByteBuffer()
            let members = item.members
            for (index, member) in members.enumerated() {
                Self.warm(members, ahead: index)
                let session: Session?
                if broadcast.hasPersonalEvents(of: member.sessionID) {
                    session = member.deliver(broadcast, flush: flushesAsItWrites)
                } else {
                    if format != member.format {
                        format = member.format
                        shared = broadcast.encoded(as: member.format).bytes
                    }
                    session = member.deliverShared(broadcast, bytes: shared, flush: flushesAsItWrites)
                }
                if let session, !session.isAwaitingFlush {
                    session.isAwaitingFlush = true
                    touched.append(session)
                }
            }
        }
        for session in touched {
            session.isAwaitingFlush = false
            session.flush()
        }
    }

    /// Members' objects are cold by their turn (1,000 members, a message every few ms): while
    /// the kernel writes to member `index`, bring in member `index + 4` (its subscription) and
    /// the write path of member `index + 2` (whose subscription came in two turns ago).
    private static func warm(_ members: [Subscription], ahead index: Int) {
        if index + 4 < members.count {
            members.withUnsafeBufferPointer { buffer in
                // The reference itself, read as an address: no retain, which would be the very
                // miss this avoids.
                let address = UnsafeRawPointer(buffer.baseAddress!).load(
                    fromByteOffset: (index + 4) * MemoryLayout<Subscription>.stride, as: UnsafeRawPointer.self)
                chat_prefetch(address, 3)
            }
        }
        if index + 2 < members.count { members[index + 2].prefetchWritePath() }
    }
}
