import NIOCore
import NIOPosix
import Storage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Hashes and checks account passwords on threads of their own, never on an event loop: a
/// storm of logins queues here, one hash per thread at a time, while chat goes on. The threads
/// run only on CPU time nothing else wants (SCHED_IDLE), so a burst of hashing cannot delay
/// messages, and the queue is bounded: past `maximumQueued` waiting requests, new ones are
/// refused at once.
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

    /// The calling pool thread runs under SCHED_IDLE: only when no other thread of the machine
    /// wants the CPU, so hashing never preempts an event loop (a nice value only weights the
    /// share, and 20 hashes a second still added milliseconds to a busy room's p99). On Linux
    /// the policy is per thread; `pid` 0 is the calling thread. One system call per hash.
    private static var lowerThisThreadsPriority: Void {
        #if os(Linux)
        var parameters = sched_param(sched_priority: 0)
        _ = sched_setscheduler(0, schedIdle, &parameters)
        #endif
    }

    /// SCHED_IDLE from <sched.h> (exported only with _GNU_SOURCE).
    private static let schedIdle: Int32 = 5

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
