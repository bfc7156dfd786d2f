import ArgumentParser
@testable import BenchKit
import Testing

@Suite struct BenchArgumentTests {
    @Test func fanoutDefaultsAreTheBurstWorkload() throws {
        let command = try FanoutBenchmark.parse(["--port", "9999"])
        #expect(command.clients == 1000)
        #expect(command.senders == 10)
        #expect(command.messages == 100)
        #expect(command.size == 100)
        #expect(command.rate == 0)
        #expect(command.server.host == "127.0.0.1")
        #expect(command.server.timeout == 120)
    }

    @Test(arguments: [
        ["--port", "0"], ["--port", "70000"], ["--port", "9999", "--host", "10.0.0.1"], ["--port", "9999", "--host", "example.com"],
        ["--port", "9999", "--clients", "0"], ["--port", "9999", "--senders", "0"], ["--port", "9999", "--clients", "5", "--senders", "6"],
        ["--port", "9999", "--stalled", "1000"], ["--port", "9999", "--size", "10"], ["--port", "9999", "--rate", "-1"],
        ["--port", "9999", "--timeout", "0"], ["--clients", "5"], ["--port", "9999", "--window", "10"], ["--port", "9999", "--rate", "100", "--window", "-1"],
    ])
    func fanoutRejectsWhatCannotRunOrLeavesLoopback(arguments: [String]) {
        #expect(throws: (any Error).self) { _ = try FanoutBenchmark.parse(arguments) }
    }

    @Test func loopbackAddressesAreAccepted() throws {
        for host in ["127.0.0.1", "localhost", "::1", "127.0.0.2"] {
            _ = try FanoutBenchmark.parse(["--port", "9999", "--host", host])
        }
    }

    @Test func idleNeedsTheServerPidAndJoinChecksItsCounts() throws {
        #expect(throws: (any Error).self) { _ = try IdleBenchmark.parse(["--port", "9999"]) }
        #expect(try IdleBenchmark.parse(["--port", "9999", "--server-pid", "42"]).clients == 10_000)
        #expect(try JoinBenchmark.parse(["--port", "9999"]).history == 500)
        #expect(throws: (any Error).self) { _ = try JoinBenchmark.parse(["--port", "9999", "--joins", "0"]) }
        #expect(throws: (any Error).self) { _ = try StorageBenchmark.parse(["--messages", "10"]) }
    }

    @Test func percentilesAndGrouping() {
        let summary = Summary((1...100).map(Double.init))
        #expect(summary.median == 50)
        #expect(summary.percentile(99) == 99)
        #expect(summary.max == 100)
        #expect(grouped(1_234_567.4) == "1,234,567")
    }
}
