import ChatProtocol
import ChatTestSupport
import Foundation
import Testing

/// SPEC.md, IRC, with a real IRC client: irssi (Debian's package) in tmux, as a person uses it,
/// in one room with a native client, both ways, with the history it missed.
@Suite struct IRCClientTests {
    @Test func irssiAndANativeClientTalkInOneRoomWithHistory() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", """
            {"irc":{"enabled":true,"port":0},"limits":{"rate":null,"loginTimeoutSeconds":0},"log":{"messages":false}}
            """)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let ircPort = try server.announcedPort(of: "irc")

        let bob = try server.user("bob")
        try bob.join("lobby")
        _ = try bob.say("said before alice came")

        try FileManager.default.createDirectory(atPath: scratch.file("irssi"), withIntermediateDirectories: true)
        let terminal = try TmuxTerminal(command: "TERM=xterm irssi --home=\(scratch.file("irssi")) -n alice -c 127.0.0.1 -p \(ircPort)",
                                        columns: 120, rows: 40)
        defer { terminal.close() }
        _ = try await terminal.waitFor("Welcome to the chat")
        try terminal.typeLiterally("/join #lobby")
        try terminal.type("Enter")
        // The history alice missed, then live chat.
        _ = try await terminal.waitFor("said before alice came")
        let arrival = try bob.next("presence")
        #expect(arrival.value["name"]?.stringValue == "alice" && arrival.value["event"]?.stringValue == "join")
        _ = try bob.say("live from bob")
        _ = try await terminal.waitFor("live from bob")

        try terminal.typeLiterally("hello from irssi")
        try terminal.type("Enter")
        let heard = try bob.next("message")
        #expect(heard.from == "alice" && heard.text == "hello from irssi" && heard.room == "lobby")
        try terminal.typeLiterally("/me waves")
        try terminal.type("Enter")
        let action = try bob.next("message")
        #expect(action.value["kind"]?.stringValue == "action" && action.text == "waves")

        _ = try bob.request(["type": "say", "room": "lobby", "text": "dances", "kind": "action"])
        _ = try await terminal.waitFor("* bob dances")
        bob.send(#"{"type":"quit","reason":"see you"}"#)
        _ = try await terminal.waitFor("has quit")
        try terminal.typeLiterally("/quit")
        try terminal.type("Enter")
        _ = try await terminal.waitFor("EXIT=0")
    }
}
