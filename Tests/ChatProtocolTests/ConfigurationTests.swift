import ChatConfiguration
import Foundation
import Testing

@Suite struct ConfigurationTests {
    func parse(_ text: String) throws(ConfigurationError) -> ServerConfiguration {
        try ServerConfiguration.parse(Array(text.utf8))
    }

    @Test func anEmptyObjectGivesTheDocumentedDefaults() throws {
        let configuration = try parse("{}")
        #expect(configuration == ServerConfiguration())
        #expect(configuration.server.port == 9999)
        #expect(configuration.server.host == "127.0.0.1")
        #expect(configuration.database.path == "chat.sqlite")
        #expect(configuration.history.onJoin == 50)
        #expect(configuration.history.maxReplay == 500)
        #expect(configuration.limits.maxLineBytes == 16384)
        #expect(configuration.limits.rate == .init(messagesPerSecond: 10, burst: 20))
        #expect(configuration.rooms.preset == ["lobby"])
    }

    @Test func theCheckedInConfigIsTheDefaults() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appending(path: "config.json").path
        var configuration = try ServerConfiguration.load(path: path, environment: [:])
        #expect(configuration.database.path.hasSuffix("/chat.sqlite"))
        configuration.database.path = "chat.sqlite"
        #expect(configuration == ServerConfiguration())
    }

    @Test func everyKeyIsRead() throws {
        let configuration = try parse("""
            {"server": {"name": "n", "host": "0.0.0.0", "port": 0, "password": "p", "motd": "m"},
             "database": {"path": "/x.db", "durability": "full"},
             "history": {"onJoin": 0, "maxReplay": 7, "retentionDays": 30},
             "rooms": {"default": "#Main", "autoCreate": false, "preset": ["Main", "ops"]},
             "limits": {"maxClients": 3, "maxLineBytes": 1000, "maxMessageBytes": 900, "maxNameLength": 5,
                        "maxOutboundBytes": 2048, "idleTimeoutSeconds": 0, "rate": null},
             "log": {"level": "debug", "messages": false},
             "irc": {"enabled": true, "host": "::1", "port": 6668}}
            """)
        let more = try parse("""
            {"accounts": {"registration": "admin", "guests": false, "minPasswordLength": 12, "scryptLogN": 15}, "server": {"eventLoops": 3, "directWrites": false},
             "web": {"enabled": true, "port": 0, "tls": true, "allowedOrigins": ["https://Gamja.example.org:8443"]}, "metrics": {"enabled": true, "host": "127.0.0.2", "port": 9200},
             "tls": {"certificate": "c.pem", "key": "k.pem"}, "database": {"postgres": "postgres://chat@localhost/chat"},
             "limits": {"loginTimeoutSeconds": 5, "maxConnectionsPerAddress": 9, "maxPendingLoginsPerAddress": 8,
                        "maxPendingLogins": 7, "newNamesPerAddressPerHour": 6},
             "rooms": {"maxRooms": 50, "createPerUserPerHour": 0}}
            """)
        #expect(more.accounts.registration == .admin && !more.accounts.guests && more.accounts.minPasswordLength == 12)
        #expect(more.web.enabled && more.web.tls && more.web.port == 0)
        #expect(more.web.allowedOrigins == ["https://gamja.example.org:8443"])
        #expect(more.server.eventLoops == 3 && more.server.eventLoopCount(cores: 16) == 3)
        #expect(more.accounts.scryptLogN == 15 && ServerConfiguration().accounts.scryptLogN == 13)
        #expect(!more.server.directWrites && ServerConfiguration().server.directWrites)
        #expect(ServerConfiguration().server.eventLoopCount(cores: 2) == 1)
        #expect(ServerConfiguration().server.eventLoopCount(cores: 1) == 1)
        #expect(ServerConfiguration().server.eventLoopCount(cores: 8) == 7)
        #expect(more.metrics.host == "127.0.0.2" && more.metrics.port == 9200)
        #expect(more.tls.certificate == "c.pem" && more.tls.key == "k.pem")
        #expect(more.database.postgres == "postgres://chat@localhost/chat")
        #expect(more.limits.loginTimeoutSeconds == 5 && more.limits.maxConnectionsPerAddress == 9)
        #expect(more.limits.maxPendingLoginsPerAddress == 8 && more.limits.maxPendingLogins == 7 && more.limits.newNamesPerAddressPerHour == 6)
        #expect(more.rooms.maxRooms == 50 && more.rooms.createPerUserPerHour == 0)
        #expect(configuration.server.password == "p")
        #expect(configuration.database.durability == .full)
        #expect(configuration.history.retentionDays == 30)
        #expect(configuration.rooms.defaultRoom == "main")
        #expect(configuration.rooms.preset == ["main", "ops"])
        #expect(configuration.limits.rate == nil)
        #expect(configuration.limits.idleTimeoutSeconds == 0)
        #expect(configuration.log.level == .debug)
        #expect(configuration.irc.port == 6668)
    }

    @Test(arguments: [
        ("[]", "the configuration must be an object"),
        (#"{"servr": {}}"#, "unknown key servr"),
        (#"{"server": {"port": "80"}}"#, "server.port must be an integer, got a string"),
        (#"{"server": {"port": -1}}"#, "server.port must be >= 0"),
        (#"{"server": {"port": 65536}}"#, "server.port must be <= 65535"),
        (#"{"server": {"port": 1.5}}"#, "server.port must be an integer"),
        (#"{"server": {"name": ""}}"#, "server.name must not be empty"),
        (#"{"server": {"password": 5}}"#, "server.password must be a string or null"),
        (#"{"server": 5}"#, "server must be an object"),
        (#"{"database": {"durability": "fast"}}"#, "database.durability must be \"normal\" or \"full\""),
        (#"{"database": {"path": ""}}"#, "database.path must not be empty"),
        (#"{"history": {"onJoin": -1}}"#, "history.onJoin must be >= 0"),
        (#"{"history": {"maxReplay": 0}}"#, "history.maxReplay must be >= 1"),
        (#"{"history": {"retentionDays": 0}}"#, "history.retentionDays must be >= 1"),
        (#"{"history": {"retentionDays": "1"}}"#, "history.retentionDays must be an integer or null"),
        (#"{"rooms": {"default": "no way"}}"#, "rooms.default must be a room name"),
        (#"{"rooms": {"autoCreate": "yes"}}"#, "rooms.autoCreate must be true or false"),
        (#"{"rooms": {"preset": "lobby"}}"#, "rooms.preset must be an array"),
        (#"{"rooms": {"preset": ["ok", 3]}}"#, "rooms.preset[1] must be a string"),
        (#"{"rooms": {"preset": ["bad room"]}}"#, "rooms.preset[0] must be a room name"),
        (#"{"limits": {"maxClients": 0}}"#, "limits.maxClients must be >= 1"),
        (#"{"limits": {"maxLineBytes": 10}}"#, "limits.maxLineBytes must be >= 256"),
        (#"{"limits": {"maxMessageBytes": 0}}"#, "limits.maxMessageBytes must be >= 1"),
        (#"{"limits": {"maxMessageBytes": 20000}}"#, "limits.maxMessageBytes must be <= limits.maxLineBytes"),
        (#"{"limits": {"maxNameLength": 0}}"#, "limits.maxNameLength must be >= 1"),
        (#"{"limits": {"maxOutboundBytes": 10}}"#, "limits.maxOutboundBytes must be >= 1024"),
        (#"{"limits": {"idleTimeoutSeconds": -5}}"#, "limits.idleTimeoutSeconds must be >= 0"),
        (#"{"limits": {"rate": {"messagesPerSecond": 0}}}"#, "limits.rate.messagesPerSecond must be > 0"),
        (#"{"limits": {"rate": {"burst": 0}}}"#, "limits.rate.burst must be >= 1"),
        (#"{"limits": {"rate": {"bursts": 1}}}"#, "unknown key limits.rate.bursts"),
        (#"{"limits": {"rate": 5}}"#, "limits.rate must be an object"),
        (#"{"log": {"level": "loud"}}"#, "log.level must be one of"),
        (#"{"log": {"messages": 1}}"#, "log.messages must be true or false"),
        (#"{"irc": {"enabled": "no"}}"#, "irc.enabled must be true or false"),
        (#"{"irc": {"port": 70000}}"#, "irc.port must be <= 65535"),
        (#"{"irc": {"tls": 1}}"#, "irc.tls must be true or false"),
        (#"{"accounts": {"registration": "closed"}}"#, "accounts.registration must be \"open\" or \"admin\""),
        (#"{"accounts": {"guests": "no"}}"#, "accounts.guests must be true or false"),
        (#"{"accounts": {"minPasswordLength": 0}}"#, "accounts.minPasswordLength must be >= 1"),
        (#"{"accounts": {"pepper": "x"}}"#, "unknown key accounts.pepper"),
        (#"{"accounts": {"scryptLogN": 9}}"#, "accounts.scryptLogN must be >= 10"),
        (#"{"accounts": {"scryptLogN": 21}}"#, "accounts.scryptLogN must be <= 20"),
        (#"{"server": {"directWrites": "yes"}}"#, "server.directWrites must be true or false"),
        (#"{"web": {"port": -1}}"#, "web.port must be >= 0"),
        (#"{"server": {"eventLoops": 0}}"#, "server.eventLoops must be >= 1"),
        (#"{"web": {"allowedOrigins": "https://a.example"}}"#, "web.allowedOrigins must be an array"),
        (#"{"web": {"allowedOrigins": ["https://a.example/chat"]}}"#, "web.allowedOrigins[0] must be an origin"),
        (#"{"web": {"allowedOrigins": [7]}}"#, "web.allowedOrigins[0] must be a string"),
        (#"{"metrics": {"allowedOrigins": []}}"#, "unknown key metrics.allowedOrigins"),
        (#"{"metrics": {"tls": true}}"#, "unknown key metrics.tls"),
        (#"{"server": {"tls": true}}"#, "server.tls is true but tls.certificate and tls.key are not both set"),
        (#"{"web": {"tls": true}, "tls": {"certificate": "cert.pem"}}"#, "web.tls is true but tls.certificate and tls.key"),
        (#"{"database": {"postgres": 5}}"#, "database.postgres must be a string or null"),
        (#"{"limits": {"loginTimeoutSeconds": -1}}"#, "limits.loginTimeoutSeconds must be >= 0"),
        (#"{"limits": {"maxConnectionsPerAddress": 0}}"#, "limits.maxConnectionsPerAddress must be >= 1"),
        (#"{"limits": {"maxPendingLoginsPerAddress": 0}}"#, "limits.maxPendingLoginsPerAddress must be >= 1"),
        (#"{"limits": {"maxPendingLogins": 0}}"#, "limits.maxPendingLogins must be >= 1"),
        (#"{"limits": {"newNamesPerAddressPerHour": 0}}"#, "limits.newNamesPerAddressPerHour must be >= 1"),
        (#"{"rooms": {"maxRooms": 0}}"#, "rooms.maxRooms must be >= 1"),
        (#"{"rooms": {"createPerUserPerHour": -1}}"#, "rooms.createPerUserPerHour must be >= 0"),
        ("{\n\"server\": {\n\"port\": 1,,\n}}", "malformed JSON"),
    ])
    func everyRejectionNamesTheKey(text: String, message: String) {
        #expect {
            try parse(text)
        } throws: { error in
            let description = (error as? ConfigurationError)?.description ?? ""
            return description.contains(message)
        }
    }

    @Test func malformedJSONGivesLineAndColumn() {
        #expect {
            try parse("{\n  \"server\": {\n    \"port\": 1,,\n  }\n}")
        } throws: { error in
            (error as? ConfigurationError)?.description == "malformed JSON: expected a string key at line 3, column 15"
        }
    }

    @Test func relativePathsAreResolvedAgainstTheConfigFolderAndTheEnvironmentOverridesThePassword() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appending(path: "c.json")
        try #"{"database":{"path":"sub/h.sqlite"},"server":{"password":"file"}}"#.write(to: file, atomically: true, encoding: .utf8)
        let configuration = try ServerConfiguration.load(path: file.path, environment: ["CHAT_SERVER_PASSWORD": "env"])
        #expect(configuration.database.path == folder.appending(path: "sub/h.sqlite").standardizedFileURL.path)
        #expect(configuration.server.password == "env")
        #expect(throws: ConfigurationError.self) {
            try ServerConfiguration.load(path: folder.appending(path: "missing.json").path)
        }
    }
}
