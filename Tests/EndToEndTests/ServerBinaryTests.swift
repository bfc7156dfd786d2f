import ChatTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ServerBinaryTests {
    @Test func printsTheRealPortAndServesChat() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"log":{"messages":true}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        #expect(server.child.stdout.text.hasPrefix("listening on 127.0.0.1:\(server.port)\n"))
        let alice = try server.user("alice")
        try alice.join("lobby")
        let bob = try server.user("bob")
        try bob.join("lobby")
        try alice.say("hello from the binary")
        #expect(try bob.next("message").text == "hello from the binary")
        // The console shows the message, and the database sits next to the config file.
        #expect(server.child.stderr.wait(for: "#lobby <alice> hello from the binary"))
        #expect(FileManager.default.fileExists(atPath: scratch.file("chat.sqlite")))
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalSendsShutdownToEveryClientAndExitsZero(signal: Int32) async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", "{}")
        let server = try ServerProcess(config: scratch.file("config.json"))
        let alice = try server.user("alice")
        try alice.join("lobby")
        let anonymous = try server.client()
        _ = try anonymous.next("greeting")
        server.child.signal(signal)
        for client in [alice, anonymous] {
            let frames = try client.readUntilClosed()
            #expect(frames.last?.type == "shutdown")
        }
        #expect(server.child.waitForExit() == 0)
    }

    @Test func acknowledgedMessagesSurviveKillDashNine() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"rate":null},"log":{"messages":false}}"#)
        var acknowledged: [Int64] = []
        do {
            let server = try ServerProcess(config: scratch.file("config.json"))
            let alice = try server.user("alice")
            try alice.join("lobby")
            // Messages keep flowing when the kill lands; only the acknowledged ones are promised.
            for index in 0..<300 {
                alice.send(["type": "say", "room": "lobby", "text": "durable \(index)", "id": index])
            }
            while acknowledged.count < 150 {
                let frame = try alice.next("message")
                if frame.re != nil, let id = frame.id { acknowledged.append(id) }
            }
            server.child.signal(SIGKILL)
            #expect(server.child.waitForExit() != nil)
            // Acks that were already on their way count too.
            while let line = try? alice.nextLine(timeout: 2), let frame = try? Frame(line) {
                if frame.type == "message", frame.re != nil, let id = frame.id { acknowledged.append(id) }
            }
        }
        let restarted = try ServerProcess(config: scratch.file("config.json"))
        let reader = try restarted.user("reader")
        try reader.join("lobby", extra: ["history": 0])
        var stored: Set<Int64> = []
        var after: Int64 = 0
        while true {
            reader.send(["type": "history", "room": "lobby", "after": after, "limit": 500, "id": "page"])
            let page = try reader.next("history")
            stored.formUnion(page.messageIDs)
            guard page.more == true, let last = page.messageIDs.last else { break }
            after = last
        }
        #expect(Set(acknowledged).isSubset(of: stored), "lost: \(Set(acknowledged).subtracting(stored).sorted())")
        // Ids keep increasing after the restart.
        let next = try reader.say("after restart")
        #expect((next.id ?? 0) > (stored.max() ?? 0))
    }

    @Test func worksFromAnyDirectoryWithRelativePathsNextToTheConfig() async throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.file("deploy"), withIntermediateDirectories: true)
        try scratch.write("deploy/config.json", #"{"database":{"path":"data/history.sqlite"}}"#)
        let server = try ServerProcess(config: "deploy/config.json", directory: scratch.path)
        let alice = try server.user("alice")
        try alice.join("lobby")
        try alice.say("stored next to the config")
        #expect(FileManager.default.fileExists(atPath: scratch.file("deploy/data/history.sqlite")))
    }

    @Test func flagsOverrideTheFileAndTheEnvironmentSetsThePassword() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"server":{"port":1,"password":"from-file"}}"#)
        let server = try ServerProcess(
            config: scratch.file("config.json"),
            extraArguments: ["--port", "0", "--database", scratch.file("flag.sqlite")],
            environment: ["CHAT_SERVER_PASSWORD": "from-env"])
        let wrong = try server.client()
        _ = try wrong.next("greeting")
        wrong.send(#"{"type":"login","name":"alice","password":"from-file"}"#)
        #expect(try wrong.next().code == "bad_password")
        let right = try server.client()
        try right.login("alice", password: "from-env")
        #expect(FileManager.default.fileExists(atPath: scratch.file("flag.sqlite")))
    }

    @Test(arguments: [
        (#"{"server": {"port": 99999}}"#, "server.port must be <= 65535"),
        (#"{"history": {"onJoin": -1}}"#, "history.onJoin must be >= 0"),
        (#"{"limits": {"maxClients": "many"}}"#, "limits.maxClients must be an integer, got a string"),
        (#"{"server": {"nmae": "x"}}"#, "unknown key server.nmae"),
        ("{\n  \"server\": {\n    \"port\": 9999,\n  }\n}", "line 4"),
        (#"{"database": {"durability": "sometimes"}}"#, "database.durability"),
    ])
    func aBadConfigurationExitsWith78NamingTheProblem(config: String, message: String) async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", config)
        let child = try ChildProcess(executable("chat-server"), ["--config", scratch.file("config.json"), "--port", "0"])
        #expect(child.waitForExit() == 78)
        #expect(child.stderr.waitForEnd())
        #expect(child.stderr.text.contains(message), "stderr was: \(child.stderr.text)")
        #expect(child.stdout.text.isEmpty)
    }

    @Test func aMissingConfigFileExitsWith78NamingThePath() async throws {
        let scratch = try Scratch()
        let path = scratch.file("nope.json")
        let child = try ChildProcess(executable("chat-server"), ["--config", path])
        #expect(child.waitForExit() == 78)
        #expect(child.stderr.waitForEnd())
        #expect(child.stderr.text.contains(path))
    }
}

@Suite struct SignalTests {
    /// Closing the terminal (SIGHUP) or a stray SIGUSR1 must never stop the server: SIGHUP
    /// reloads the password and MOTD, connections stay up.
    @Test func sighupReloadsAndNoOtherSignalButIntAndTermStopsTheServer() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"server":{"motd":"first"},"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let staying = try server.user("staying")
        try staying.join("lobby")
        #expect(try server.client().loginAnswer("early", accountPassword: nil).value["motd"]?.stringValue == "first")

        try scratch.write("config.json", #"{"server":{"motd":"second","password":"now-secret"},"log":{"messages":false}}"#)
        server.child.signal(SIGHUP)
        #expect(server.child.stderr.wait(for: "configuration reloaded: server.password, server.motd changed"))
        let late = try server.client()
        #expect(try late.next("greeting").value["password_required"] == .bool(true))
        let welcome = try late.loginAnswer("late", accountPassword: nil, password: "now-secret", readGreeting: false)
        #expect(welcome.value["motd"]?.stringValue == "second")

        try scratch.write("config.json", #"{"server":{"motd":5}}"#)
        server.child.signal(SIGHUP)
        #expect(server.child.stderr.wait(for: "was not reloaded"))
        server.child.signal(SIGUSR1)
        #expect(server.child.stderr.wait(for: "ignored"))
        #expect(try staying.say("still here").type == "message", "connections survive")
        server.child.signal(SIGTERM)
        #expect(server.child.waitForExit() == 0)
    }
}

@Suite struct MetricsBinaryTests {
    @Test func theMetricsListenerIsAnnouncedOnItsOwnLine() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"metrics":{"enabled":true,"port":0},"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let port = try server.announcedPort(of: "metrics")
        #expect(port != server.port && port > 0)
        let scrape = try shell("exec 3<>/dev/tcp/127.0.0.1/\(port); printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3")
        #expect(scrape.out.contains("chat_connections"), "\(scrape.out)")
    }
}
