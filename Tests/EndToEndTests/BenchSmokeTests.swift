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
            "--server-pid", String(server.child.pid), "--timeout", "60",
        ])
        #expect(bench.waitForExit(timeout: 90) == 0)
        _ = bench.stdout.waitForEnd()
        let report = try JSONParser.parse(bench.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["delivered"]?.integerValue == Int64(30 * 60))
        #expect(report["lost"]?.integerValue == Int64(0))
        #expect(report["order_errors"]?.integerValue == Int64(0))
    }

    @Test func aStalledClientIsDroppedWhileTheOthersGetEverything() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"rate":null,"maxOutboundBytes":1048576},"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let bench = try ChildProcess(executable("chat-bench"), [
            // 6 MB at a pace the readers keep up with; the stalled client falls behind alone.
            "fanout", "--port", String(server.port), "--clients", "10", "--senders", "2", "--messages", "3000",
            "--size", "1000", "--rate", "2000", "--stalled", "1", "--timeout", "60",
        ])
        #expect(bench.waitForExit(timeout: 90) == 0)
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
