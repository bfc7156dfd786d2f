import ChatProtocol
import Foundation
import Testing

/// chat-bench against the real server, with small numbers: the benchmark itself works.
@Suite struct BenchSmokeTests {
    @Test func fanoutDeliversEverythingInOrder() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"rate":null},"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let bench = try ChildProcess(executable("chat-bench"), [
            "fanout", "--port", String(server.port), "--clients", "30", "--senders", "3", "--messages", "20",
            "--server-pid", String(server.child.pid), "--timeout", "120", "--drain-idle", "20", "--timeline",
        ])
        #expect(bench.waitForExit(timeout: 180) == 0)
        _ = bench.stdout.waitForEnd()
        let report = try JSONParser.parse(bench.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["delivered"]?.integerValue == Int64(30 * 60))
        #expect(report["lost"]?.integerValue == Int64(0))
        #expect(report["order_errors"]?.integerValue == Int64(0))
        // --timeline: [seconds into the sending, worst ms] per 100 ms, at least one window.
        let timeline = try #require(report["timeline"]?.arrayValue)
        #expect(!timeline.isEmpty && timeline.allSatisfy { $0.arrayValue?.count == 2 })
    }

    @Test func aStalledClientIsDroppedWhileTheOthersGetEverything() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"rate":null,"maxOutboundBytes":1048576},"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let bench = try ChildProcess(executable("chat-bench"), [
            // 8 MB, never more than 100 messages (100 KB) ahead of the slowest reader, so however
            // busy the machine, the readers' backlog stays far below the 1 MB limit while the
            // stalled client's grows past it.
            "fanout", "--port", String(server.port), "--clients", "10", "--senders", "2", "--messages", "4000",
            "--size", "1000", "--rate", "2000", "--window", "100", "--stalled", "1", "--timeout", "240", "--drain-idle", "30",
        ])
        #expect(bench.waitForExit(timeout: 300) == 0)
        _ = bench.stdout.waitForEnd()
        let report = try JSONParser.parse(bench.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["lost"]?.integerValue == Int64(0), "the readers lose nothing")
        #expect(server.child.stderr.wait(for: "slow consumer"), "the stalled one was dropped")
    }

    @Test func idleReportsMemoryPerConnection() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", "{}")
        let server = try ServerProcess(config: scratch.file("config.json"))
        let bench = try ChildProcess(executable("chat-bench"), [
            "idle", "--port", String(server.port), "--clients", "50", "--server-pid", String(server.child.pid),
        ])
        #expect(bench.waitForExit(timeout: 90) == 0)
        _ = bench.stdout.waitForEnd()
        let report = try JSONParser.parse(bench.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["clients"]?.integerValue == Int64(50))
        #expect(report["rss_per_connection_kib"] != nil)
    }
}
