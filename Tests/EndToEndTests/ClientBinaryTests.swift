import ChatClient
import ChatProtocol
import ChatTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ClientReconnectTests {
    /// The server dies without a word (kill -9) and comes back on the same port: the session
    /// reconnects, rejoins with `after`, and the user sees every message exactly once.
    @Test func aSessionSurvivesAServerCrashLosingAndRepeatingNothing() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"rate":null,"loginTimeoutSeconds":0},"log":{"messages":false}}"#)
        let first = try ServerProcess(config: scratch.file("config.json"))
        let port = first.port
        var options = ChatSession.Options(host: "127.0.0.1", port: port, name: "alice")
        options.initialBackoff = 0.05
        let session = ChatSession(options: options)
        try await session.start()
        try await session.join(room: "lobby")
        var received: [Int64] = []
        var sawDisconnect = false
        var iterator = session.events.makeAsyncIterator()
        func collect(until count: Int) async throws {
            while received.count < count {
                guard let event = await iterator.next() else { throw ChatClientError.connectionClosed }
                switch event {
                case .message(let message): received.append(message.id)
                case .history(_, let messages, _): received += messages.map(\.id)
                case .disconnected: sawDisconnect = true
                default: break
                }
            }
        }
        for index in 0..<3 { try await session.say(room: "lobby", text: "before \(index)") }
        try await collect(until: 3)

        first.child.signal(SIGKILL)
        _ = first.child.waitForExit()
        let second = try ServerProcess(config: scratch.file("config.json"), extraArguments: ["--port", String(port)])
        let bob = try second.user("bob")
        try bob.join("lobby")
        for index in 0..<4 { try bob.say("while away \(index)") }

        try await collect(until: 7)
        try await session.say(room: "lobby", text: "after")
        try await collect(until: 8)
        #expect(sawDisconnect)
        #expect(Set(received).count == 8, "nothing repeated: \(received)")
        #expect(received == received.sorted())
        await session.quit()
    }
}

/// Runs chat-client with `input` on standard input (a pipe, so pipe mode).
func pipeClient(_ arguments: [String], input: String, environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    try runToCompletion("chat-client", arguments, input: input, environment: environment)
}

@Suite struct ClientPipeModeTests {
    @Test func everyLineIsAMessageAndEveryEventALine() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"rate":{"messagesPerSecond":50,"burst":5}}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let watcher = try server.user("watcher")
        try watcher.join("dev")
        let lines = (0..<30).map { "line \($0), with \"quotes\"" }
        // 30 lines against a burst of 5: the client waits out the rate limit, losing nothing.
        let result = try pipeClient(["bot", "--port", String(server.port), "--room", "#Dev"], input: lines.joined(separator: "\n") + "\n\n")
        #expect(result.status == 0, "stderr: \(result.err)")
        let printed = result.out.split(separator: "\n").filter { $0.contains("#dev <bot> ") }
        #expect(printed.count == 30)
        #expect(printed.first?.hasSuffix("#dev <bot> line 0, with \"quotes\"") == true)
        var texts: [String] = []
        while texts.count < 30 { texts.append(try watcher.next("message").text ?? "") }
        #expect(texts == lines)
    }

    @Test func jsonPrintsFrames() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", "{}")
        let server = try ServerProcess(config: scratch.file("config.json"))
        let result = try pipeClient(["bot", "--port", String(server.port), "--json"], input: "hello\n")
        #expect(result.status == 0)
        let frames = result.out.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        #expect(frames.contains { $0["type"]?.stringValue == "message" && $0["text"]?.stringValue == "hello" })
    }

    @Test func failuresAreNamedAndTheExitIsNonZero() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"maxMessageBytes":10}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let result = try pipeClient(["bot", "--port", String(server.port)], input: "short\nthis line is far too long\nok\n")
        #expect(result.status == 1)
        #expect(result.err.contains("line 2"))
        #expect(result.err.contains("longer than 10 bytes"))
        #expect(result.out.contains("<bot> short") && result.out.contains("<bot> ok"))

        let noName = try pipeClient(["--port", String(server.port)], input: "x\n")
        #expect(noName.status == 64)
        let refused = try pipeClient(["bot", "--port", "1"], input: "x\n")
        #expect(refused.status == 1)
        #expect(refused.err.contains("cannot connect"))
    }

    @Test func thePasswordComesFromTheEnvironment() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"server":{"password":"s3cret"}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let wrong = try pipeClient(["bot", "--port", String(server.port)], input: "x\n", environment: ["CHAT_PASSWORD": "nope"])
        #expect(wrong.status == 1)
        #expect(wrong.err.contains("wrong password"))
        let right = try pipeClient(["bot", "--port", String(server.port)], input: "x\n", environment: ["CHAT_PASSWORD": "s3cret"])
        #expect(right.status == 0, "\(right.err)")
    }
}

