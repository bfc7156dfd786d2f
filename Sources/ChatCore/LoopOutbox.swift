import CServerSupport
import CoreMetrics
import NIOCore
import Synchronization

/// Everything rooms send to the members on one event loop, drained by one task: each member is
/// written every run queued for it and flushed once. When the loop keeps up, a run goes out
/// alone at once; when it falls behind, runs that queued meanwhile share one system call per
/// member, so the work per message shrinks exactly when the load grows.
package final class LoopOutbox: Sendable {
    package struct Item: Sendable {
        package let broadcast: Broadcast
        package let members: [Subscription]
    }

    private struct State {
        var items: [Item] = []
        var isScheduled = false
    }

    private let state = Mutex(State())
    /// Hands this loop's rooms the messages committed for them and not yet fanned out (set once,
    /// before the server runs): a pass calls it so that their runs can join it.
    package nonisolated(unsafe) var bringInCommitted: (@Sendable () -> Void)?
    private let loop: any EventLoop
    private let deliveries: CoreMetrics.Counter

    package init(loop: any EventLoop, deliveries: CoreMetrics.Counter) {
        self.loop = loop
        self.deliveries = deliveries
    }

    package func post(_ item: Item) {
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
        count(items)
        if items.count == 1 {
            drain(items[0])
            return
        }
        // Several runs this turn: each member is written all of them, then flushed once.
        var touched: [Session] = []
        for item in items {
            var run = Run(item.broadcast)
            let members = item.members
            for (index, member) in members.enumerated() {
                Self.warm(members, ahead: index)
                if let session = run.deliver(to: member, flush: false) { touch(session, in: &touched) }
            }
        }
        flush(touched)
    }

    /// One run this turn (the steady state): each member gets one write, flushed with it. Runs to
    /// the same members that are posted meanwhile join it: the members not yet written get them
    /// in the same system call, the ones already written get them after the pass. Order holds
    /// for every member, nothing waits longer than it would for the next turn, and a busy loop
    /// makes fewer system calls per message.
    private func drain(_ item: Item) {
        var run = Run(item.broadcast)
        let members = item.members
        var later: [Run] = []
        var joinedAt = members.count
        var touched: [Session] = []
        for (index, member) in members.enumerated() {
            if later.isEmpty, index > 0, index % Self.joinCheckInterval == 0 {
                bringInCommitted?()
                later = takeLater(for: members).map(Run.init)
                if !later.isEmpty { joinedAt = index }
            }
            Self.warm(members, ahead: index)
            if later.isEmpty {
                if let session = run.deliver(to: member, flush: true) { touch(session, in: &touched) }
                continue
            }
            if let session = run.deliver(to: member, flush: false) { touch(session, in: &touched) }
            deliver(&later, to: member, touched: &touched)
        }
        if !later.isEmpty {
            for index in 0..<joinedAt {
                Self.warm(members, ahead: index)
                deliver(&later, to: members[index], touched: &touched)
            }
        }
        flush(touched)
    }

    /// Writes `runs` to `member` in order, flushed with the last.
    private func deliver(_ runs: inout [Run], to member: Subscription, touched: inout [Session]) {
        for position in runs.indices {
            if let session = runs[position].deliver(to: member, flush: position == runs.count - 1) { touch(session, in: &touched) }
        }
    }

    /// How many members a pass writes between looks for runs that could join it.
    package static let joinCheckInterval = 64

    /// The runs at the head of the queue that go to exactly `members` (the same array: the room's
    /// membership has not changed since), taken off it. The first run to other members ends
    /// them: it and everything after it stay queued, in order, for the next turn.
    private func takeLater(for members: [Subscription]) -> [Item] {
        let taken: [Item] = state.withLock { state in
            guard let first = state.items.first, Self.sameMembers(first.members, members) else { return [] }
            let end = state.items.firstIndex { !Self.sameMembers($0.members, members) } ?? state.items.count
            defer { state.items.removeFirst(end) }
            return Array(state.items[..<end])
        }
        count(taken)
        return taken
    }

    private static func sameMembers(_ a: [Subscription], _ b: [Subscription]) -> Bool {
        // Both arrays are alive, so equal storage addresses mean the very same, unchanged storage.
        a.count == b.count && a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress } }
    }

    /// One atomic add per drain (or joined runs), however many members and messages; before
    /// anything is written, so a scrape never lags what a client has seen.
    private func count(_ items: [Item]) {
        let delivered = items.reduce(0) { $0 + $1.members.count * $1.broadcast.messageCount }
        if delivered > 0 { deliveries.increment(by: delivered) }
    }

    private func touch(_ session: Session, in touched: inout [Session]) {
        guard !session.isAwaitingFlush else { return }
        session.isAwaitingFlush = true
        touched.append(session)
    }

    private func flush(_ touched: [Session]) {
        for session in touched {
            session.isAwaitingFlush = false
            session.flushFromFanOut()
        }
    }

    /// A run being written to a loop's members, with its shared bytes in the last format met:
    /// members of one room mostly speak one format, so this is looked up once per run, not once
    /// per member.
    private struct Run {
        let broadcast: Broadcast
        /// The key of the format `shared` is in (-1: none yet).
        var formatKey = -1
        var shared = ByteBuffer()

        init(_ broadcast: Broadcast) { self.broadcast = broadcast }
        init(_ item: Item) { self.init(item.broadcast) }

        /// Writes the run to `member` (flushed with `flush`); returns the session when it was
        /// written and still needs a flush.
        mutating func deliver(to member: Subscription, flush: Bool) -> Session? {
            if broadcast.hasPersonalEvents(of: member.sessionID) { return member.deliver(broadcast, flush: flush) }
            if formatKey != member.formatKey {
                formatKey = member.formatKey
                shared = broadcast.encoded(as: member.format).bytes
            }
            return member.deliverShared(broadcast, bytes: shared, flush: flush)
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
