import NIOCore
import NIOPosix
import Storage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Hashes and checks account passwords on a thread of its own, never on an event loop: a
/// storm of logins queues here, one hash at a time, while chat goes on. The thread runs under
/// SCHED_IDLE, only on CPU time nothing else wants, so hashing never preempts an event loop;
/// but a machine that stays busy would then starve logins for as long as it is busy, so once
/// a check has taken `patience` without finishing, the thread is raised to normal priority
/// until it catches up. The queue is bounded: past `maximumQueued` waiting checks, new ones
/// are refused at once.
package final class PasswordChecker: Sendable {
    package static let maximumQueued = 64
    package static let patience = TimeAmount.milliseconds(250)

    private let pool: NIOThreadPool
    private let queued = Atomic<Int>(0)
    /// The hashing thread (to raise its priority from outside) and whether it is raised.
    private let thread = Mutex<(handle: pthread_t?, isRaised: Bool)>((nil, false))

    package init() {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    /// What a check found: whether the password opens the hash, and, when it does and the hash
    /// was made below the configured cost, the same password hashed anew at that cost.
    package struct Verdict: Sendable {
        package var isCorrect: Bool
        package var upgraded: PasswordHash?
    }

    /// Whether `password` opens `hash` (re-hashed at N = 2^`logN` when it does and `hash` is
    /// cheaper); nil (without queueing) when too many checks are waiting.
    package func verify(_ password: String, against hash: PasswordHash, upgradingTo logN: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Verdict>? {
        run(on: eventLoop) {
            guard hash.verify(password: password) else { return Verdict(isCorrect: false) }
            guard hash.isBelow(logN: logN) else { return Verdict(isCorrect: true) }
            return Verdict(isCorrect: true, upgraded: try? PasswordHash.make(password: password, logN: logN))
        }
    }

    /// A new hash of `password` at N = 2^`logN`; nil (without queueing) when too many requests are waiting.
    package func hash(_ password: String, logN: Int, on eventLoop: any EventLoop) -> EventLoopFuture<PasswordHash>? {
        run(on: eventLoop) { try PasswordHash.make(password: password, logN: logN) }
    }

    /// Runs `work` on the hashing thread (internal for the tests: any work, to see the priority it runs at).
    package func run<Value: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable () throws -> Value) -> EventLoopFuture<Value>? {
        guard queued.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maximumQueued else {
            queued.wrappingSubtract(1, ordering: .relaxed)
            return nil
        }
        // If this check has not finished after `patience`, the idle-priority thread is starved
        // (waiting, or descheduled halfway): raise it, from this loop's thread. The thread itself
        // keeps the raise for a check that has already waited that long (the watchdog may fire
        // before the starved thread even picks the check up).
        let enqueued = NIODeadline.now()
        let watchdog = eventLoop.scheduleTask(in: Self.patience) { [self] in raise() }
        return pool.runIfActive(eventLoop: eventLoop) { [self] in
            adoptPriority(enqueued: enqueued)
            defer { queued.wrappingSubtract(1, ordering: .relaxed) }
            return try work()
        }.always { _ in watchdog.cancel() }
    }

    /// Called on the hashing thread before each check: remembers the thread, and runs the check
    /// at normal priority when it has waited `patience` already or others wait behind it, at
    /// SCHED_IDLE otherwise. Decided under the lock the watchdog's `raise` takes, so a raise for
    /// this check is never undone: whichever comes second sees the deadline passed.
    private func adoptPriority(enqueued: NIODeadline) {
        #if os(Linux)
        thread.withLock { thread in
            thread.handle = pthread_self()
            let urgent = NIODeadline.now() - enqueued >= Self.patience || queued.load(ordering: .relaxed) > 1
            if urgent != thread.isRaised {
                thread.isRaised = urgent
                Self.setPolicy(pthread_self(), raised: urgent)
            } else if !thread.isRaised {
                // A new thread starts at normal priority without saying so.
                Self.setPolicy(pthread_self(), raised: false)
            }
        }
        #endif
    }

    private func raise() {
        #if os(Linux)
        thread.withLock { thread in
            guard let handle = thread.handle, !thread.isRaised else { return }
            thread.isRaised = true
            Self.setPolicy(handle, raised: true)
        }
        #endif
    }

    /// SCHED_IDLE, or the normal SCHED_OTHER when raised; per thread on Linux.
    private static func setPolicy(_ handle: pthread_t, raised: Bool) {
        #if os(Linux)
        var parameters = sched_param(sched_priority: 0)
        _ = pthread_setschedparam(handle, raised ? Int32(SCHED_OTHER) : schedIdle, &parameters)
        #endif
    }

    /// SCHED_IDLE from <sched.h> (exported only with _GNU_SOURCE).
    private static let schedIdle: Int32 = 5

    package func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
