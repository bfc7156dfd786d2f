import ChatProtocol
import ChatTestSupport
import Foundation
import Logging
import Server
import ServiceLifecycle
import Storage
import Testing

/// Every long-running part of the server is a `Service`; one `ServiceGroup` stops them in the
/// reverse of `ChatServer.services`, so the shutdown order is the group's.
@Suite struct ServiceGroupTests {
    @Test func theServicesStopListenersFirstAndTheStoreAfterTheSessions() async throws {
        let server = try await TestServer.start()
        #expect(server.server.services.map(\.description) == [
            "event loops", "password hashing", "store", "commit feed", "sessions", "maintenance", "chat listener",
        ])
        let group = ServiceGroup(services: server.server.services, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        // The group runs on threads of its own: the suite's other tests block the concurrency
        // pool's few threads in socket reads, and the shutdown must not wait for them.
        let running = Task(executorPreference: QueueExecutor.shared) { try await group.run() }
        let alice = try server.user("alice")
        try alice.join("lobby")
        let said = try alice.say("before the stop")
        // The group's shutdown runs on Swift's concurrency pool: the socket is read on a thread
        // of its own, not on one of the pool's few threads, which the group needs.
        let reading = BackgroundThread { try alice.readUntilClosed() }
        await group.triggerGracefulShutdown()
        // The session is told and closed only after what it said was delivered, and its read
        // marker is saved before the store closes.
        let frames = try await reading.value
        #expect(frames.last?.type == "shutdown")
        try await running.value
        #expect(throws: (any Error).self, "the listener is closed") { try server.client().next() }
        let reopened = try ChatDatabase.openReadOnly(path: server.folder + "/chat.sqlite")
        let alicesRecord = try #require(try reopened.user(named: "alice"))
        let lobby = try #require(try reopened.room(named: "lobby"))
        #expect(try reopened.readMarker(userID: alicesRecord.id, roomID: lobby.id) == said.id)
        await server.stop() // after the group: nothing is stopped twice
    }
}

/// A task executor on a dispatch queue of its own, off Swift's concurrency pool.
final class QueueExecutor: TaskExecutor {
    static let shared = QueueExecutor()
    private let queue = DispatchQueue(label: "service-group-test", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
