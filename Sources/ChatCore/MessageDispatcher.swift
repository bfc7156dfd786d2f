import NIOCore
import Synchronization

/// Carries committed messages from the database writer to the event loops that own their rooms.
/// Messages arrive here in id order; each loop drains everything queued for it in one task, so
/// a burst becomes a few large runs instead of one task per message.
package final class MessageDispatcher: Sendable {
    private final class Queue: Sendable {
        struct State {
            var deliveries: [CommittedDelivery] = []
            var isScheduled = false
        }
        let state = Mutex(State())
    }

    private let queues: [Queue]
    private unowned let server: ServerContext

    package init(server: ServerContext, shardCount: Int) {
        self.server = server
        self.queues = (0..<shardCount).map { _ in Queue() }
    }

    package func dispatch(_ delivery: CommittedDelivery, toShard index: Int) {
        let queue = queues[index]
        let shouldSchedule = queue.state.withLock { state in
            state.deliveries.append(delivery)
            if state.isScheduled { return false }
            state.isScheduled = true
            return true
        }
        guard shouldSchedule else { return }
        server.shards[index].eventLoop.execute { self.deliverWaiting(toShard: index) }
    }

    /// Hands the shard what is queued for it now (on its loop): its scheduled task does, and so
    /// does its loop's outbox in the middle of a fan-out, so that runs committed meanwhile can
    /// join it (`LoopOutbox`). A task that finds the queue empty does nothing.
    package func deliverWaiting(toShard index: Int) {
        let deliveries = queues[index].state.withLock { state in
            state.isScheduled = false
            defer { state.deliveries = [] }
            return state.deliveries
        }
        if !deliveries.isEmpty { server.shards[index].deliver(deliveries) }
    }
}
