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
        case direct(sender: UserRecord, recipient: String, kind: MessageKind, text: String, nonce: String?,
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

    /// One job on its way to the database: its draft, and the recipient of a direct message.
    private typealias Resolved = (job: Job, draft: MessageDraft, recipient: UserRecord?)

    /// Resolves the direct messages' conversations, answers the jobs whose nonce names a message
    /// already stored, then stores the rest in one transaction. A batch that the database refuses
    /// is tried again one job at a time, so one bad job fails alone; a batch whose outcome the
    /// database did not tell (the deadline passed, the connection went) fails with
    /// `StorageError.unknownOutcome`, never as "not stored".
    private func commit(_ batch: [Job], isRetry: Bool = false) async {
        guard let store else { return batch.forEach { Self.fail($0, StorageError.closed) } }
        let deadline = store.commitDeadline
        var resolved: [Resolved] = []
        for job in batch {
            switch job {
            case .room(let draft, _):
                resolved.append((job, draft, nil))
            case .direct(let sender, let recipientName, let kind, let text, let nonce, _):
                do {
                    guard let recipient = try await PostgresStore.withDeadline(deadline, {
                        try await store.fetchUser(named: recipientName)
                    }) else {
                        throw StorageError.noSuchUser(name: recipientName)
                    }
                    let recipientID = Names.userKey(recipient.name) == Names.userKey(sender.name) ? sender.id : recipient.id
                    let room = try await PostgresStore.withDeadline(deadline) {
                        try await store.conversationRoom(sender.id, recipientID)
                    }
                    resolved.append((job, MessageDraft(roomID: room, userID: sender.id, kind: kind, text: text, nonce: nonce), recipient))
                } catch {
                    Self.fail(job, error)
                }
            }
        }
        do {
            resolved = try await answerRepeatedNonces(resolved, store: store)
        } catch {
            return resolved.forEach { Self.fail($0.job, error) }
        }
        guard !resolved.isEmpty else { return }
        let sending = SendMark()
        do {
            let drafts = resolved.map {
                PostgresStore.Draft(roomID: $0.draft.roomID, userID: $0.draft.userID, kind: $0.draft.kind, text: $0.draft.text, nonce: $0.draft.nonce)
            }
            let committed = try await PostgresStore.withDeadline(deadline) { try await store.append(drafts, sending: sending) }
            for (entry, ids) in zip(resolved, committed) {
                Self.succeed(entry, CommittedMessage(id: ids.id, timestamp: ids.timestamp))
            }
        } catch let error where sending.abandon() {
            // It never reached the database (no connection within the deadline, the pool
            // closing): surely not stored. Cancelled while it waited, it is never sent later.
            resolved.forEach { Self.fail($0.job, error) }
        } catch let error as PSQLError where error.code == .server {
            // Refused by the database: nothing of the batch is stored. Each job alone, so one bad
            // job fails alone; a job whose nonce a concurrent commit took meanwhile (a unique
            // violation) is tried once more, to be answered with that commit's message.
            if resolved.count > 1 {
                for entry in resolved { await commit([entry.job]) }
            } else if let entry = resolved.first, entry.draft.nonce != nil, error.serverInfo?[.sqlState] == "23505", !isRetry {
                await commit([entry.job], isRetry: true)
            } else {
                resolved.forEach { Self.fail($0.job, error) }
            }
        } catch {
            // The deadline passed or the connection went while the batch was on its way or
            // running: it may have committed (postgres-nio cannot cancel a query once sent).
            resolved.forEach { Self.fail($0.job, StorageError.unknownOutcome) }
        }
    }

    /// Answers the jobs whose nonce names a message their author committed in the last 24 hours
    /// (or fails them when that message is in another room or conversation), frees the nonces
    /// held longer than that, and returns the jobs still to store.
    private func answerRepeatedNonces(_ resolved: [Resolved], store: PostgresStore) async throws -> [Resolved] {
        let keys = resolved.compactMap { entry in entry.draft.nonce.map { (userID: entry.draft.userID, nonce: $0) } }
        guard !keys.isEmpty else { return resolved }
        let found = try await PostgresStore.withDeadline(store.commitDeadline) { try await store.messages(holdingNonces: keys) }
        guard !found.isEmpty else { return resolved }
        let now = Timestamp.now()
        var holders: [String: NonceHolder] = [:]
        var expired: [Int64] = []
        for found in found {
            if found.holder.holdsNonce(at: now) {
                holders["\(found.userID)/\(found.nonce)"] = found.holder
            } else {
                expired.append(found.holder.id)
            }
        }
        let toClear = expired
        try await PostgresStore.withDeadline(store.commitDeadline) { try await store.clearNonces(ofMessages: toClear) }
        var rest: [Resolved] = []
        for entry in resolved {
            guard let nonce = entry.draft.nonce, let holder = holders["\(entry.draft.userID)/\(nonce)"] else {
                rest.append(entry)
                continue
            }
            do {
                Self.succeed(entry, try holder.answer(to: entry.draft, nonce: nonce))
            } catch {
                Self.fail(entry.job, error)
            }
        }
        return rest
    }

    private static func succeed(_ entry: Resolved, _ message: CommittedMessage) {
        switch entry.job {
        case .room(_, let completion):
            completion(.success(message))
        case .direct(_, _, _, _, _, let completion):
            completion(.success(CommittedDirectMessage(message: message, recipient: entry.recipient!)))
        }
    }

    private static func fail(_ job: Job, _ error: any Error) {
        switch job {
        case .room(_, let completion): completion(.failure(error))
        case .direct(_, _, _, _, _, let completion): completion(.failure(error))
        }
    }
}
