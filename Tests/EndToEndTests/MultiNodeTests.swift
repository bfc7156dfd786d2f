import ChatProtocol
import ChatTestSupport
import Foundation
import IRCProtocol
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Several `chat-server` processes on one PostgreSQL (`database.postgres`), as one service: a
/// real cluster started by `Scripts/postgres.sh`, the real executables, clients on their ports.
final class Nodes: @unchecked Sendable {
    let cluster: PostgresCluster
    let scratch: Scratch
    private(set) var servers: [ServerProcess] = []

    /// `ownCluster` for a test that stops and restarts the database; the others get a database
    /// of their own on the test run's shared cluster.
    init(count: Int, config: String = #"{"limits":{"rate":null},"log":{"messages":false}}"#, ownCluster: Bool = false) throws {
        cluster = try ownCluster ? PostgresCluster() : PostgresCluster.onSharedCluster()
        scratch = try Scratch()
        do {
            try scratch.write("config.json", config)
            for _ in 0..<count { try start() }
        } catch {
            cluster.stop()
            throw error
        }
    }

    /// Starts one more node; returns its index.
    @discardableResult
    func start() throws -> Int {
        servers.append(try ServerProcess(config: scratch.file("config.json"), environment: ["CHAT_DATABASE_URL": cluster.url]))
        return servers.count - 1
    }

    subscript(index: Int) -> ServerProcess { servers[index] }

    /// Stops the nodes still running (SIGTERM), then the database.
    func stop() {
        for server in servers {
            server.child.signal(SIGTERM)
            _ = server.child.waitForExit()
        }
        cluster.stop()
    }
}

extension LineClient {
    /// Asks `who` until the room lists `names` (other nodes' members arrive through the
    /// database, a moment after they join); fails after 30 s.
    func waitUntilListed(_ names: Set<String>, in room: String) throws {
        let deadline = Date().addingTimeInterval(30)
        while !names.isSubset(of: Set(try request(["type": "who", "room": room]).members)) {
            guard Date() < deadline else { throw Timeout(waitingFor: "\(names.sorted()) in #\(room)") }
            usleep(20_000)
        }
    }

    /// Reads messages (answering nothing else) until `count` have arrived; returns them.
    func messages(_ count: Int, timeout: Double = 30) throws -> [Frame] {
        var messages: [Frame] = []
        while messages.count < count {
            let frame = try next("message", timeout: timeout)
            messages.append(frame)
        }
        return messages
    }
}

@Suite(.serialized) struct MultiNodeTests {
    @Test func messagesSaidOnEveryNodeReachEveryNodeInOneOrder() throws {
        let nodes = try Nodes(count: 3)
        defer { nodes.stop() }
        let speakers = try (0..<3).map { try nodes[$0].user("speaker\($0)") }
        let listeners = try (0..<3).map { try nodes[$0].user("listener\($0)") }
        for client in speakers + listeners { try client.join("lobby") }
        let perSpeaker = 40
        // All three at once, without waiting for acknowledgements: the nodes commit concurrently.
        for index in 0..<perSpeaker {
            for (node, speaker) in speakers.enumerated() {
                speaker.send(["type": "say", "room": "lobby", "text": "n\(node) m\(index)", "id": "s\(index)"])
            }
        }
        let total = 3 * perSpeaker
        var sequences: [[String]] = []
        for listener in listeners {
            let received = try listener.messages(total)
            let ids = received.compactMap(\.id)
            #expect(ids == ids.sorted() && Set(ids).count == total, "one increasing order, nothing twice")
            sequences.append(received.map { "\($0.id ?? 0) \($0.text ?? "")" })
            for node in 0..<3 {
                let fromNode = received.compactMap(\.text).filter { $0.hasPrefix("n\(node) ") }
                #expect(fromNode == (0..<perSpeaker).map { "n\(node) m\($0)" }, "each speaker's messages in the order said")
            }
        }
        #expect(sequences[1] == sequences[0] && sequences[2] == sequences[0], "every node delivers the same sequence")
        // Each speaker's own copies carry its request ids (the acknowledgement), the others' do not.
        for speaker in speakers {
            let received = try speaker.messages(total)
            #expect(received.filter { $0.re != nil }.count == perSpeaker)
        }
        // The ids are the commit order: consecutive, with no gap a member could wait on.
        let ids = sequences[0].compactMap { Int64($0.split(separator: " ")[0]) }
        #expect(ids.last! - ids.first! == Int64(total - 1))
    }

