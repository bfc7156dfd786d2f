import Foundation
import NIOCore
import NIOPosix
@testable import Server
import Storage
import Synchronization
import Testing

@Suite(.serialized) struct PasswordCheckerTests {
    static let password = "correct horse battery staple"

    /// The hashing thread waits at SCHED_IDLE; once a check has waited `patience` it is raised
    /// and must stay raised until that check is done, even when the raise came before the
    /// starved thread picked the check up. Every core is kept busy at normal priority here
    /// (threads that stop by themselves), which starves an idle-priority thread for as long as
    /// they run: a check that stays at idle priority would take until they stop.
    @Test func aCheckIsNotStarvedWhileEveryCoreIsBusy() async throws {
        let checker = PasswordChecker()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let hash = try PasswordHash.make(password: Self.password)
        // A first check on the machine as it is leaves the hashing thread idle-priority, waiting.
        #expect(try await #require(checker.verify(Self.password, against: hash, on: group.next())).get())

        let spinners = ProcessInfo.processInfo.activeProcessorCount + 1
        let busyFor: TimeInterval = 60
        let stop = Atomic<Bool>(false)
        let running = Atomic<Int>(0)
        for _ in 0..<spinners {
            Thread {
                running.add(1, ordering: .relaxed)
                let deadline = Date().addingTimeInterval(busyFor)
                var spins = 0
                while !stop.load(ordering: .relaxed) {
                    spins &+= 1
                    if spins % 1_000_000 == 0, Date() > deadline { break }
                }
            }.start()
        }
        while running.load(ordering: .relaxed) < spinners { try await Task.sleep(for: .milliseconds(5)) }

        // Checks in pairs: the second one's watchdog fires while the first is being hashed, so
        // the raise for it comes before the thread picks it up (the raise that used to be undone).
        let started = Date()
        for _ in 0..<3 {
            let pair = try [0, 1].map { _ in try #require(checker.verify(Self.password, against: hash, on: group.next())) }
            for check in pair { #expect(try await check.get()) }
        }
        let elapsed = Date().timeIntervalSince(started)
        stop.store(true, ordering: .relaxed)
        await checker.shutdown()
        try await group.shutdownGracefully()
        #expect(elapsed < busyFor / 2, "6 checks took \(elapsed) s beside \(spinners) busy threads")
    }
}