/// A terminal driven through tmux: what a person sees and types. tmux is run with
/// posix_spawn and waitpid: Foundation's Process watches a descriptor that the tmux server
/// inherits, and would never see the client exit.
final class TmuxTerminal: @unchecked Sendable {
    let socket = "chat-test-\(UUID().uuidString.prefix(8))"
    let session = "client"

    init(command: String, columns: Int = 100, rows: Int = 30) throws {
        let (status, _) = try tmux(["new-session", "-d", "-s", session, "-x", String(columns), "-y", String(rows),
                                    // The pane stays after the command, until `close()`: a test that reads it late
                                    // (its task waiting for a thread on a busy machine) still finds it. Bounded, in
                                    // case the test process dies without closing it.
                                    command + "; echo EXIT=$?; sleep 900"])
        guard status == 0 else { throw POSIXError(.ECHILD) }
    }

    /// Runs one tmux command to completion; returns its status and standard output.
    @discardableResult
    func tmux(_ arguments: [String]) throws -> (Int32, String) {
        let outputPath = FileManager.default.temporaryDirectory.appending(path: "tmux-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try spawnAndWait(["tmux", "-L", socket] + arguments, outputPath: outputPath)
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (status, output)
    }

    func type(_ keys: String...) throws {
        try tmux(["send-keys", "-t", session] + keys)
    }

    func typeLiterally(_ text: String) throws {
        try tmux(["send-keys", "-t", session, "-l", text])
    }

    func screen() throws -> String {
        try tmux(["capture-pane", "-t", session, "-p"]).1
    }

    /// Waits until the screen shows `text`.
    func waitFor(_ text: String, timeout: Double = 60) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let screen = try screen()
            if screen.contains(text) { return screen }
            guard Date() < deadline else {
                Issue.record("the screen never showed \(text.debugDescription); it shows:\n\(screen)")
                return screen
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Ends the tmux server and everything in it.
    func close() {
        _ = try? tmux(["kill-server"])
    }

    deinit { close() }
}

@Suite struct ClientTerminalTests {
    @Test func historyThenLiveChatWithoutBreakingTheTypedLineAndCtrlCExitsZero() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"server":{"motd":"hello testers"}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let bob = try server.user("bob")
        try bob.join("lobby")
        try bob.say("an old message")

        let terminal = try TmuxTerminal(command: "\(executable("chat-client")) alice --port \(server.port)")
        defer { terminal.close() }
        var screen = try await terminal.waitFor("#lobby: live")
        #expect(screen.contains("<bob> an old message"), "history is shown")
        #expect(screen.contains("hello testers"))
        #expect(screen.range(of: "an old message")!.lowerBound < screen.range(of: "#lobby: live")!.lowerBound)

        try terminal.typeLiterally("half a li")
        _ = try await terminal.waitFor("[#lobby] half a li")
        try bob.say("a message while alice types")
        screen = try await terminal.waitFor("<bob> a message while alice types")
        let lastLine = screen.split(separator: "\n").last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(lastLine == "[#lobby] half a li", "the half-typed line is intact")

        try terminal.typeLiterally("ne")
        try terminal.type("Enter")
        #expect(try bob.next("message").text == "half a line", "Enter sends it")
        _ = try await terminal.waitFor("<alice> half a line")

        try terminal.type("C-c")
        screen = try await terminal.waitFor("EXIT=")
        #expect(screen.contains("EXIT=0"))
        let presence = try bob.next("presence")
        #expect(presence["event"]?.stringValue == "leave")
    }

    @Test func commandsAndTheShutdownNotice() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", "{}")
        let server = try ServerProcess(config: scratch.file("config.json"))
        let terminal = try TmuxTerminal(command: "\(executable("chat-client")) carol --port \(server.port) --room dev")
        defer { terminal.close() }
        _ = try await terminal.waitFor("#dev: live")
        try terminal.typeLiterally("/me waves")
        try terminal.type("Enter")
        _ = try await terminal.waitFor("* carol waves")
        try terminal.typeLiterally("/join lobby")
        try terminal.type("Enter")
        _ = try await terminal.waitFor("[#lobby]")
        try terminal.typeLiterally("/rooms")
        try terminal.type("Enter")
        _ = try await terminal.waitFor("#dev  1 online")
        try terminal.typeLiterally("/help")
        try terminal.type("Enter")
        _ = try await terminal.waitFor("/history [N]")
        server.child.signal(SIGTERM)
        let screen = try await terminal.waitFor("EXIT=")
        #expect(screen.contains("shutting down"))
        #expect(screen.contains("EXIT=0"))
    }
}