    @Test func aJoinOnAnotherNodeReplaysAndThenDeliversEachMessageExactlyOnce() throws {
        let nodes = try Nodes(count: 3)
        defer { nodes.stop() }
        let bob = try nodes[0].user("bob")
        try bob.join("lobby")
        let count = 300
        for index in 0..<count / 2 { bob.send(["type": "say", "room": "lobby", "text": "m\(index)", "id": "m\(index)"]) }
        // Carol joins on another node while bob's messages are being committed and fanned out.
        let carol = try nodes[2].user("carol")
        carol.send(["type": "join", "room": "lobby", "after": 0, "id": "join"])
        for index in count / 2..<count { bob.send(["type": "say", "room": "lobby", "text": "m\(index)", "id": "m\(index)"]) }
        let acknowledged = try bob.messages(count).compactMap(\.id)
        _ = try carol.next("joined")
        let replay = try carol.next("history")
        var seen = replay.messageIDs
        while seen.last != acknowledged.last {
            let frame = try carol.next("message")
            seen.append(try #require(frame.id))
        }
        #expect(seen == acknowledged, "the replay and the live messages together: every message once, in order")

        // A read marker saved on one node is where a join on another resumes.
        let reply = try bob.request(["type": "leave", "room": "lobby"])
        #expect(reply.type == "left")
        _ = try carol.say("while bob was away")
        bob.send(["type": "quit"])
        _ = try bob.readUntilClosed()
        let back = try nodes[1].user("bob")
        let (_, history) = try back.join("lobby")
        #expect(history.messages.compactMap { $0["text"]?.stringValue } == ["while bob was away"])
    }

    @Test func directMessagesReachEverySessionOfAnAccountOnEveryNode() throws {
        let nodes = try Nodes(count: 3)
        defer { nodes.stop() }
        let dana = try nodes[0].user("dana")
        #expect(try dana.request(["type": "register", "password": "correct horse"]).type == "registered")
        let sessions = try [dana] + (1..<3).map { node in
            let client = try nodes[node].client()
            let welcome = try client.loginAnswer("dana", accountPassword: "correct horse")
            #expect(welcome.type == "welcome", "an account's sessions share its name across nodes")
            return client
        }
        let eve = try nodes[1].user("eve")
        let sent = try eve.request(["type": "say", "to": "dana", "text": "hello everywhere"])
        #expect(sent.type == "message" && sent.to == "dana")
        for session in sessions {
            let received = try session.next("message")
            #expect(received.from == "eve" && received.text == "hello everywhere" && received.id == sent.id)
        }
        // A guest cannot take the account's name on any node (it needs the password).
        let impostor = try nodes[2].client()
        #expect(try impostor.loginAnswer("Dana", accountPassword: nil).code == "account_required")
    }

    @Test func aGuestNameIsHeldOnOneNodeAtATime() throws {
        let nodes = try Nodes(count: 3)
        defer { nodes.stop() }
        let alice = try nodes[0].user("alice")
        for node in 1..<3 {
            let other = try nodes[node].client()
            #expect(try other.loginAnswer("ALICE", accountPassword: nil).code == "name_taken")
        }
        alice.send(["type": "quit"])
        _ = try alice.readUntilClosed()
        // Given back once she left: the next login anywhere takes it (the release may trail the
        // quit by a moment, so a refusal is retried while it is `name_taken`).
        let deadline = Date().addingTimeInterval(10)
        var answer: Frame
        repeat {
            answer = try nodes[2].client().loginAnswer("alice", accountPassword: nil)
        } while answer.code == "name_taken" && Date() < deadline
        #expect(answer.type == "welcome")
    }

    @Test func whenANodeIsKilledItsClientsReconnectElsewhereAndReplayExactlyWhatTheyMissed() throws {
        let nodes = try Nodes(count: 3)
        defer { nodes.stop() }
        let speaker = try nodes[0].user("speaker")
        try speaker.join("lobby")
        var reader = try nodes[2].user("reader")
        try reader.join("lobby")
        for index in 0..<50 { speaker.send(["type": "say", "room": "lobby", "text": "before \(index)", "id": "b\(index)"]) }
        let before = try reader.messages(50)
        let lastSeen = try #require(before.last?.id)
        kill(nodes[2].child.pid, SIGKILL)
        #expect(nodes[2].child.waitForExit() != nil)

        // The other nodes go on: the speaker is acknowledged while the reader is away.
        for index in 0..<50 { speaker.send(["type": "say", "room": "lobby", "text": "during \(index)", "id": "d\(index)"]) }
        let acknowledged = try speaker.messages(100).compactMap(\.id)

        // The reader comes back on another node, under the same name (the dead node's lease went
        // with its connection), and asks for what followed the last message it saw.
        let deadline = Date().addingTimeInterval(10)
        var welcome: Frame
        repeat {
            reader = try nodes[1].client()
            welcome = try reader.loginAnswer("reader", accountPassword: nil)
        } while welcome.code == "name_taken" && Date() < deadline
        #expect(welcome.type == "welcome")
        let (_, replay) = try reader.join("lobby", extra: ["after": lastSeen])
        for index in 0..<10 { speaker.send(["type": "say", "room": "lobby", "text": "after \(index)", "id": "a\(index)"]) }
        let live = try reader.messages(10)
        let afterKill = acknowledged.filter { $0 > lastSeen }
        #expect(replay.messageIDs == afterKill, "exactly the messages said while away, once")
        #expect(live.compactMap(\.text) == (0..<10).map { "after \($0)" })
    }

    /// A node stopped with SIGTERM (a rolling restart) saves its members' read markers before it
    /// closes its pool: each member, back on another node, is replayed nothing it had received.
    @Test func aNodeStoppedWithSIGTERMKeepsItsMembersReadMarkers() throws {
        let nodes = try Nodes(count: 2)
        defer { nodes.stop() }
        let speaker = try nodes[1].user("speaker")
        try speaker.join("lobby")
        for round in 0..<2 {
            let node = round == 0 ? 0 : try nodes.start()
            let members = try (0..<8).map { try nodes[node].user("member\($0)") }
            for member in members { try member.join("lobby") }
            for index in 0..<20 { speaker.send(["type": "say", "room": "lobby", "text": "round \(round) \(index)", "id": "r\(round)m\(index)"]) }
            _ = try speaker.messages(20)
            for member in members { #expect(try member.messages(20).count == 20) }
            nodes[node].child.signal(SIGTERM)
            #expect(nodes[node].child.waitForExit() == 0)
            #expect(!nodes[node].child.stderr.text.contains("failed"), "the node's log: \(nodes[node].child.stderr.text)")
            for index in 0..<8 {
                let back = try nodes[1].user("member\(index)")
                let replay = try back.join("lobby").history
                #expect(replay.messages.isEmpty, "round \(round): member\(index) was replayed what it had received: \(replay.messageIDs)")
                back.send(["type": "quit"])
                _ = try back.readUntilClosed()
            }
        }
    }

    @Test func whenTheDatabaseRestartsNodesReconnectAndNothingAcknowledgedIsLostOrRepeated() throws {
        let nodes = try Nodes(count: 2, ownCluster: true)
        defer { nodes.stop() }
        let alice = try nodes[0].user("alice")
        let bob = try nodes[1].user("bob")
        try alice.join("lobby")
        try bob.join("lobby")
        let first = try alice.say("before the restart")
        #expect(try bob.next("message").id == first.id)

        try nodes.cluster.pause()
        // Said while the database is down: reported to the sender as not stored, never acknowledged.
        alice.send(["type": "say", "room": "lobby", "text": "during the outage", "id": "lost"])
        let refused = try alice.answer(to: "lost")
        #expect(refused.type == "error" && refused.code == "internal")
        try nodes.cluster.resume()

        // The nodes reconnect by themselves: a message said now is stored and crosses nodes.
        let deadline = Date().addingTimeInterval(30)
        var after: Frame
        var attempt = 0
        repeat {
            attempt += 1
            alice.send(["type": "say", "room": "lobby", "text": "after the restart", "id": "after\(attempt)"])
            after = try alice.answer(to: "after\(attempt)")
        } while after.type == "error" && Date() < deadline
        #expect(after.type == "message")
        let received = try bob.next("message")
        #expect(received.id == after.id && received.text == "after the restart")

        // What was acknowledged is all there, once; what was refused is not.
        let history = try bob.request(["type": "history", "room": "lobby", "before": Int64.max, "limit": 50])
        let texts = history.messages.compactMap { $0["text"]?.stringValue }
        #expect(texts.filter { $0 == "before the restart" }.count == 1)
        #expect(texts.filter { $0 == "after the restart" }.count == 1)
        #expect(!texts.contains("during the outage"))
    }

    @Test func chatAdminWorksOnTheSharedDatabaseBesideTheRunningNodes() throws {
        let nodes = try Nodes(count: 2)
        defer { nodes.stop() }
        let environment = ["CHAT_DATABASE_URL": nodes.cluster.url]
        func admin(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
            try runToCompletion("chat-admin", ["--config", nodes.scratch.file("config.json")] + arguments, environment: environment)
        }
        let alice = try nodes[0].user("alice")
        let bob = try nodes[1].user("bob")
        try alice.join("ops")
        try bob.join("ops")
        _ = try alice.say("deploy on friday", in: "ops")
        _ = try bob.say("no deploys on fridays", in: "ops")
        _ = try alice.request(["type": "say", "to": "bob", "text": "friday lunch?"])

        let search = try admin(["search", "deploy*", "--format", "ndjson"])
        #expect(search.status == 0, "\(search.err)")
        #expect(search.out.split(separator: "\n").count == 2)
        #expect(try admin(["search", "\"deploy"]).status == 64, "an unterminated phrase is a usage error")
        let export = try admin(["export", "--format", "ndjson"])
        #expect(export.out.split(separator: "\n").count == 3)
        #expect(export.out.contains(#""to":"bob""#), "direct messages are exported with their recipient")
        let stats = try admin(["stats"])
        #expect(stats.status == 0 && stats.out.contains("messages  3"), "\(stats.out)")

        // An account made by the tool logs in on every node.
        let added = try runToCompletion("chat-admin", ["--config", nodes.scratch.file("config.json"), "account", "add", "carol"],
                                        input: "a long password\n", environment: environment)
        #expect(added.status == 0, "\(added.err)")
        for node in 0..<2 {
            #expect(try nodes[node].client().loginAnswer("carol", accountPassword: "a long password").type == "welcome")
        }

        let dump = nodes.scratch.file("backup.dump")
        #expect(try admin(["backup", dump]).status == 0)
        #expect(FileManager.default.fileExists(atPath: dump))
        #expect(try admin(["check"]).out == "ok\n")
        let forget = try admin(["forget", "alice"])
        #expect(forget.status == 0, "\(forget.err)")
        let after = try admin(["export", "--format", "ndjson"])
        #expect(after.out.split(separator: "\n").count == 1, "alice's message and her conversation with bob are gone")
    }

    @Test func membersAndPresenceSpanTheNodes() throws {
        let nodes = try Nodes(count: 3)
        defer { nodes.stop() }
        let alice = try nodes[0].user("alice")
        try alice.join("lobby")
        let bob = try nodes[1].user("bob")
        // Presence crosses nodes through the database: wait until bob's node has heard of alice.
        try bob.waitUntilListed(["alice"], in: "lobby")
        let (joined, _) = try bob.join("lobby")
        #expect(joined.members == ["bob", "alice"], "members here first, then those on other nodes")
        let arrival = try alice.next("presence")
        #expect(arrival["name"]?.stringValue == "bob" && arrival["event"]?.stringValue == "join")
        let who = try alice.request(["type": "who", "room": "lobby"])
        #expect(Set(who.members) == ["alice", "bob"])

        // An account in the room on two nodes arrives once and leaves once, for everyone. Its
        // session on node 2 joins first; alice (node 0) hearing of it shows node 0 knows, before
        // the session on node 0 joins and leaves (otherwise node 0 would rightly announce the
        // departure of a user it did not yet know to be elsewhere).
        let dana = try nodes[0].user("dana")
        #expect(try dana.request(["type": "register", "password": "correct horse"]).type == "registered")
        let dana2 = try nodes[2].client()
        #expect(try dana2.loginAnswer("dana", accountPassword: "correct horse").type == "welcome")
        try dana2.join("lobby")
        #expect(try bob.next("presence")["name"]?.stringValue == "dana")
        #expect(try alice.next("presence")["name"]?.stringValue == "dana")
        try dana.join("lobby")
        #expect(try dana.request(["type": "leave", "room": "lobby"]).type == "left")
        dana2.send(["type": "quit", "reason": "off"])
        _ = try dana2.readUntilClosed()
        let departure = try bob.next("presence")
        #expect(departure["name"]?.stringValue == "dana" && departure["event"]?.stringValue == "leave",
                "one departure, after the last session left: \(departure)")

        // A node that dies takes its members with it: the others announce them gone.
        let eve = try nodes[2].user("eve")
        try eve.join("lobby")
        let danaLeft = try alice.next("presence")
        #expect(danaLeft["name"]?.stringValue == "dana" && danaLeft["event"]?.stringValue == "leave")
        #expect(try alice.next("presence")["name"]?.stringValue == "eve")
        kill(nodes[2].child.pid, SIGKILL)
        let gone = try alice.next("presence")
        #expect(gone["name"]?.stringValue == "eve" && gone["event"]?.stringValue == "leave")
        #expect(try alice.request(["type": "who", "room": "lobby"]).members.sorted() == ["alice", "bob"])
    }

    @Test func anIRCClientOnOneNodeTalksWithANativeClientOnAnother() throws {
        let nodes = try Nodes(count: 2, config: #"{"limits":{"rate":null},"log":{"messages":false},"irc":{"enabled":true,"port":0}}"#)
        defer { nodes.stop() }
        let alice = try nodes[0].user("alice")
        try alice.join("lobby")
        try nodes[1].user("watcher").waitUntilListed(["alice"], in: "lobby")
        let irc = try IRCTestClient(port: try nodes[1].announcedPort(of: "irc"))
        try irc.register("carol")
        let names = try irc.join("#lobby").filter { $0.command == "353" }.flatMap { $0.text.split(separator: " ") }
        #expect(names.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "@+")) }.contains("alice"), "NAMES lists the other node's members")
        #expect(try alice.next("presence")["name"]?.stringValue == "carol")
        _ = try alice.say("hello irc")
        let privmsg = try irc.read(until: "PRIVMSG") { $0.command == "PRIVMSG" }.last
        #expect(privmsg?.nick == "alice" && privmsg?.text == "hello irc")
        irc.send("PRIVMSG #lobby :hello native")
        let reply = try alice.next("message")
        #expect(reply.from == "carol" && reply.text == "hello native")
    }

    @Test func searchOnTheSharedDatabaseFindsAcrossNodesAndKeepsDirectMessagesPrivate() throws {
        let nodes = try Nodes(count: 2)
        defer { nodes.stop() }
        let alice = try nodes[0].user("alice")
        let bob = try nodes[1].user("bob")
        let eve = try nodes[1].user("eve")
        // Stored direct messages are searched by accounts only (PROTOCOL.md).
        #expect(try bob.request(["type": "register", "password": "correct horse"]).type == "registered")
        #expect(try eve.request(["type": "register", "password": "battery staple"]).type == "registered")
        try alice.join("ops")
        _ = try alice.say("deploy on friday", in: "ops")
        _ = try alice.request(["type": "say", "to": "bob", "text": "friday lunch, just us"])
        func texts(_ client: LineClient, _ query: String) throws -> [String] {
            let answer = try client.request(["type": "search", "query": query])
            #expect(answer.type == "search", "\(answer)")
            return answer.messages.compactMap { $0["text"]?.stringValue }
        }
        #expect(try texts(bob, "friday") == ["friday lunch, just us", "deploy on friday"], "newest first, with bob's own conversation")
        #expect(try texts(eve, "friday") == ["deploy on friday"], "nobody else's direct messages")
        #expect(try texts(eve, "depl* NOT lunch") == ["deploy on friday"])
        #expect(try texts(eve, "\"on friday\"") == ["deploy on friday"])
        let bad = try eve.request(["type": "search", "query": "(friday"])
        #expect(bad.type == "error" && bad.code == "bad_request", "\(bad)")
    }
}
