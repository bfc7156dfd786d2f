import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import ChatCore
import Server
import Testing

@Suite struct PasswordCheckerTests {
    /// The hashing thread works at SCHED_IDLE; a check that has waited `patience` runs at normal
    /// priority, even when the watchdog's raise came before the thread picked it up. (It used to
    /// undo that raise: on a busy machine, the second of two logins at once then waited, starved,
    /// for as long as the machine stayed busy.) The work here reports the policy it runs under.
    @Test func aCheckThatWaitedItsPatienceRunsAtNormalPriority() async throws {
        #if os(Linux)
        let checker = PasswordChecker()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // The first takes longer than the patience, so the second waits longer than it too.
        let longer = PasswordChecker.patience.nanoseconds / 1000 * 3 / 2
        let first = try #require(checker.run(on: loop) { usleep(useconds_t(longer)) })
        let second = try #require(checker.run(on: loop) { sched_getscheduler(0) })
        _ = try await first.get()
        #expect(try await second.get() == SCHED_OTHER, "it had waited its patience: normal priority")
        // Alone again, and picked up within its patience (as good as always; on a machine so
        // busy that it was not, normal priority is right): idle priority again.
        let enqueued = NIODeadline.now()
        let third = try await #require(checker.run(on: loop) { (policy: sched_getscheduler(0), started: NIODeadline.now()) }).get()
        if third.started - enqueued < PasswordChecker.patience {
            #expect(third.policy == SCHED_IDLE_POLICY)
        }
        await checker.shutdown()
        try await group.shutdownGracefully()
        #endif
    }
}

/// SCHED_IDLE (<sched.h> exports it only with _GNU_SOURCE).
private let SCHED_IDLE_POLICY: Int32 = 5
