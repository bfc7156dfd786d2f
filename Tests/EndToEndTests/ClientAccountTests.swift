import ChatProtocol
import ChatTestSupport
import Foundation
import Testing

/// chat-client with accounts, direct messages and search: in tmux as a person uses it, and in
/// pipe mode as a bot does.
@Suite struct ClientAccountTests {
    @Test func msgAndQuerySendDirectMessagesShownApartFromTheRoom() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let bob = try server.user("bob")
        try bob.join("lobby")

        let terminal = try TmuxTerminal(command: "\(executable("chat-client")) alice --port \(server.port)")
        defer { terminal.close() }
        _ = try await terminal.waitFor("#lobby: live")

        try terminal.typeLiterally("/msg bob are you there?")
        try terminal.type("Enter")
        let received = try bob.next("message")
        #expect(received.to == "bob" && received.from == "alice" && received.text == "are you there?")
        _ = try await terminal.waitFor("[DM alice → bob] <alice> are you there?")

        _ = try bob.request(["type": "say", "to": "alice", "text": "yes, in private"])
        _ = try await terminal.waitFor("[DM bob → alice] <bob> yes, in private")
        try bob.say("and this is the room")
        var screen = try await terminal.waitFor("<bob> and this is the room")
        #expect(!screen.contains("[DM bob → alice] <bob> and this is the room"), "room traffic is not marked as a DM")

        try terminal.typeLiterally("/query bob")
        try terminal.type("Enter")
        _ = try await terminal.waitFor("[@bob]")
        try terminal.typeLiterally("typed in the query")
        try terminal.type("Enter")
        let queried = try bob.next("message")
        #expect(queried.to == "bob" && queried.text == "typed in the query")
        try terminal.typeLiterally("/query")
        try terminal.type("Enter")
        screen = try await terminal.waitFor("back to #lobby")
        try terminal.typeLiterally("back in the room")
        try terminal.type("Enter")
        let roomMessage = try bob.next("message")
        #expect(roomMessage.room == "lobby" && roomMessage.text == "back in the room")
        try terminal.type("C-c")
        #expect(try await terminal.waitFor("EXIT=").contains("EXIT=0"))
    }

    @Test func registerThenLogInWithThePasswordAndSearchWithHighlights() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let bob = try server.user("bob")
        try bob.join("lobby")
        try bob.say("the deploy is on friday")
        try bob.say("lunch at noon")

        let command = "NO_COLOR=1 \(executable("chat-client")) carol --port \(server.port)"
        do {
            let terminal = try TmuxTerminal(command: command)
            defer { terminal.close() }
            _ = try await terminal.waitFor("#lobby: live")
            try terminal.typeLiterally("/register")
            try terminal.type("Enter")
            _ = try await terminal.waitFor("\npassword:")
            try terminal.typeLiterally("hunter2-hunter2")
            let masked = try await terminal.waitFor("•••")
            #expect(!masked.contains("hunter2"), "the password is not shown")
            try terminal.type("Enter")
            _ = try await terminal.waitFor("carol is now an account")

            try terminal.typeLiterally("/search deploy")
            try terminal.type("Enter")
            let screen = try await terminal.waitFor("end of matches")
            #expect(screen.contains("1 matches for deploy"))
            #expect(screen.contains("<bob> the *deploy* is on friday"), "the match is highlighted")
            #expect(!screen.contains("lunch at noon") || screen.components(separatedBy: "lunch at noon").count == 2, "only the match is listed")
            try terminal.type("Up")
            let recalled = try await terminal.waitFor("[#lobby] /search deploy")
            #expect(!recalled.contains("[#lobby] hunter2"))
            try terminal.type("C-c")
            _ = try await terminal.waitFor("EXIT=")
        }

        // The name now needs its password: the client asks for it, without echo.
        let terminal = try TmuxTerminal(command: command)
        defer { terminal.close() }
        _ = try await terminal.waitFor("account password for carol:")
        try terminal.typeLiterally("hunter2-hunter2")
        try terminal.type("Enter")
        let screen = try await terminal.waitFor("#lobby: live")
        #expect(!screen.contains("hunter2"))
        try terminal.type("C-c")
        #expect(try await terminal.waitFor("EXIT=").contains("EXIT=0"))
    }

    @Test func pipeModeSendsDirectMessagesAndLogsInToAccounts() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"log":{"messages":false}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let owner = try server.user("deploybot")
        #expect(try owner.request(["type": "register", "password": "bot-password-1"]).type == "registered")
        owner.send(#"{"type":"quit"}"#)
        _ = try owner.readUntilClosed()
        let alice = try server.user("alice")

        let port = String(server.port)
        let refused = try pipeClient(["deploybot", "--port", port, "--to", "alice"], input: "x\n")
        #expect(refused.status == 1)
        #expect(refused.err.contains("account"), "\(refused.err)")
        let wrong = try pipeClient(["deploybot", "--port", port, "--to", "alice"], input: "x\n",
                                   environment: ["CHAT_ACCOUNT_PASSWORD": "not it"])
        #expect(wrong.status == 1)

        let sent = try pipeClient(["deploybot", "--port", port, "--to", "alice"], input: "build 12 passed\ndeploying\n",
                                  environment: ["CHAT_ACCOUNT_PASSWORD": "bot-password-1"])
        #expect(sent.status == 0, "\(sent.err)")
        #expect(sent.out.contains("@alice <deploybot> build 12 passed"), "\(sent.out)")
        #expect(try alice.next("message").text == "build 12 passed")
        #expect(try alice.next("message").text == "deploying")
        let unknown = try pipeClient(["someone", "--port", port, "--to", "nobody"], input: "hello\n")
        #expect(unknown.status == 1)
        #expect(unknown.err.contains("line 1"))
    }
}
