import ChatProtocol
import Dispatch
import GRDB
import Synchronization

/// The single writer of a database: work handed in while a transaction is running waits, and
/// everything waiting is then committed together in one transaction (group commit). Callers
/// hear back only after the commit, so what they are told is durable.
final class GroupCommitter: Sendable {
    /// One unit of work: `perform` runs inside the batch's transaction with the batch's
    /// timestamp, `finish` after it committed (nil) or failed.
    struct Job: Sendable {
        /// Whose work this is (a user id for messages; 0 for everything else). When more is
        /// waiting than one transaction takes, each lane gets its turn (see `takeBatch`).
        var lane: Int64 = 0
        let perform: @Sendable (Database, Int64) -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    private struct State {
        var pending: [Job] = []
        var isDraining = false
        var isShutDown = false
        /// Batch timestamps never go backwards, so message times follow message ids.
        var lastTimestamp: Int64 = 0
        /// The longest the queue has been since `takePeakQueueDepth()` last read it.
        var peakPending = 0
    }

    /// Bounds one transaction: everything in a batch waits for all of it, so under a flood a
    /// message waits at most for the batch being committed and then its own (a few ms each).
    static let maximumBatch = 128

    private let writer: any DatabaseWriter
    private let state = Mutex(State())
    /// Told the size and duration of every committed batch (metrics).
    private let observer = Mutex<(@Sendable (_ jobs: Int, _ seconds: Double) -> Void)?>(nil)

    func observeCommits(_ observe: @escaping @Sendable (_ jobs: Int, _ seconds: Double) -> Void) {
        observer.withLock { $0 = observe }
    }

    /// Jobs waiting for the next transaction.
    var queueDepth: Int { state.withLock { $0.pending.count } }

    /// The longest the queue has been since the last call (or since the start).
    func takePeakQueueDepth() -> Int {
        state.withLock { state in
            defer { state.peakPending = state.pending.count }
            return state.peakPending
        }
    }
    private let queue = DispatchQueue(label: "chat.storage.group-commit")

    init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    func submit(_ job: Job) {
        let shouldStartDraining: Bool? = state.withLock { state in
            if state.isShutDown { return nil }
            state.pending.append(job)
            state.peakPending = max(state.peakPending, state.pending.count)
            if state.isDraining { return false }
            state.isDraining = true
            return true
        }
        switch shouldStartDraining {
        case nil: job.finish(StorageError.closed)
        case true?: queue.async { self.drain() }
        case false?: break
        }
    }

    /// Runs `work` in the next group commit; `completion` gets its result once committed.
    func submit<Value: Sendable>(
        lane: Int64 = 0,
        _ work: @escaping @Sendable (Database, Int64) throws -> Value,
        completion: @escaping @Sendable (Result<Value, any Error>) -> Void
    ) {
        let box = ResultBox<Value>()
        submit(Job(
            lane: lane,
            perform: { db, timestamp in box.result = Result { try work(db, timestamp) } },
            finish: { commitError in
                if let commitError {
                    completion(.failure(commitError))
                } else {
                    completion(box.result ?? .failure(StorageError.closed))
                }
            }
        ))
    }

    func run<Value: Sendable>(_ work: @escaping @Sendable (Database, Int64) throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            submit(work) { continuation.resume(with: $0) }
        }
    }

    /// Commits what is queued, then refuses further work.
    func shutdown() {
        state.withLock { $0.isShutDown = true }
        queue.sync {}
    }

    private func drain() {
        while true {
            let batch: [Job] = state.withLock { state in
                if state.pending.isEmpty {
                    state.isDraining = false
                    return []
                }
                return Self.takeBatch(from: &state.pending)
            }
            if batch.isEmpty { return }
            let timestamp = state.withLock { state in
                state.lastTimestamp = max(state.lastTimestamp, Timestamp.now())
                return state.lastTimestamp
            }
            do {
                let started = DispatchTime.now().uptimeNanoseconds
                try writer.write { db in
                    for job in batch { job.perform(db, timestamp) }
                }
                if let observe = observer.withLock({ $0 }) {
                    observe(batch.count, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
                }
                for job in batch { job.finish(nil) }
            } catch {
                for job in batch { job.finish(error) }
            }
        }
    }
}

extension GroupCommitter {
    /// The next transaction's jobs. All of them when they fit; otherwise `maximumBatch` shared
    /// out between the lanes waiting, one job per lane in turn, each lane's jobs in the order they
    /// came, the rest left in order for the next batch. So a lane with thousands of jobs waiting
    /// (a flood) cannot push another lane's single job (anyone else's message) back by more than
    /// one batch.
    static func takeBatch(from pending: inout [Job]) -> [Job] {
        if pending.count <= maximumBatch {
            defer { pending = [] }
            return pending
        }
        var waiting: [Int64: Int] = [:]
        var lanes: [Int64] = []
        for job in pending {
            if waiting[job.lane, default: 0] == 0 { lanes.append(job.lane) }
            waiting[job.lane, default: 0] += 1
        }
        var quota: [Int64: Int] = [:]
        var granted = 0
        while granted < maximumBatch {
            var grantedThisRound = false
            for lane in lanes where granted < maximumBatch && quota[lane, default: 0] < waiting[lane]! {
                quota[lane, default: 0] += 1
                granted += 1
                grantedThisRound = true
            }
            if !grantedThisRound { break }
        }
        var batch: [Job] = []
        var rest: [Job] = []
        batch.reserveCapacity(maximumBatch)
        rest.reserveCapacity(pending.count - maximumBatch)
        for job in pending {
            if let left = quota[job.lane], left > 0 {
                quota[job.lane] = left - 1
                batch.append(job)
            } else {
                rest.append(job)
            }
        }
        pending = rest
        return batch
    }
}

/// Carries a job's result from inside the transaction to its completion after the commit.
/// Both run one after the other on the writer's queue, never at once, hence unchecked.
private final class ResultBox<Value: Sendable>: @unchecked Sendable {
    var result: Result<Value, any Error>?
}
