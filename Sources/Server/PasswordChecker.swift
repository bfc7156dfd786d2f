import NIOCore
import NIOPosix
import Storage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Hashes and checks account passwords on threads of their own, never on an event loop: a
/// storm of logins queues here, one hash per thread at a time, while chat goes on. The threads
/// run at a lower priority than the event loops, so a burst of hashing cannot delay messages,
/// and the queue is bounded: past `maximumQueued` waiting requests, new ones are refused at once.
final class PasswordChecker: Sendable {
    static let maximumQueued = 64

    private let pool: NIOThreadPool
    private let queued = Atomic<Int>(0)

    init(threads: Int = 1) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    /// Whether `password` opens `hash`; nil (without queueing) when too many checks are waiting.
    func verify(_ password: String, against hash: PasswordHash, on eventLoop: any EventLoop) -> EventLoopFuture<Bool>? {
        run(on: eventLoop) { hash.verify(password: password) }
    }

    /// A new hash of `password`; nil (without queueing) when too many requests are waiting.
    func hash(_ password: String, on eventLoop: any EventLoop) -> EventLoopFuture<PasswordHash>? {
        run(on: eventLoop) { try PasswordHash.make(password: password) }
    }

    private func run<Value: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable () throws -> Value) -> EventLoopFuture<Value>? {
        guard queued.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maximumQueued else {
            queued.wrappingSubtract(1, ordering: .relaxed)
            return nil
        }
        return pool.runIfActive(eventLoop: eventLoop) { [self] in
            Self.lowerThisThreadsPriority
            defer { queued.wrappingSubtract(1, ordering: .relaxed) }
            return try work()
        }
    }

    /// Nice 10 for the calling pool thread (on Linux, `who` 0 is the calling thread: niceness
    /// is per thread there). One system call per hash of ~40 ms: not worth remembering.
    private static var lowerThisThreadsPriority: Void {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
