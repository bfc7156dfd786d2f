import ChatProtocol
import ChatTestSupport
import Foundation
import Storage
import Testing

/// Runs `chat-admin` with `input` on its standard input.
func admin(_ arguments: [String], input: String) throws -> (status: Int32, out: String, err: String) {
    try runToCompletion("chat-admin", arguments, input: input)
}

/// Accounts across the real executables: chat-admin creates them, chat-server enforces them.
@Suite struct AccountEndToEndTests {
    static let password = "s3cret-enough"

    @Test func aGuestCannotTakeAnAccountsNameNorReadItsMessagesOrMarkers() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))

        // alice registers, talks, leaves the room (a read marker) and gets a direct message.
        let alice = try server.client()
        _ = try alice.loginAnswer("alice", accountPassword: nil)
        #expect(try alice.request(["type": "register", "password": Self.password]).type == "registered")
        try alice.join("lobby")
        _ = try alice.say("before I go")
        #expect(try alice.request(["type": "leave", "room": "lobby"]).type == "left")
        alice.send(#"{"type":"quit"}"#)
        _ = try alice.readUntilClosed()
        let bob = try server.user("bob")
        try bob.join("lobby")
        _ = try bob.say("what alice missed")
        let secret = try bob.request(["type": "say", "to": "alice", "text": "the secret"])
        #expect(secret.type == "message")

        // Without the password nobody is alice: no session, so no markers, history or DMs.
        let impostor = try server.client()
        #expect(try impostor.loginAnswer("alice", accountPassword: nil).code == "account_required")
        #expect(try impostor.loginAnswer("Alice", accountPassword: "guess", readGreeting: false).code == "auth_failed")
        for request: [String: Any] in [["type": "join", "room": "lobby"], ["type": "history", "with": "bob"],
                                       ["type": "say", "room": "lobby", "text": "I am alice"]] {
            #expect(try impostor.request(request).code == "not_logged_in")
        }
        // As a guest under another name it sees no direct message of alice's.
        #expect(try impostor.loginAnswer("mallory", accountPassword: nil, readGreeting: false).type == "welcome")
        #expect(try impostor.request(["type": "history", "with": "alice"]).code == "account_required")
        let found = try impostor.request(["type": "search", "query": "secret"])
        #expect(found.messageIDs.isEmpty)

        // The owner gets exactly what it missed (its read marker) and its direct messages.
        let owner = try server.client()
        #expect(try owner.loginAnswer("alice", accountPassword: Self.password).value["account"] == .bool(true))
        let (_, replay) = try owner.join("lobby")
        #expect(replay.messages.compactMap { $0["text"]?.stringValue } == ["what alice missed"])
        let direct = try owner.request(["type": "history", "with": "bob"])
        #expect(direct.messageIDs == [secret.id ?? -1])
    }

    @Test func chatAdminManagesAccountsTheServerHonours() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"log":{"messages":false},"accounts":{"registration":"admin","guests":false}}"#)
        let database = ["--config", scratch.file("config.json")]
        // The database exists once the server has run; accounts can be made beside it.
        let server = try ServerProcess(config: scratch.file("config.json"))

        let added = try admin(database + ["account", "add", "Carol"], input: "\(Self.password)\n")
        #expect(added.status == 0, "\(added.err)")
        #expect(added.out.contains("account Carol created"))
        #expect(try admin(database + ["account", "add", "carol"], input: "\(Self.password)\n").status == 1, "exists")
        #expect(try admin(database + ["account", "add", "dave"], input: "short\n").status == 64, "too short")
        #expect(try admin(database + ["account", "add", "bad name"], input: "\(Self.password)\n").status == 64)

        let carol = try server.client()
        #expect(try carol.loginAnswer("carol", accountPassword: Self.password).type == "welcome")
        #expect(try server.client().loginAnswer("guest", accountPassword: nil).code == "account_required", "guests are off")

        let changed = try admin(database + ["account", "passwd", "carol"], input: "another-password\n")
        #expect(changed.status == 0, "\(changed.err)")
        #expect(try server.client().loginAnswer("carol", accountPassword: Self.password).code == "auth_failed")
        #expect(try server.client().loginAnswer("carol", accountPassword: "another-password").type == "welcome")
        #expect(try admin(database + ["account", "passwd", "nobody"], input: "another-password\n").status == 1)

        let list = try admin(database + ["account", "list", "--format", "json"])
        let rows = try JSONParser.parse(list.out.trimmingCharacters(in: .whitespacesAndNewlines)).arrayValue ?? []
        #expect(rows.compactMap { $0["name"]?.stringValue } == ["Carol"])

        #expect(try admin(database + ["account", "remove", "carol"]).status == 0)
        #expect(try admin(database + ["account", "remove", "carol"]).status == 1)
        #expect(try admin(database + ["account", "list"]).out.split(separator: "\n").count == 1, "only the header")

        // Nothing of the password reaches the log or the database file.
        server.child.signal(SIGTERM)
        #expect(server.child.waitForExit() == 0)
        _ = server.child.stderr.waitForEnd()
        #expect(!server.child.stderr.text.contains(Self.password))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: scratch.file("chat.sqlite")))
        #expect(bytes.range(of: Data(Self.password.utf8)) == nil)
    }

    @Test func searchExportAndForgetCoverDirectMessages() async throws {
        let scratch = try Scratch()
        let path = scratch.file("chat.sqlite")
        do {
            let database = try ChatDatabase.open(path: path)
            let alice = try await database.recordLogin(name: "alice")
            _ = try await database.recordLogin(name: "Bob")
            let lobby = try await database.ensureRoom(named: "lobby")
            _ = try await database.appendMessage(MessageDraft(roomID: lobby.id, userID: alice.id, kind: .text, text: "deploy in the lobby"))
            _ = try await withCheckedThrowingContinuation { continuation in
                database.appendDirectMessage(from: alice, to: "bob", kind: .text, text: "deploy, privately") { continuation.resume(with: $0) }
            }
            try await database.waitForPendingWrites()
            database.close()
        }
        let text = try admin(["--database", path, "search", "deploy"])
        #expect(text.status == 0)
        #expect(text.out.contains("@Bob <alice> deploy, privately"), "\(text.out)")
        #expect(text.out.contains("#lobby <alice> deploy in the lobby"))
        #expect(messageCount(try admin(["--database", path, "search", "deploy", "--rooms-only"]).out) == 1)

        let csv = try admin(["--database", path, "export", "--format", "csv"]).out
        let lines = csv.split(separator: "\r\n")
        #expect(lines.first == "id,ts,room,from,kind,text")
        #expect(lines.last?.contains(",dm:Bob,alice,text,") == true, "\(csv)")

        let json = try JSONParser.parse(try admin(["--database", path, "export", "--format", "json"]).out)
        let direct = json.arrayValue?.last
        #expect(direct?["to"]?.stringValue == "Bob")
        #expect(direct?["room"] == nil)

        let markdown = try admin(["--database", path, "export", "--format", "markdown"]).out
        #expect(markdown.contains("## #lobby") && markdown.contains("## alice ↔ Bob"), "\(markdown)")

        let forgot = try admin(["--database", path, "forget", "bob"])
        #expect(forgot.status == 0)
        #expect(forgot.out.contains("1 direct messages received"))
        #expect(messageCount(try admin(["--database", path, "export"]).out) == 1, "the conversation is gone")
    }

    /// chat-admin takes the password rules from the server's configuration (not a flag of its
    /// own), and its database options before the command or after it.
    @Test func chatAdminFollowsTheConfiguredPasswordRules() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"log":{"messages":false},"accounts":{"minPasswordLength":15,"scryptLogN":11}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let config = scratch.file("config.json")
        let short = try admin(["--config", config, "account", "add", "dave"], input: "fourteen chars\n")
        #expect(short.status == 64, "shorter than the configured 15: \(short.err)")
        let added = try admin(["account", "add", "dave", "--config", config], input: "fifteen chars!!\n")
        #expect(added.status == 0, "\(added.err)")
        let database = try ChatDatabase.openReadOnly(path: scratch.file("chat.sqlite"))
        #expect(try database.account(named: "dave")?.password.cost == 1 << 11, "hashed at the configured cost")
        #expect(try server.client().loginAnswer("dave", accountPassword: "fifteen chars!!").type == "welcome")
        #expect(try admin(["--config", config, "--database", scratch.file("chat.sqlite"), "stats"]).status == 64, "not both")
    }
}
