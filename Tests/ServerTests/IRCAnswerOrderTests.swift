import ChatConfiguration
import ChatTestSupport
import Foundation
import IRCProtocol
import Testing

/// Answers leave in the order the commands came (docs/design.md, "Answers in order"): IRC
/// clients and bots send `PING` behind a command to know it was processed.
@Suite struct IRCAnswerOrderTests {
    /// Pipelined in one write, commands the session answers (JOIN, PRIVMSG, WHO #, CHATHISTORY)
    /// and commands answered by the adapter (PING, MODE, WHOIS), while the room is busy.
    @Test func pipelinedCommandsAreAnsweredInTheOrderSent() async throws {
        try await withServer({ configuration in
            configuration.irc.enabled = true
            configuration.irc.port = 0
        }) { server in
            let port = try #require(server.server.ircPort)
            // A busy room: a native member talks while the IRC client's commands are answered.
            let talker = try server.user("talker")
            try talker.join("busy")
            let talking = BackgroundThread {
                for index in 0..<300 { talker.send(["type": "say", "room": "busy", "text": "chatter \(index)"]) }
                return true
            }
            let client = try IRCTestClient(port: port)
            _ = try client.register("orderly", capabilities: ["message-tags", "batch", "draft/chathistory", "echo-message", "server-time"])
            for round in 0..<5 {
                let commands = [
                    "JOIN #busy", "PING a\(round)", "PRIVMSG #busy :hello \(round)", "WHO #busy", "PING b\(round)",
                    "MODE #busy", "CHATHISTORY LATEST #busy * 5", "PING c\(round)", "WHOIS talker", "PING d\(round)",
                ]
                client.send(commands.joined(separator: "\r\n"))
                // The markers of each command's answer, in the order they arrive (chatter ignored).
                var seen: [String] = []
                let lines = try client.read(until: "PONG d\(round)") { $0.command == "PONG" && $0.parameters.last == "d\(round)" }
                for line in lines {
                    switch line.command {
                    case "JOIN" where round == 0: seen.append("JOIN")
                    case "366" where round == 0: seen.append("JOIN")
                    case "PONG": seen.append("PONG " + (line.parameters.last ?? ""))
                    case "PRIVMSG" where line.parameters.last == "hello \(round)" && line.tag("batch") == nil: seen.append("PRIVMSG")
                    case "315": seen.append("WHO")
                    case "324": seen.append("MODE")
                    case "BATCH" where line.parameters.count >= 2 && line.parameters[1] == "chathistory": seen.append("CHATHISTORY")
                    case "318": seen.append("WHOIS")
                    default: break
                    }
                }
                var expected = ["PONG a\(round)", "PRIVMSG", "WHO", "PONG b\(round)", "MODE", "CHATHISTORY", "PONG c\(round)", "WHOIS", "PONG d\(round)"]
                if round == 0 { expected.insert("JOIN", at: 0) }
                let deduplicated = seen.enumerated().filter { $0.offset == 0 || $0.element != seen[$0.offset - 1] }.map(\.element)
                #expect(deduplicated == expected, "round \(round)")
            }
            _ = try await talking.value
        }
    }
}
