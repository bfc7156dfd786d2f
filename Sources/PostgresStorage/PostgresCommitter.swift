import ChatProtocol
import Foundation
import PostgresNIO
import Storage
import Synchronization

/// Group commit on PostgreSQL: the messages handed in while one transaction runs go together in
/// the next, one statement for the whole batch (`PostgresStore.append`). One batch at a time per
/// node: the id counter's row lock serializes committers anyway, and one round trip per batch
/// is what makes a node's throughput.
final class PostgresCommitter: Sendable {
    enum Job: Sendable {
        case room(MessageDraft, @Sendable (Result<CommittedMessage, any Error>) -> Void)
        case direct(sender: UserRecord, recipient: String, kind: MessageKind, text: String,
                    @Sendable (Result<CommittedDirectMessage, any Error>) -> Void)
    }

    private struct State {
        var queue: [Job] = []
        var isRunning = false
        var isClosed = false
        /// Batches taken from the queue, and batches whose completions have all run.
        var started = 0
        var finished = 0
        var waiters: [(batch: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var observer: (@Sendable (Int, Double) -> Void)?
    }

    static let maxBatch = 2_000

    private let state = Mutex(State())
    nonisolated(unsafe) weak var store: PostgresStore?

    func submit(_ job: Job) {
        let start = state.withLock { state -> Bool? in
            if state.isClosed { return nil }
            state.queue.append(job)
            if state.isRunning { return false }
            state.isRunning = true
            return true
        }
        switch start {
        case nil: Self.fail(job, StorageError.closed)
        case true?: Task { await drain() }
        case false?: break
        }
    }

    var queueDepth: Int { state.withLock { $0.queue.count } }

    func observe(_ observer: @escaping @Sendable (Int, Double) -> Void) {
        state.withLock { $0.observer = observer }
    }

    /// Returns once every batch started before this call has run its completions.
    func settled() async {
        await wait { state in state.started }
    }

    /// Returns once everything handed in before this call is committed (or failed).
    func waitForPendingWrites() async {
        await wait { state in state.started + (state.queue.count + Self.maxBatch - 1) / Self.maxBatch }
    }

    private func wait(until target: (State) -> Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                let batch = target(state)
                if state.finished >= batch { return true }
                state.waiters.append((batch, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func close() {
        state.withLock { $0.isClosed = true }
    }

    private func drain() async {
        while true {
            let (batch, observer) = state.withLock { state -> ([Job], (@Sendable (Int, Double) -> Void)?) in
                let batch = Array(state.queue.prefix(Self.maxBatch))
                state.queue.removeFirst(batch.count)
                if batch.isEmpty { state.isRunning = false } else { state.started += 1 }
                return (batch, state.observer)
            }
            if batch.isEmpty { return }
            let began = ContinuousClock.now
            await commit(batch)
            if let observer {
                let elapsed = ContinuousClock.now - began
                observer(batch.count, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.finished += 1
                let finished = state.finished
                let ready = state.waiters.filter { $0.batch <= finished }.map(\.continuation)
                state.waiters.removeAll { $0.batch <= finished }
                return ready
            }
            for continuation in ready { continuation.resume() }
        }
    }

    /// Resolves the direct messages' conversations, then stores the batch in one transaction.
    /// A batch that fails is tried again one job at a time, so one bad job fails alone.
    private func commit(_ batch: [Job]) async {
        guard let store else { return batch.forEach { Self.fail($0, StorageError.closed) } }
        var resolved: [(job: Job, draft: MessageDraft, recipient: UserRecord?)] = []
        for job in batch {
            switch job {
            case .room(let draft, _):
                resolved.append((job, draft, nil))
            case .direct(let sender, let recipientName, let kind, let text, _):
                do {
                    guard let recipient = try await PostgresStore.withDeadline(PostgresStore.commitDeadline, {
                        try await store.fetchUser(named: recipientName)
                    }) else {
                        throw StorageError.noSuchUser(name: recipientName)
                    }
                    let recipientID = Names.userKey(recipient.name) == Names.userKey(sender.name) ? sender.id : recipient.id
                    let room = try await PostgresStore.withDeadline(PostgresStore.commitDeadline) {
                        try await store.conversationRoom(sender.id, recipientID)
                    }
                    resolved.append((job, MessageDraft(roomID: room, userID: sender.id, kind: kind, text: text), recipient))
                } catch {
                    Self.fail(job, error)
                }
            }
        }
        guard !resolved.isEmpty else { return }
        do {
            let drafts = resolved.map {
                PostgresStore.Draft(roomID: $0.draft.roomID, userID: $0.draft.userID, kind: $0.draft.kind, text: $0.draft.text)
            }
            let committed = try await PostgresStore.withDeadline(PostgresStore.commitDeadline) { try await store.append(drafts) }
            for (entry, ids) in zip(resolved, committed) {
                let message = CommittedMessage(id: ids.id, timestamp: ids.timestamp)
                switch entry.job {
                case .room(_, let completion):
                    completion(.success(message))
                case .direct(_, _, _, _, let completion):
                    completion(.success(CommittedDirectMessage(message: message, recipient: entry.recipient!)))
                }
            }
        } catch {
            // A batch the database could not take at all fails as a whole; one it refused is
            // tried again job by job, so that one bad job fails alone.
            guard resolved.count > 1, (error as? PSQLError)?.code == .server else {
                return resolved.forEach { Self.fail($0.job, error) }
            }
            for entry in resolved { await commit([entry.job]) }
        }
    }

    private static func fail(_ job: Job, _ error: any Error) {
        switch job {
        case .room(_, let completion): completion(.failure(error))
        case .direct(_, _, _, _, let completion): completion(.failure(error))
        }
    }
}
