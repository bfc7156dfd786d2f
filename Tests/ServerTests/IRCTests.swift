import ChatConfiguration
import ChatProtocol
import ChatTestSupport
import Foundation
import IRCProtocol
import Testing

/// SPEC.md, IRC: the IRC listener over real sockets, beside native clients on the same server.
@Suite struct IRCTests {
    static let allCapabilities = ["server-time", "message-tags", "echo-message", "batch", "labeled-response", "account-tag"]

    func withIRCServer(_ adjust: @escaping (inout ServerConfiguration) -> Void = { _ in },
                       _ body: (TestServer, Int) async throws -> Void) async throws {
        try await withServer({ configuration in
            configuration.irc.enabled = true
            configuration.irc.port = 0
            adjust(&configuration)
        }) { server in
            try await body(server, try #require(server.server.ircPort))
        }
    }

    // MARK: Registration

    @Test func registrationGivesTheWelcomeAndISupport() async throws {
        try await withIRCServer { _, port in
            let client = try IRCTestClient(port: port)
            client.send("CAP LS 302")
            let ls = try client.read(until: "CAP").last!
            #expect(ls.parameters[1] == "LS")
            let offered = Set(ls.text.split(separator: " ").map(String.init))
            for capability in Self.allCapabilities + ["sasl=PLAIN", "draft/chathistory", "soju.im/search", "cap-notify"] {
                #expect(offered.contains(capability), "CAP LS offers \(capability)")
            }
            client.send("JOIN #lobby")
            #expect(try client.read(until: "451").last?.command == "451", "nothing before registration")
            let welcome = try client.register("alice", capabilities: ["server-time"])
            let commands = welcome.map(\.command)
            for numeric in ["001", "002", "003", "004", "005"] { #expect(commands.contains(numeric)) }
            #expect(commands.last == "422", "no MOTD configured")
            #expect(welcome.first { $0.command == "001" }?.parameters.first == "alice")
            let isupport = welcome.filter { $0.command == "005" }.flatMap(\.parameters)
            for token in ["CHANTYPES=#", "NICKLEN=32", "CHANNELLEN=33", "CHATHISTORY=500", "MSGREFTYPES=msgid,timestamp", "UTF8ONLY"] {
                #expect(isupport.contains(token), "ISUPPORT has \(token)")
            }
            client.send("PING :token-1")
            let pong = try client.read(until: "PONG").last!
            #expect(pong.parameters.last == "token-1")
            client.send("BOGUS x")
            #expect(try client.read(until: "421").last?.parameters[1] == "BOGUS")
            client.send("USER again 0 * :x")
            #expect(try client.read(until: "462").last?.command == "462")
            client.send("CAP LIST")
            #expect(try client.read(until: "CAP").last?.text == "server-time")
        }
    }

    @Test func nicksFollowTheServersNameRules() async throws {
        try await withIRCServer({ $0.server.motd = "Be kind.\nThat is all." }) { server, port in
            let native = try server.user("taken")
            _ = native
            let client = try IRCTestClient(port: port)
            client.send("NICK bad!nick")
            #expect(try client.read(until: "432").last?.parameters[1] == "bad!nick")
            client.send("NICK")
            #expect(try client.read(until: "431").last?.command == "431")
            client.send("USER u 0 *")
            #expect(try client.read(until: "461").last?.parameters[1] == "USER")
            client.send("USER u 0 * :Real Name")
            client.send("NICK taken")
            #expect(try client.read(until: "433").last?.parameters[1] == "taken", "a native user holds the name")
            client.send("NICK Taken2")
            let welcome = try client.read(until: "376")
            #expect(welcome.first { $0.command == "001" }?.parameters.first == "Taken2")
            #expect(welcome.filter { $0.command == "372" }.map(\.text) == ["- Be kind.", "- That is all."])
            client.send("NICK other")
            #expect(try client.read(until: "400").last?.parameters[1] == "NICK", "nick changes are refused with a reason")
        }
    }

    @Test func theServerPasswordIsPASS() async throws {
        try await withIRCServer({ $0.server.password = "sesame" }) { _, port in
            let wrong = try IRCTestClient(port: port)
            wrong.send("PASS nope")
            wrong.send("NICK alice")
            wrong.send("USER alice 0 * :A")
            let answer = try wrong.readUntilClosed()
            #expect(answer.contains { $0.command == "464" })
            #expect(!answer.contains { $0.command == "001" })

            let someoneElse = try IRCTestClient(port: port)
            someoneElse.send("AUTHENTICATE PLAIN")
            _ = try someoneElse.read(until: "AUTHENTICATE")
            someoneElse.send("AUTHENTICATE \(Data("mallory\u{0}carol\u{0}\(AccountTests.password)".utf8).base64EncodedString())")
            #expect(try someoneElse.read(until: "904").last?.command == "904", "no authorization identity other than the account")

            let right = try IRCTestClient(port: port)
            try right.register("alice", password: "sesame")
        }
    }

    // MARK: Talking with native clients

    @Test func ircAndNativeClientsTalkBothWaysWithHistory() async throws {
        try await withIRCServer { server, port in
            let bob = try server.user("bob")
            try bob.join("lobby")
            let before = try bob.say("said before alice came")
            let action = try bob.request(["type": "say", "room": "lobby", "text": "waves", "kind": "action"])

            let alice = try IRCTestClient(port: port)
            try alice.register("alice", capabilities: Self.allCapabilities)
            let joined = try alice.join("#lobby") // (bob said two messages: a replay batch follows)
            #expect(joined.first?.command == "JOIN" && joined.first?.nick == "alice")
            let names = joined.first { $0.command == "353" }
            #expect(Set(names?.text.split(separator: " ").map(String.init) ?? []) == ["alice", "bob"])
            // The replay: a chathistory batch of what was said, with ids and times.
            let replay = try alice.read(until: "BATCH -") { $0.command == "BATCH" && $0.parameters.first?.hasPrefix("-") == true }
            let opening = replay.first!
            #expect(opening.command == "BATCH" && opening.parameters.dropFirst().first == "chathistory")
            let batchID = String(opening.parameters[0].dropFirst())
            let lines = replay.filter { $0.command == "PRIVMSG" }
            #expect(lines.map(\.text) == ["said before alice came", "\u{1}ACTION waves\u{1}"])
            #expect(lines.allSatisfy { $0.tag("batch") == batchID && $0.tag("time") != nil })
            #expect(lines.map { $0.tag("msgid") } == [before.id.map(String.init), action.id.map(String.init)])
            #expect(lines.allSatisfy { $0.nick == "bob" && $0.parameters.first == "#lobby" })

            // Bob hears alice arrive; alice's words reach bob, bob's reach alice.
            let presence = try bob.next("presence")
            #expect(presence.value["name"]?.stringValue == "alice" && presence.value["event"]?.stringValue == "join")
            alice.send("@label=a1 PRIVMSG #lobby :hello bob")
            let echo = try alice.read(until: "the echo") { $0.command == "PRIVMSG" }.last!
            #expect(echo.tag("label") == "a1" && echo.text == "hello bob" && echo.nick == "alice")
            let heard = try bob.next("message")
            #expect(heard.from == "alice" && heard.text == "hello bob")
            #expect(echo.tag("msgid") == heard.id.map(String.init), "one id for both protocols")
            alice.send("PRIVMSG #lobby :\u{1}ACTION dances\u{1}")
            let dance = try bob.next("message")
            #expect(dance.value["kind"]?.stringValue == "action" && dance.text == "dances")

            let reply = try bob.say("hi alice")
            let received = try alice.read(until: "bob's message") { $0.command == "PRIVMSG" && $0.nick == "bob" }.last!
            #expect(received.text == "hi alice")
            #expect(received.tag("msgid") == reply.id.map(String.init))
            #expect(received.tag("time") == reply.value["ts"]?.stringValue)
            _ = try bob.request(["type": "say", "room": "lobby", "text": "two\nlines"])
            let first = try alice.read(until: "line one") { $0.command == "PRIVMSG" && $0.nick == "bob" }.last!
            let second = try alice.read(until: "line two") { $0.command == "PRIVMSG" && $0.nick == "bob" }.last!
            #expect([first.text, second.text] == ["two", "lines"])
            #expect(first.tag("msgid") == second.tag("msgid"), "both lines are the one message")

            // Bob leaves, comes back, goes: PART, JOIN, QUIT.
            _ = try bob.request(["type": "leave", "room": "lobby"])
            #expect(try alice.read(until: "PART").last?.nick == "bob")
            try bob.join("lobby")
            #expect(try alice.read(until: "JOIN").last?.nick == "bob")
            bob.send(#"{"type":"quit","reason":"gone fishing"}"#)
            let quit = try alice.read(until: "QUIT").last!
            #expect(quit.nick == "bob" && quit.text == "gone fishing")
        }
    }

    @Test func withoutCapabilitiesLinesArePlainAndNoEcho() async throws {
        try await withIRCServer { server, port in
            let alice = try IRCTestClient(port: port)
            try alice.register("alice")
            try alice.join("#lobby")
            let bob = try server.user("bob")
            try bob.join("lobby")
            alice.send("PRIVMSG #lobby :no echo for me")
            #expect(try bob.next("message").text == "no echo for me")
            _ = try bob.say("plain")
            let line = try alice.read(until: "PRIVMSG").last!
            #expect(line.orderedTags.isEmpty && line.text == "plain", "no echo of alice's own line came first: \(alice.received.suffix(3))")
            // A message too long for one IRC line comes as several, each within 512 bytes.
            let long = (0..<120).map { "word\($0)" }.joined(separator: " ")
            _ = try bob.request(["type": "say", "room": "lobby", "text": long])
            var pieces: [String] = []
            while pieces.joined(separator: " ").count < long.count {
                let piece = try alice.read(until: "a piece") { $0.command == "PRIVMSG" }.last!
                #expect(piece.serialized().utf8.count + 2 <= 512)
                pieces.append(piece.text)
            }
            #expect(pieces.count > 1)
            #expect(pieces.joined(separator: " ") == long)
        }
    }

    @Test func aRejoinReplaysExactlyWhatWasMissed() async throws {
        try await withIRCServer { server, port in
            let bob = try server.user("bob")
            try bob.join("lobby")
            let alice = try IRCTestClient(port: port)
            try alice.register("alice", capabilities: ["batch", "message-tags"])
            try alice.join("#lobby")
            _ = try bob.say("seen live")
            #expect(try alice.read(until: "PRIVMSG").last?.text == "seen live")
            alice.send("QUIT :later")
            _ = try alice.readUntilClosed()
            _ = try bob.say("missed one")
            _ = try bob.say("missed two")

            let again = try IRCTestClient(port: port)
            try again.register("alice", capabilities: ["batch", "message-tags"])
            try again.join("#lobby")
            let replay = try again.read(until: "BATCH -") { $0.command == "BATCH" && $0.parameters.first?.hasPrefix("-") == true }
            #expect(replay.filter { $0.command == "PRIVMSG" }.map(\.text) == ["missed one", "missed two"])
            _ = try bob.say("live again")
            #expect(try again.read(until: "PRIVMSG").last?.text == "live again")
        }
    }

    // MARK: Accounts and direct messages

    @Test func saslPlainLogsInToAnAccount() async throws {
        try await withIRCServer { server, port in
            _ = try AccountTests.registered("Carol", on: server)
            func plain(_ account: String, _ password: String) -> String {
                Data("\(account)\u{0}\(account)\u{0}\(password)".utf8).base64EncodedString()
            }
            let guest = try IRCTestClient(port: port)
            guest.send("NICK carol")
            guest.send("USER carol 0 * :C")
            #expect(try guest.read(until: "433").last?.text.contains("SASL") == true, "an account's nick needs SASL")

            let wrong = try IRCTestClient(port: port)
            wrong.send("CAP REQ :sasl")
            wrong.send("AUTHENTICATE PLAIN")
            #expect(try wrong.read(until: "AUTHENTICATE").last?.parameters == ["+"])
            wrong.send("AUTHENTICATE \(plain("carol", "not the password"))")
            #expect(try wrong.read(until: "904").last?.command == "904")

            let right = try IRCTestClient(port: port)
            right.send("CAP LS 302")
            right.send("CAP REQ :sasl account-tag message-tags")
            right.send("NICK whatever")
            right.send("USER c 0 * :C")
            right.send("AUTHENTICATE PLAIN")
            _ = try right.read(until: "AUTHENTICATE")
            right.send("AUTHENTICATE \(plain("carol", AccountTests.password))")
            let loggedIn = try right.read(until: "903")
            #expect(loggedIn.contains { $0.command == "900" && $0.parameters.dropFirst(2).first == "Carol" })
            right.send("CAP END")
            let welcome = try right.read(until: "422")
            #expect(welcome.first { $0.command == "001" }?.parameters.first == "Carol")

            // Direct messages: PRIVMSG to a nick, both ways, with the account tag.
            let dave = try server.user("dave")
            right.send("PRIVMSG dave :hello dave")
            let dm = try dave.next("message")
            #expect(dm.from == "Carol" && dm.to == "dave" && dm.text == "hello dave")
            _ = try dave.request(["type": "say", "to": "carol", "text": "hi carol"])
            let received = try right.read(until: "dave's DM") { $0.command == "PRIVMSG" }.last!
            #expect(received.nick == "dave" && received.parameters.first == "Carol" && received.text == "hi carol")
            right.send("PRIVMSG nobody-here :hello?")
            #expect(try right.read(until: "401").last?.parameters[1] == "nobody-here")

            // account-tag: an account's messages carry `account` for clients that asked.
            let watcher = try IRCTestClient(port: port)
            try watcher.register("watcher", capabilities: ["account-tag", "message-tags"])
            try watcher.join("#lobby")
            right.send("JOIN #lobby")
            _ = try right.read(until: "366")
            right.send("PRIVMSG #lobby :signed")
            let signed = try watcher.read(until: "Carol's message") { $0.command == "PRIVMSG" && $0.text == "signed" }.last!
            #expect(signed.tag("account") == "Carol")
            _ = try dave.request(["type": "join", "room": "lobby"])
            _ = try dave.say("unsigned")
            let guestLine = try watcher.read(until: "dave's message") { $0.command == "PRIVMSG" && $0.text == "unsigned" }.last!
            #expect(guestLine.tag("account") == nil, "a guest has no account tag")

            right.send("WHOIS carol")
            let whois = try right.read(until: "318")
            #expect(whois.contains { $0.command == "330" }, "WHOIS shows the account")
        }
    }

    // MARK: Commands

    @Test func everyCommandAnswersAsClientsExpect() async throws {
        try await withIRCServer { server, port in
            let bob = try server.user("bob")
            try bob.join("lobby")
            let alice = try IRCTestClient(port: port)
            try alice.register("alice")
            alice.send("JOIN #one,#two,bad")
            _ = try alice.read(until: "403") { $0.command == "403" && $0.parameters[1] == "bad" }
            try alice.read(until: "366 #two") { $0.command == "366" && $0.parameters[1] == "#two" }
            alice.send("JOIN #lobby")
            try alice.read(until: "366 #lobby") { $0.command == "366" && $0.parameters[1] == "#lobby" }

            alice.send("NAMES #lobby")
            let names = try alice.read(until: "366").filter { $0.command == "353" }.flatMap { $0.text.split(separator: " ") }
            #expect(Set(names.map(String.init)) == ["alice", "bob"])
            alice.send("WHO #lobby")
            let who = try alice.read(until: "315").filter { $0.command == "352" }
            #expect(Set(who.map { $0.parameters[5] }) == ["alice", "bob"])
            alice.send("WHO bob")
            #expect(try alice.read(until: "315").filter { $0.command == "352" }.count == 1)
            alice.send("WHOIS bob")
            let whois = try alice.read(until: "318")
            #expect(whois.contains { $0.command == "311" && $0.parameters[1] == "bob" })
            alice.send("WHOIS nobody")
            #expect(try alice.read(until: "318").contains { $0.command == "401" })
            alice.send("LIST")
            let list = try alice.read(until: "323").filter { $0.command == "322" }
            #expect(list.contains { $0.parameters[1] == "#lobby" && $0.parameters[2] == "2" })
            alice.send("TOPIC #lobby")
            #expect(try alice.read(until: "331").last?.parameters[1] == "#lobby")
            alice.send("TOPIC #lobby :new topic")
            #expect(try alice.read(until: "482").last?.command == "482")
            alice.send("MODE #lobby")
            #expect(try alice.read(until: "324").last?.parameters[2] == "+nt")
            alice.send("MODE #lobby b")
            #expect(try alice.read(until: "368").last?.command == "368")
            alice.send("MODE alice")
            #expect(try alice.read(until: "221").last?.parameters[1] == "+i")
            alice.send("MODE bob +i")
            #expect(try alice.read(until: "502").last?.command == "502")
            alice.send("MOTD")
            #expect(try alice.read(until: "422").last?.command == "422")
            alice.send("AWAY :lunch")
            #expect(try alice.read(until: "306").last?.command == "306")
            alice.send("AWAY")
            #expect(try alice.read(until: "305").last?.command == "305")
            alice.send("ISON bob nobody alice")
            #expect(try alice.read(until: "303").last?.text == "bob alice")
            alice.send("USERHOST bob")
            #expect(try alice.read(until: "302").last?.text == "bob=+bob@chat")
            alice.send("PRIVMSG #two")
            #expect(try alice.read(until: "412").last?.command == "412")
            alice.send("PRIVMSG")
            #expect(try alice.read(until: "411").last?.command == "411")
            alice.send("PRIVMSG #elsewhere :hi")
            #expect(try alice.read(until: "404").last?.parameters[1] == "#elsewhere")
            alice.send("NOTICE #elsewhere :no answer to a notice")
            alice.send("PART #elsewhere")
            #expect(try alice.read(until: "442").last?.parameters[1] == "#elsewhere", "the NOTICE got no error")
            alice.send("PART #one :off to #two")
            #expect(try alice.read(until: "PART").last?.parameters == ["#one", "off to #two"])
            alice.send("VERSION")
            #expect(try alice.read(until: "351").last?.parameters[1] == "chat-server")
            alice.send("TIME")
            #expect(try alice.read(until: "391").last?.command == "391")
            alice.send("LUSERS")
            #expect(try alice.read(until: "255").last?.text == "I have 2 clients and 0 servers", "both protocols count")
            alice.send("OPER admin secret")
            #expect(try alice.read(until: "491").last?.command == "491")
            alice.send("KICK #lobby bob")
            #expect(try alice.read(until: "482").last?.parameters[1] == "#lobby")
            alice.send("KILL bob :bye")
            #expect(try alice.read(until: "481").last?.command == "481")
            alice.send("JOIN 0")
            let parts = try alice.read(until: "PART #two") { $0.command == "PART" && $0.parameters.first == "#two" }
            #expect(parts.contains { $0.command == "PART" && $0.parameters.first == "#lobby" })
            var left = try bob.next("presence")
            while left.value["event"]?.stringValue == "join" { left = try bob.next("presence") }
            #expect(left.value["event"]?.stringValue == "leave" && left.value["name"]?.stringValue == "alice")
            alice.send("JOIN")
            #expect(try alice.read(until: "461").last?.parameters[1] == "JOIN")
            alice.send("QUIT :bye now")
            let closing = try alice.readUntilClosed()
            #expect(closing.last?.command == "ERROR")
        }
    }

    @Test func awayIsShownInWhoisAndToThoseWhoWriteToYou() async throws {
        try await withIRCServer { _, port in
            let alice = try IRCTestClient(port: port)
            try alice.register("alice")
            let bob = try IRCTestClient(port: port)
            try bob.register("bob", capabilities: ["echo-message", "labeled-response", "batch"])
            alice.send("AWAY :at lunch")
            #expect(try alice.read(until: "306").last?.command == "306")

            bob.send("WHOIS alice")
            let whois = try bob.read(until: "318")
            #expect(whois.first { $0.command == "301" }?.parameters == ["bob", "alice", "at lunch"])
            // A direct message: 301 first, in the label's batch with the echo.
            bob.send("@label=m1 PRIVMSG alice :are you there?")
            let answer = try bob.read(until: "the end of the batch") { $0.command == "BATCH" && $0.parameters.first?.hasPrefix("-") == true }
            #expect(answer.map(\.command) == ["BATCH", "301", "PRIVMSG", "BATCH"])
            #expect(answer[0].tag("label") == "m1")
            #expect(answer[1].parameters == ["bob", "alice", "at lunch"])
            #expect(try alice.read(until: "PRIVMSG").last?.text == "are you there?")
            // Back: no more 301.
            alice.send("AWAY")
            #expect(try alice.read(until: "305").last?.command == "305")
            bob.send("PRIVMSG alice :welcome back")
            bob.send("PING :after")
            let after = try bob.read(until: "PONG")
            #expect(!after.map(\.command).contains("301"))
            #expect(after.contains { $0.command == "PRIVMSG" && $0.text == "welcome back" }, "the echo")
        }
    }

    @Test func clientOnlyTagsAreRelayedLiveToThoseWhoTakeTags() async throws {
        try await withIRCServer { server, port in
            let native = try server.user("dave")
            try native.join("lobby")
            let alice = try IRCTestClient(port: port)
            try alice.register("alice", capabilities: ["message-tags"])
            try alice.join("#lobby")
            let carol = try IRCTestClient(port: port)
            try carol.register("carol")
            try carol.join("#lobby")
            let bob = try IRCTestClient(port: port)
            try bob.register("bob", capabilities: ["message-tags", "echo-message"])
            try bob.join("#lobby")

            bob.send(#"@+draft/reply=5;+example.com/x=a\sb;notclient=1 PRIVMSG #lobby :hi with tags"#)
            let heard = try alice.read(until: "PRIVMSG").last!
            #expect(heard.tag("+draft/reply") == "5" && heard.tag("+example.com/x") == "a b")
            #expect(heard.tag("notclient") == nil, "only client-only tags are relayed")
            #expect(heard.tag("msgid") != nil)
            let echo = try bob.read(until: "PRIVMSG").last!
            #expect(echo.tag("+draft/reply") == "5")
            let plain = try carol.read(until: "PRIVMSG").last!
            #expect(plain.orderedTags.isEmpty && plain.text == "hi with tags")
            #expect(try native.next("message").text == "hi with tags")

            // TAGMSG: to those who take tags, nobody else, and never stored.
            bob.send("@+typing=active TAGMSG #lobby")
            let typing = try alice.read(until: "TAGMSG").last!
            #expect(typing.tag("+typing") == "active" && typing.parameters == ["#lobby"] && typing.nick == "bob")
            #expect(try bob.read(until: "TAGMSG").last?.tag("+typing") == "active", "the echo")
            bob.send("@+typing=paused TAGMSG alice")
            let direct = try alice.read(until: "TAGMSG").last!
            #expect(direct.tag("+typing") == "paused" && direct.parameters == ["alice"])
            carol.send("PING :barrier")
            #expect(!(try carol.read(until: "PONG")).map(\.command).contains("TAGMSG"))
            bob.send("@+typing=active TAGMSG nobody-here")
            #expect(try bob.read(until: "401").last?.parameters[1] == "nobody-here")
            #expect(try server.database.countMessages() == 1, "tags are not messages")
        }
    }

    @Test func labeledResponsesWrapEveryAnswer() async throws {
        try await withIRCServer { _, port in
            let alice = try IRCTestClient(port: port)
            try alice.register("alice", capabilities: ["labeled-response", "batch", "echo-message"])
            alice.send("@label=none AWAY")
            let single = try alice.read(until: "305").last!
            #expect(single.tag("label") == "none")
            alice.send("@label=nothing MODE alice +i")
            let ack = try alice.read(until: "ACK").last!
            #expect(ack.tag("label") == "nothing")
            alice.send("@label=many JOIN #lobby")
            let opening = try alice.read(until: "BATCH").last!
            #expect(opening.tag("label") == "many" && opening.parameters.dropFirst().first == "labeled-response")
            let id = String(opening.parameters[0].dropFirst())
            let inside = try alice.read(until: "BATCH -\(id)") { $0.command == "BATCH" && $0.parameters.first == "-" + id }
            #expect(inside.contains { $0.command == "JOIN" && $0.tag("batch") == id })
            #expect(inside.contains { $0.command == "366" && $0.tag("batch") == id })
            // A line that fits the client's 512 bytes but not the echo's (which adds the source):
            // echoed as two lines, which are the answer, so they come in a batch.
            alice.send("@label=long PRIVMSG #lobby :" + String(repeating: "w", count: 490))
            let echoOpening = try alice.read(until: "BATCH") { $0.command == "BATCH" }.last!
            #expect(echoOpening.tag("label") == "long")
            let echoID = String(echoOpening.parameters[0].dropFirst())
            let echoed = try alice.read(until: "BATCH -\(echoID)") { $0.command == "BATCH" && $0.parameters.first == "-" + echoID }
            let lines = echoed.filter { $0.command == "PRIVMSG" }
            #expect(lines.count >= 2 && lines.allSatisfy { $0.tag("batch") == echoID && $0.tag("label") == nil })
            // A single echoed line carries the label itself.
            alice.send("@label=short PRIVMSG #lobby :short")
            let short = try alice.read(until: "PRIVMSG").last!
            #expect(short.tag("label") == "short" && short.text == "short")
        }
    }

    // MARK: chathistory and search

    @Test func chathistoryReadsTheSameHistory() async throws {
        try await withIRCServer { server, port in
            let bob = try server.user("bob")
            try bob.join("lobby")
            var ids: [Int64] = []
            for index in 1...10 { ids.append(try #require(try bob.say("message \(index)").id)) }

            let alice = try IRCTestClient(port: port)
            try alice.register("alice", capabilities: ["draft/chathistory", "batch", "message-tags", "server-time"])
            try alice.join("#lobby")
            func history(_ command: String) throws -> [IRCMessage] {
                alice.send(command)
                let lines = try alice.read(until: "end of a batch") { $0.command == "BATCH" && $0.parameters.first?.hasPrefix("-") == true || $0.command == "FAIL" }
                if let failure = lines.last, failure.command == "FAIL" { return [failure] }
                #expect(lines.first?.command == "BATCH" && lines.first?.parameters.dropFirst().first == "chathistory")
                return lines.filter { $0.command == "PRIVMSG" }
            }
            func texts(_ lines: [IRCMessage]) -> [String] { lines.map(\.text) }
            // No replay was pushed on JOIN: a chathistory client asks.
            #expect(!alice.received.contains { $0.command == "PRIVMSG" })
            #expect(texts(try history("CHATHISTORY LATEST #lobby * 3")) == ["message 8", "message 9", "message 10"])
            #expect(texts(try history("CHATHISTORY BEFORE #lobby msgid=\(ids[4]) 2")) == ["message 3", "message 4"])
            #expect(texts(try history("CHATHISTORY AFTER #lobby msgid=\(ids[7]) 5")) == ["message 9", "message 10"])
            #expect(texts(try history("CHATHISTORY AROUND #lobby msgid=\(ids[5]) 4")) == ["message 4", "message 5", "message 6", "message 7"])
            #expect(texts(try history("CHATHISTORY BETWEEN #lobby msgid=\(ids[1]) msgid=\(ids[5]) 10")) == ["message 3", "message 4", "message 5"])
            #expect(texts(try history("CHATHISTORY BETWEEN #lobby msgid=\(ids[5]) msgid=\(ids[1]) 10")) == ["message 3", "message 4", "message 5"])
            // Counted from the first reference: backwards from a later one.
            #expect(texts(try history("CHATHISTORY BETWEEN #lobby msgid=\(ids[1]) msgid=\(ids[6]) 2")) == ["message 3", "message 4"])
            #expect(texts(try history("CHATHISTORY BETWEEN #lobby msgid=\(ids[6]) msgid=\(ids[1]) 2")) == ["message 5", "message 6"])
            #expect(texts(try history("CHATHISTORY LATEST #lobby msgid=\(ids[6]) 10")) == ["message 8", "message 9", "message 10"])
            let all = try history("CHATHISTORY LATEST #lobby * 100")
            let time = try #require(all[5].tag("time"))
            // Messages said in the same millisecond share a time: the newest one strictly before it.
            let earlier = all.filter { ($0.tag("time") ?? "") < time }.suffix(1).map(\.text)
            #expect(texts(try history("CHATHISTORY BEFORE #lobby timestamp=\(time) 1")) == earlier)
            let later = try #require(all[3].tag("time"))
            #expect(texts(try history("CHATHISTORY AFTER #lobby timestamp=\(later) 5")) == all.filter { ($0.tag("time") ?? "") > later }.prefix(5).map(\.text))
            let failure = try history("CHATHISTORY LATEST #nowhere * 10")
            #expect(failure.first?.command == "FAIL" && failure.first?.parameters[1] == "INVALID_TARGET")
            alice.send("CHATHISTORY LATEST #lobby nonsense 10")
            #expect(try alice.read(until: "FAIL").last?.parameters[1] == "INVALID_PARAMS")
        }
    }

    @Test func chathistoryCoversDirectMessagesAndTargets() async throws {
        try await withIRCServer { server, port in
            _ = try AccountTests.registered("Carol", on: server)
            let dave = try AccountTests.registered("Dave", on: server)
            let alice = try IRCTestClient(port: port)
            try alice.registerWithSASL("Carol", password: AccountTests.password, capabilities: ["draft/chathistory", "batch", "message-tags", "server-time"])
            _ = try dave.request(["type": "say", "to": "carol", "text": "first dm"])
            _ = try dave.request(["type": "say", "to": "carol", "text": "second dm"])
            _ = try alice.read(until: "second dm") { $0.text == "second dm" }
            alice.send("CHATHISTORY LATEST dave * 10")
            let lines = try alice.read(until: "BATCH -") { $0.command == "BATCH" && $0.parameters.first?.hasPrefix("-") == true }
            #expect(lines.filter { $0.command == "PRIVMSG" }.map(\.text) == ["first dm", "second dm"])
            alice.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
            let targets = try alice.read(until: "BATCH -") { $0.command == "BATCH" && $0.parameters.first?.hasPrefix("-") == true }
            #expect(targets.filter { $0.command == "CHATHISTORY" }.map { $0.parameters[1] } == ["Dave"])

            alice.send("SEARCH text=second")
            let found = try alice.read(until: "BATCH -") { $0.command == "BATCH" && $0.parameters.first?.hasPrefix("-") == true }
            #expect(found.first?.parameters.dropFirst().first == "soju.im/search")
            #expect(found.filter { $0.command == "PRIVMSG" }.map(\.text) == ["second dm"])
        }
    }

    @Test func readMarkersFollowTheUserAcrossSessions() async throws {
        try await withIRCServer { server, port in
            _ = try AccountTests.registered("Carol", on: server)
            func session() throws -> IRCTestClient {
                let client = try IRCTestClient(port: port)
                try client.registerWithSASL("Carol", password: AccountTests.password, capabilities: ["draft/read-marker", "server-time", "message-tags"])
                return client
            }
            let laptop = try session()
            let joined = try laptop.join("#lobby")
            #expect(joined.map(\.command).prefix(2) == ["JOIN", "MARKREAD"], "the marker comes right after the JOIN")
            #expect(joined[1].parameters == ["#lobby", "*"], "nothing read yet")
            let bob = try server.user("bob")
            try bob.join("lobby")
            for index in 1...3 { _ = try bob.say("line \(index)") }
            let lines = try laptop.read(until: "line 3") { $0.text == "line 3" }.filter { $0.command == "PRIVMSG" }
            let second = try #require(lines.first { $0.text == "line 2" }?.tag("time"))

            let phone = try session()
            laptop.send("MARKREAD #lobby timestamp=\(second)")
            #expect(try laptop.read(until: "MARKREAD").last?.parameters == ["#lobby", "timestamp=\(second)"])
            #expect(try phone.read(until: "MARKREAD").last?.parameters == ["#lobby", "timestamp=\(second)"], "the other session hears of it")
            laptop.send("MARKREAD #lobby timestamp=2000-01-01T00:00:00.000Z")
            #expect(try laptop.read(until: "MARKREAD").last?.parameters == ["#lobby", "timestamp=\(second)"], "markers only move forward")
            phone.send("MARKREAD #lobby")
            #expect(try phone.read(until: "MARKREAD").last?.parameters == ["#lobby", "timestamp=\(second)"])
            phone.send("MARKREAD #lobby timestamp=yesterday")
            #expect(try phone.read(until: "FAIL").last?.parameters.prefix(2) == ["MARKREAD", "INVALID_PARAMS"])
            phone.send("MARKREAD bob")
            #expect(try phone.read(until: "MARKREAD").last?.parameters == ["bob", "*"])
        }
    }

    // MARK: Hostile input

    @Test func hostileLinesGetClearErrorsAndHurtNobody() async throws {
        try await withIRCServer { server, port in
            let bob = try server.user("bob")
            try bob.join("lobby")
            let mallory = try IRCTestClient(port: port)
            try mallory.register("mallory")
            try mallory.join("#lobby")
            mallory.connection.send(bytes: Array("PRIVMSG #lobby :bad ".utf8) + [0xFF, 0xFE] + Array("\r\n".utf8))
            #expect(try mallory.read(until: "FAIL").last?.parameters[1] == "INVALID_UTF8")
            mallory.send("PRIVMSG #lobby :" + String(repeating: "x", count: 600))
            #expect(try mallory.read(until: "417").last?.command == "417")
            mallory.send("PRIVMSG #lobby :" + String(repeating: "y", count: 20_000))
            #expect(try mallory.read(until: "417").last?.command == "417")
            for garbage in ["", ":", "@", "@a= :x", ":only-a-source", "\u{1}\u{1}", "PRIVMSG #lobby :\u{1}VERSION\u{1}", "CAP REQ :nonsense",
                            "AUTHENTICATE", "CHATHISTORY", "SEARCH", "MODE", "PRIVMSG #%%% :x", "JOIN #" + String(repeating: "a", count: 40)] {
                mallory.send(garbage)
            }
            mallory.send("PRIVMSG #lobby :still here")
            let heard = try bob.next("message")
            #expect(heard.text == "still here", "nothing before it was stored: \(heard)")
            mallory.send("PING :alive")
            #expect(try mallory.read(until: "PONG").last?.parameters.last == "alive")
        }
    }
}
