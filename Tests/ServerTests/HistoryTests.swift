import ChatTestSupport
import Foundation
import GRDB
import Storage
import Synchronization
import Testing

@Suite struct HistoryTests {
    /// Fills the room with `count` messages from a helper user; returns their ids.
    func fill(_ server: TestServer, room: String = "lobby", count: Int, prefix: String = "m") throws -> [Int64] {
        let writer = try server.user("writer\(UUID().uuidString.prefix(6))")
        try writer.join(room)
        return try (0..<count).map { try #require(writer.say("\(prefix)\($0)", in: room).id) }
    }

    @Test func aNewcomerGetsTheLatestOnJoinMessages() async throws {
        try await withServer({ $0.history.onJoin = 5 }) { server in
            let ids = try fill(server, count: 12)
            let (_, history) = try server.user("newbie").join("lobby")
            #expect(history.messageIDs == Array(ids.suffix(5)))
            #expect(history.more == false)
            #expect(history.messages.first?["room"]?.stringValue == "lobby")
            #expect(history.messages.first?["type"] == nil)
        }
    }

    @Test func afterAndHistoryAreHonouredAndCapped() async throws {
        try await withServer({ $0.history.maxReplay = 10 }) { server in
            let ids = try fill(server, count: 30)
            let reader = try server.user("reader")
            let after = try reader.join("lobby", extra: ["after": ids[24]]).history
            #expect(after.messageIDs == Array(ids[25...]))
            #expect(after.more == false)
            reader.send(#"{"type":"leave","room":"lobby"}"#)
            _ = try reader.next("left")

            let capped = try reader.join("lobby", extra: ["after": ids[2]]).history
            #expect(capped.messageIDs == Array(ids.suffix(10)))
            #expect(capped.more == true)
            reader.send(#"{"type":"leave","room":"lobby"}"#)
            _ = try reader.next("left")

            let latest = try reader.join("lobby", extra: ["history": 4]).history
            #expect(latest.messageIDs == Array(ids.suffix(4)))
            #expect(latest.more == false)
            reader.send(#"{"type":"leave","room":"lobby"}"#)
            _ = try reader.next("left")

            let tooMany = try reader.join("lobby", extra: ["history": 50]).history
            #expect(tooMany.messageIDs == Array(ids.suffix(10)))
            #expect(tooMany.more == true)
            reader.send(#"{"type":"leave","room":"lobby"}"#)
            _ = try reader.next("left")

            let none = try reader.join("lobby", extra: ["history": 0]).history
            #expect(none.messages.isEmpty)
        }
    }

    @Test func aReturningUserGetsExactlyWhatItMissed() async throws {
        try await withServer { server in
            let before = try fill(server, count: 3, prefix: "before")
            let alice = try server.user("alice")
            let first = try alice.join("lobby").history
            #expect(first.messageIDs == before)
            try alice.say("mine")
            alice.send(#"{"type":"leave","room":"lobby","id":"l"}"#)
            _ = try alice.next("left")
            let missed = try fill(server, count: 4, prefix: "missed")
            let back = try alice.join("lobby").history
            #expect(back.messageIDs == missed)
        }
    }

    @Test func theReadMarkerIsSavedOnAnAbruptDisconnect() async throws {
        try await withServer { server in
            var alice: LineClient? = try server.user("alice")
            try alice!.join("lobby")
            let seen = try fill(server, count: 3, prefix: "seen")
            for id in seen { #expect(try alice!.next("message").id == id) }
            alice = nil // the socket closes without quit
            let missed = try fill(server, count: 2, prefix: "missed")
            // Reconnect as soon as the name is free again.
            var again: LineClient!
            try await waitUntil("alice to be able to log in again") {
                let client = try server.client()
                _ = try client.next("greeting")
                client.send(#"{"type":"login","name":"alice","id":1}"#)
                guard try client.next().type == "welcome" else { return false }
                again = client
                return true
            }
            let history = try again.join("lobby").history
            #expect(history.messageIDs == missed)
        }
    }

    /// Paging forward with `after` stops where live delivery began: what a member got live is
    /// never sent again in a page.
    /// PROTOCOL.md: a page with `after` holds the oldest `limit` messages newer than the id,
    /// whenever the member joined; `more` says whether further ones exist.
    @Test func afterPagesReachPastTheJoin() async throws {
        try await withServer { server in
            let before = try fill(server, count: 6)
            let reader = try server.user("reader")
            try reader.join("lobby", extra: ["history": 0])
            let writer = try server.user("writer")
            try writer.join("lobby")
            let live = try (0..<3).map { try writer.say("live \($0)").id ?? -1 }
            var received: [Int64] = []
            while received.count < live.count { received.append(try #require(try reader.next("message").id)) }
            #expect(received == live)
            let page = try reader.request(["type": "history", "room": "lobby", "after": before[1], "limit": 100])
            #expect(page.messageIDs == Array(before[2...]) + live, "the page goes on past the join")
            #expect(page.more == false)
            let small = try reader.request(["type": "history", "room": "lobby", "after": before[1], "limit": 2])
            #expect(small.messageIDs == Array(before[2...3]))
            #expect(small.more == true)
            let tail = try reader.request(["type": "history", "room": "lobby", "after": before[5], "limit": 2])
            #expect(tail.messageIDs == Array(live[0...1]))
            #expect(tail.more == true)
        }
    }

    /// The issue's case: a member who joined an empty room and received messages live asks
    /// for everything after 0.
    @Test func anAfterPageOfARoomJoinedEmptyHoldsWhatCameLive() async throws {
        try await withServer { server in
            let reader = try server.user("reader")
            try reader.join("quiet")
            let writer = try server.user("writer")
            try writer.join("quiet")
            let live = try (0..<4).map { try writer.say("live \($0)", in: "quiet").id ?? -1 }
            var received: [Int64] = []
            while received.count < live.count { received.append(try #require(try reader.next("message").id)) }
            let page = try reader.request(["type": "history", "room": "quiet", "after": 0, "limit": 50])
            #expect(page.messageIDs == live)
            #expect(page.more == false)
        }
    }

    @Test func historyRequestsPageBothWays() async throws {
        try await withServer({ $0.history.maxReplay = 8 }) { server in
            let ids = try fill(server, count: 20)
            let reader = try server.user("reader")
            try reader.join("lobby", extra: ["history": 0])
            reader.send(["type": "history", "room": "lobby", "before": ids[10], "limit": 4, "id": 4])
            let older = try reader.next("history")
            #expect(older.re == .integer(4))
            #expect(older.messageIDs == Array(ids[6..<10]))
            #expect(older.more == true)
            reader.send(["type": "history", "room": "lobby", "after": ids[15], "limit": 10, "id": 5])
            let newer = try reader.next("history")
            #expect(newer.messageIDs == Array(ids[16...]))
            #expect(newer.more == false)
            reader.send(["type": "history", "room": "lobby", "before": ids[19], "limit": 100, "id": 6])
            let capped = try reader.next("history")
            #expect(capped.messageIDs.count == 8)
            reader.send(["type": "history", "room": "lobby", "before": 1, "after": 2, "id": 7])
            #expect(try reader.next().code == "bad_request")
        }
    }

    @Test func deletedMessagesAreNeverReplayed() async throws {
        try await withServer { server in
            let ids = try fill(server, count: 5)
            _ = try server.database.deleteMessages(ids: [ids[1], ids[3]])
            let history = try server.user("reader").join("lobby").history
            #expect(history.messageIDs == [ids[0], ids[2], ids[4]])
        }
    }

    /// The exactly-once rule: joiners arriving while messages are being committed see each
    /// message of the room once, in the history or live, never both, never neither.
    @Test func joinsDuringABusyRoomSeeEveryMessageExactlyOnce() async throws {
        try await withServer({
            $0.history.maxReplay = 100_000
            $0.history.onJoin = 100_000
            $0.limits.maxOutboundBytes = 64 << 20 // the joiners read only at the end
        }) { server in
            let senders = try (0..<3).map { index in
                let client = try server.user("sender\(index)")
                try client.join("busy")
                return client
            }
            // Senders keep going until every join is done and then send one more each, so every
            // join happens while messages commit, however slow the machine. Each stays at most
            // 300 messages ahead of the joins, so the volume (and the joiners' reading) does not
            // grow with how slow the joins are. The joins start once messages are flowing.
            let joinsDone = Atomic(false)
            let joinsCompleted = Atomic(0)
            let sending = senders.enumerated().map { index, sender in
                BackgroundThread {
                    var sent = 0
                    var sentAfterJoins = false
                    // Closed loop, as a real client: each message waits for its acknowledgement.
                    while !sentAfterJoins {
                        let joinsWereDone = joinsDone.load(ordering: .relaxed)
                        if !joinsWereDone && sent >= 300 * (joinsCompleted.load(ordering: .relaxed) + 2) {
                            usleep(1_000) // waiting for the next join to complete
                            continue
                        }
                        try sender.say("s\(index)-\(sent)", in: "busy")
                        sent += 1
                        sentAfterJoins = joinsWereDone
                    }
                    return sent
                }
            }
            try await waitUntil("the senders to be under way") { try server.database.countMessages() >= 200 }
            var joiners: [(LineClient, [Int64])] = []
            for index in 0..<8 {
                let joiner = try server.user("joiner\(index)")
                let history = try joiner.join("busy").history
                joiners.append((joiner, history.messageIDs))
                joinsCompleted.wrappingAdd(1, ordering: .relaxed)
            }
            joinsDone.store(true, ordering: .relaxed)
            var total = 0
            for thread in sending { total += try await thread.value }
            // The point of the test: some joins really happened while messages were flowing.
            #expect(joiners.contains { !$0.1.isEmpty && $0.1.count < total }, "no join overlapped the traffic")
            for (joiner, replayed) in joiners {
                var seen = replayed
                while seen.count < total {
                    seen.append(try #require(try joiner.next("message").id))
                }
                #expect(seen.count == total)
                #expect(Set(seen).count == total, "a message was delivered twice")
                #expect(seen == seen.sorted(), "messages out of order")
            }
            #expect(try server.database.countMessages() == total)
        }
    }
}

@Suite struct RetentionTests {
    @Test func theServerPrunesMessagesOlderThanRetentionDays() async throws {
        // Messages written "long ago" straight through Storage, then a server with retention.
        let folder = FileManager.default.temporaryDirectory.appending(path: "retention-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/chat.sqlite"
        let database = try ChatDatabase.open(path: path)
        let user = try await database.recordLogin(name: "old")
        let room = try await database.ensureRoom(named: "lobby")
        _ = try await database.appendMessages((0..<5).map { MessageDraft(roomID: room.id, userID: user.id, kind: .text, text: "old \($0)") })
        database.close()
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "UPDATE messages SET ts = ts - 40 * 86400000") }
        try queue.close()

        try await withServer({ $0.database.path = path; $0.history.retentionDays = 30 }) { server in
            try await waitUntil("the old messages to be pruned") { try server.database.countMessages() == 0 }
            let alice = try server.user("alice")
            try alice.join("lobby")
            try alice.say("fresh")
            #expect(try server.database.countMessages() == 1)
        }
    }
}
