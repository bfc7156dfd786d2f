import ChatTestSupport
import Foundation
import Server
import Synchronization
import Testing

/// Progress for everyone while some clients write as fast as they can (issue 9: "fairness under
/// overload"). Asserted as properties that hold at any CPU speed, not as latencies.
@Suite struct OverloadTests {
    /// Writes `count` messages into `room` as fast as TCP takes them, on a thread of its own,
    /// while another thread reads until every one is acknowledged.
    final class Flooder: @unchecked Sendable {
        let client: LineClient
        let count: Int
        let blob: [UInt8]
        let acknowledged = Atomic<Int>(0)
        let finished = DispatchSemaphore(value: 0)

        init(server: TestServer, name: String, room: String, count: Int) throws {
            client = try server.user(name)
            _ = try client.join(room, extra: ["history": 0])
            self.count = count
            // Short, so that all its acknowledgements fit within maxOutboundBytes even if the reading
            // thread gets no CPU until the end: a slow test machine must not make a slow consumer.
            let text = String(repeating: "x", count: 20)
            var blob: [UInt8] = []
            for index in 0..<count {
                blob += Array(#"{"type":"say","room":"\#(room)","text":"\#(text)","id":\#(index)}"#.utf8) + [0x0A]
            }
            self.blob = blob
        }

        /// Starts writing and reading; `done` runs on the reading thread once all are acknowledged.
        func start(done: @escaping @Sendable () -> Void) {
            Thread.detachNewThread { [self] in client.send(bytes: blob) }
            Thread.detachNewThread { [self] in
                while acknowledged.load(ordering: .relaxed) < count {
                    guard let line = try? client.nextLine(timeout: 60) else { break }
                    if line.contains(#""type":"message""#), line.contains(#""re":"#) {
                        acknowledged.add(1, ordering: .relaxed)
                    }
                }
                if acknowledged.load(ordering: .relaxed) == count { done() }
                finished.signal()
            }
        }
    }

    @Test func floodersShareTheWriterAndEveryoneElseGetsThrough() async throws {
        try await withServer { server in
            let perFlooder = 20_000
            let flooders = try (0..<4).map { try Flooder(server: server, name: "flood\($0)", room: "flood\($0)", count: perFlooder) }
            let paced = try server.user("paced")
            _ = try paced.join("quiet", extra: ["history": 0])
            let watcher = try server.user("watcher")
            _ = try watcher.join("quiet", extra: ["history": 0])
            _ = server.database.takeWriterQueuePeak()
            // When the first flooder is done, how far each of them has got.
            let progressWhenFirstDone = Mutex<[Int]?>(nil)
            for flooder in flooders {
                flooder.start {
                    let progress = flooders.map { $0.acknowledged.load(ordering: .relaxed) }
                    progressWhenFirstDone.withLock { if $0 == nil { $0 = progress } }
                }
            }
            // Ten messages one at a time while the floods go on: every one is stored, acknowledged
            // and delivered, in order.
            for index in 0..<10 {
                let ack = try paced.say("paced \(index)", in: "quiet")
                #expect(ack.text == "paced \(index)")
                let seen = try watcher.next("message")
                #expect(seen.text == "paced \(index)")
            }
            for flooder in flooders {
                #expect(flooder.finished.wait(timeout: .now() + 180) == .success)
                #expect(flooder.acknowledged.load(ordering: .relaxed) == perFlooder)
            }
            // Everybody progresses at once: when the first flooder is done, each of the others has
            // had most of its messages acknowledged too. (Before the fix a flooder could wait
            // seconds for its first acknowledgement while the others got thousands.)
            let progress = progressWhenFirstDone.withLock { $0 } ?? []
            #expect(progress.count == 4 && progress.allSatisfy { $0 >= perFlooder / 2 },
                    "acknowledged per flooder when the first was done: \(progress)")
            // The writer's queue is what stands between anyone's message and its commit: each
            // connection may have only so many messages in it, whatever the flooders' speed.
            let peak = server.database.takeWriterQueuePeak()
            #expect(peak <= 4 * ChatServer.maxUncommittedMessagesPerConnection + 8, "writer queue peaked at \(peak)")
        }
    }
}
