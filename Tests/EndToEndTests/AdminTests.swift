import ChatProtocol
import Foundation
import GRDB
import Storage
import Testing

/// Runs `chat-admin` to completion.
func admin(_ arguments: [String], directory: String? = nil) throws -> (status: Int32, out: String, err: String) {
    try runToCompletion("chat-admin", arguments, directory: directory)
}

/// A database written through Storage: messages on known days, in two rooms, by three users.
final class AdminFixture: @unchecked Sendable {
    let scratch: Scratch
    let path: String
    /// Message ids in insertion order, with their texts.
    private(set) var messages: [(id: Int64, text: String, room: String, user: String, ts: Int64)] = []

    /// 2026-11-01T10:00:00Z.
    static let day0: Int64 = Timestamp.days(year: 2026, month: 11, day: 1) * 86_400_000 + 36_000_000

    init() async throws {
        scratch = try Scratch()
        path = scratch.file("chat.sqlite")
        let database = try ChatDatabase.open(path: path)
        let alice = try await database.recordLogin(name: "Alice")
        let bob = try await database.recordLogin(name: "bob")
        let carol = try await database.recordLogin(name: "carol")
        let lobby = try await database.ensureRoom(named: "lobby")
        let dev = try await database.ensureRoom(named: "dev")
        let script: [(UserRecord, RoomRecord, String, MessageKind)] = [
            (alice, lobby, "good morning everyone", .text),
            (bob, lobby, "morning alice, the deploy went fine", .text),
            (carol, dev, "deploy friday? \"quotes\", commas, and\nnewlines", .text),
            (alice, dev, "<script>alert('x')</script> & friends", .text),
            (bob, lobby, "waves", .action),
            (carol, lobby, "rollback the deploy please", .text),
            (alice, lobby, "naïve café déjà vu", .text),
        ]
        for (index, (user, room, text, kind)) in script.enumerated() {
            let committed = try await database.appendMessage(MessageDraft(roomID: room.id, userID: user.id, kind: kind, text: text))
            // One message a day, from day0 on, so time filters have something to cut.
            let ts = Self.day0 + Int64(index) * 86_400_000
            messages.append((committed.id, text, room.name, user.name, ts))
        }
        database.close()
        let queue = try DatabaseQueue(path: path)
        try await queue.write { [messages] db in
            for message in messages {
                try db.execute(sql: "UPDATE messages SET ts = ? WHERE id = ?", arguments: [message.ts, message.id])
            }
        }
        try queue.close()
    }

    func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        try admin(["--database", path] + arguments)
    }
}

/// Messages in `text` output: each starts a line with `[`.
func messageCount(_ text: String) -> Int {
    text.split(separator: "\n").filter { $0.hasPrefix("[") }.count
}

/// Parses RFC 4180 CSV (quoted fields with doubled quotes, CRLF or LF records).
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var field = ""
    var inQuotes = false
    var iterator = Array(text).makeIterator()
    var pending: Character? = nil
    while let character = pending ?? iterator.next() {
        pending = nil
        if inQuotes {
            if character == "\"" {
                if let next = iterator.next() {
                    if next == "\"" { field.append("\"") } else { inQuotes = false; pending = next }
                } else { inQuotes = false }
            } else { field.append(character) }
        } else {
            switch character {
            case "\"": inQuotes = true
            case ",": row.append(field); field = ""
            case "\r\n", "\n": row.append(field); rows.append(row); row = []; field = ""
            case "\r": break
            default: field.append(character)
            }
        }
    }
    if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
    return rows
}

@Suite struct AdminSearchTests {
    @Test func searchFindsNewestFirstWithFilters() async throws {
        let fixture = try await AdminFixture()
        let all = try fixture.run(["search", "deploy"])
        #expect(all.status == 0)
        let lines = all.out.split(separator: "\n").filter { $0.hasPrefix("[") }
        #expect(lines.count == 3)
        #expect(all.out.contains("commas, and\n    newlines"), "continuation lines are indented")
        #expect(lines.first?.contains("rollback the deploy please") == true)
        #expect(lines.first?.hasPrefix("[2026-11-06T10:00:00.000Z] #lobby <carol> ") == true)
        #expect(!all.out.contains("\u{1B}["), "no colours when not a terminal")

        let inLobby = try fixture.run(["search", "deploy", "--room", "#Lobby", "--format", "ndjson"])
        let ids = inLobby.out.split(separator: "\n").compactMap { try? JSONParser.parse(String($0))["id"]?.integerValue }
        #expect(ids == [fixture.messages[5].id, fixture.messages[1].id])

        let byUser = try fixture.run(["search", "deploy", "--user", "CAROL", "--limit", "1", "--format", "json"])
        guard case .array(let hits) = try JSONParser.parse(byUser.out) else { Issue.record("not an array"); return }
        #expect(hits.count == 1)
        #expect(hits.first?["from"]?.stringValue == "carol")
        #expect(hits.first?["type"] == nil)

        let windowed = try fixture.run(["search", "deploy", "--since", "2026-11-02", "--until", "2026-11-06T10:00:00Z"])
        #expect(messageCount(windowed.out) == 2)
        let offset = try fixture.run(["search", "deploy", "--since", "2026-11-06T11:00+01:00"])
        #expect(messageCount(offset.out) == 1, "an offset moves the time to UTC")
    }

    @Test func searchUnderstandsFTS5AndUnicode() async throws {
        let fixture = try await AdminFixture()
        #expect(messageCount(try fixture.run(["search", "\"the deploy\""]).out) == 2)
        #expect(messageCount(try fixture.run(["search", "deploy NOT rollback"]).out) == 2)
        #expect(messageCount(try fixture.run(["search", "morn*"]).out) == 2)
        #expect(try fixture.run(["search", "cafe"]).out.contains("naïve café"), "diacritics fold")
    }

    @Test(arguments: ["deploy AND", "\"unterminated", "nosuchcolumn:deploy", "(", "AND OR"])
    func aMalformedQueryIsAUsageErrorWithTheReason(query: String) async throws {
        let fixture = try await AdminFixture()
        let result = try fixture.run(["search", query])
        #expect(result.status == 64)
        #expect(result.err.contains("invalid search query"))
        #expect(result.out.isEmpty)
    }

    @Test(arguments: [["--since", "yesterday"], ["--until", "2026-13-01"], ["--since", "2026-02-30"], ["--since", "5x"], ["--until", "12:00"]])
    func aBadTimeIsAUsageErrorNamingTheValue(arguments: [String]) async throws {
        let fixture = try await AdminFixture()
        let result = try fixture.run(["search", "deploy"] + arguments)
        #expect(result.status == 64)
        #expect(result.err.contains(arguments[1]))
    }

    @Test func relativeAgesCountBackFromNow() async throws {
        let fixture = try await AdminFixture()
        // Move the fixture to "now": the newest message is an hour old, each earlier one a day older.
        let now = Timestamp.now()
        let queue = try DatabaseQueue(path: fixture.path)
        try await queue.write { [messages = fixture.messages] db in
            for (index, message) in messages.enumerated() {
                let age = Int64(messages.count - 1 - index) * 86_400_000 + 3_600_000
                try db.execute(sql: "UPDATE messages SET ts = ? WHERE id = ?", arguments: [now - age, message.id])
            }
        }
        try queue.close()
        func count(_ arguments: [String]) throws -> Int {
            let result = try fixture.run(["export", "--format", "ndjson"] + arguments)
            #expect(result.status == 0, "\(arguments): \(result.err)")
            return result.out.split(separator: "\n").count
        }
        #expect(try count(["--since", "90m"]) == 1)
        #expect(try count(["--since", "36h"]) == 2)
        #expect(try count(["--since", "3d"]) == 3)
        #expect(try count(["--until", "3d"]) == 4)
        #expect(try count(["--since", "1w"]) == 7)
        #expect(try count(["--since", "5400s", "--until", "30m"]) == 1)
    }
}

@Suite struct AdminExportTests {
    @Test func jsonAndNDJSONHaveTheFieldsOfAMessageInIdOrder() async throws {
        let fixture = try await AdminFixture()
        let json = try fixture.run(["export", "--format", "json"])
        guard case .array(let objects) = try JSONParser.parse(json.out) else { Issue.record("not an array"); return }
        #expect(objects.map { $0["id"]?.integerValue } == fixture.messages.map(\.id))
        #expect(objects.map { $0["text"]?.stringValue } == fixture.messages.map(\.text))
        #expect(Set(objects[0].objectValue!.keys) == ["id", "ts", "room", "from", "kind", "text"])
        #expect(objects[4]["kind"]?.stringValue == "action")
        #expect(objects[0]["ts"]?.stringValue == "2026-11-01T10:00:00.000Z")

        let ndjson = try fixture.run(["export", "--format", "ndjson", "--room", "dev"])
        let lines = ndjson.out.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(try lines.map { try JSONParser.parse(String($0))["room"]?.stringValue } == ["dev", "dev"])
    }

    @Test func csvFollowsRFC4180AndParsesBack() async throws {
        let fixture = try await AdminFixture()
        let csv = try fixture.run(["export", "--format", "csv"])
        let rows = parseCSV(csv.out)
        #expect(rows.first == ["id", "ts", "room", "from", "kind", "text"])
        #expect(rows.count == fixture.messages.count + 1)
        #expect(rows.dropFirst().map { $0[5] } == fixture.messages.map(\.text))
        #expect(rows[3][5] == "deploy friday? \"quotes\", commas, and\nnewlines")
        #expect(csv.out.contains("\r\n"))
    }

    @Test func htmlIsStandaloneEscapedAndGroupedByRoomAndDay() async throws {
        let fixture = try await AdminFixture()
        let html = try fixture.run(["export", "--format", "html"]).out
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("</html>"))
        #expect(!html.contains("<script>alert"), "a message must never inject markup")
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; friends"))
        #expect(html.components(separatedBy: "<h2>").count - 1 == 2)
        #expect(html.contains("<h3>2026-11-01</h3>"))
        let devIndex = try #require(html.range(of: "<h2>#dev</h2>"))
        let lobbyIndex = try #require(html.range(of: "<h2>#lobby</h2>"))
        #expect(devIndex.lowerBound < lobbyIndex.lowerBound)
    }

    @Test func markdownIsGroupedAndEscaped() async throws {
        let fixture = try await AdminFixture()
        let markdown = try fixture.run(["export", "--format", "markdown"]).out
        #expect(markdown.contains("## #lobby"))
        #expect(markdown.contains("### 2026-11-02"))
        #expect(markdown.contains("\\* **bob** waves"))
        #expect(markdown.contains("&lt;script\\>alert"))
    }

    @Test func textAndOutputFile() async throws {
        let fixture = try await AdminFixture()
        let file = fixture.scratch.file("out.txt")
        let result = try fixture.run(["export", "--output", file])
        #expect(result.status == 0)
        #expect(result.out.isEmpty)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.hasPrefix("[2026-11-01T10:00:00.000Z] #lobby <Alice> good morning everyone\n"))
        #expect(text.contains("#lobby * bob waves"))
        let unwritable = try fixture.run(["export", "--output", "/nonexistent/dir/x"])
        #expect(unwritable.status == 1)
        #expect(unwritable.err.contains("/nonexistent/dir/x"))
    }
}

@Suite struct AdminMaintenanceTests {
    @Test func statsUsersAndRoomsReportActivity() async throws {
        let fixture = try await AdminFixture()
        let stats = try JSONParser.parse(try fixture.run(["stats", "--format", "json"]).out)
        #expect(stats["messages"]?.integerValue == 7)
        #expect(stats["users"]?.integerValue == 3)
        #expect(stats["rooms"]?.integerValue == 2)
        guard case .array(let days)? = stats["perDay"] else { Issue.record("no perDay"); return }
        #expect(days.count == 7)
        let text = try fixture.run(["stats"]).out
        #expect(text.contains("messages per day"))
        #expect(text.contains("█"))
        let users = try JSONParser.parse(try fixture.run(["users", "--format", "json"]).out)
        guard case .array(let list) = users else { Issue.record("no users"); return }
        #expect(list.compactMap { $0["name"]?.stringValue } == ["Alice", "bob", "carol"])
        let rooms = try fixture.run(["rooms"]).out
        #expect(rooms.contains("lobby") && rooms.contains("dev"))
    }

    @Test func pruneDeleteAndForgetCleanTheSearchIndexToo() async throws {
        let fixture = try await AdminFixture()
        let dry = try fixture.run(["prune", "--before", "2026-11-03", "--dry-run"])
        #expect(dry.out.contains("would prune 2 messages"))
        #expect(messageCount(try fixture.run(["search", "morning"]).out) == 2)
        let pruned = try fixture.run(["prune", "--before", "2026-11-03"])
        #expect(pruned.status == 0)
        #expect(pruned.out.contains("pruned 2 messages"))
        #expect(try fixture.run(["search", "morning"]).out.isEmpty)

        let deleted = try fixture.run(["delete", String(fixture.messages[5].id), "999999"])
        #expect(deleted.out.contains("deleted 1 message"))
        #expect(deleted.out.contains("not found: 999999"))
        #expect(try fixture.run(["search", "rollback"]).out.isEmpty)

        let forgetDry = try fixture.run(["forget", "ALICE", "--dry-run"])
        #expect(forgetDry.out.contains("would forget Alice: 2 messages"))
        let forgot = try fixture.run(["forget", "alice"])
        #expect(forgot.status == 0)
        #expect(try fixture.run(["search", "café"]).out.isEmpty)
        #expect(!(try fixture.run(["users"]).out.contains("Alice")))
        #expect(try fixture.run(["forget", "alice"]).status == 1)
        #expect(try fixture.run(["check"]).out == "ok\n")
    }

    @Test func checkFindsADamagedSearchIndex() async throws {
        let fixture = try await AdminFixture()
        #expect(try fixture.run(["check"]).status == 0)
        let queue = try DatabaseQueue(path: fixture.path)
        try await queue.write { db in
            // Delete behind the index's back.
            try db.execute(sql: "DROP TRIGGER messages_fts_after_delete")
            try db.execute(sql: "DELETE FROM messages WHERE id = (SELECT MIN(id) FROM messages)")
        }
        try queue.close()
        let result = try fixture.run(["check"])
        #expect(result.status == 1)
        #expect(result.out.contains("search index"))
    }

    @Test func backupIsAConsistentCopyAndMigrateIsIdempotent() async throws {
        let fixture = try await AdminFixture()
        let copy = fixture.scratch.file("copy.sqlite")
        let backup = try fixture.run(["backup", copy])
        #expect(backup.status == 0)
        #expect(backup.out.contains("backed up 7 messages"))
        #expect(try admin(["--database", copy, "check"]).out == "ok\n")
        #expect(try fixture.run(["backup", copy]).status == 1, "never overwrites")
        let migrate = try fixture.run(["migrate"])
        #expect(migrate.status == 0)
        #expect(migrate.out.contains("up to date"))
    }

    @Test func readingNeverCreatesADatabaseAndTheConfigNamesIt() async throws {
        let scratch = try Scratch()
        let missing = try admin(["--database", scratch.file("none.sqlite"), "stats"])
        #expect(missing.status == 1)
        #expect(missing.err.contains("none.sqlite"))
        #expect(!FileManager.default.fileExists(atPath: scratch.file("none.sqlite")))
        let fixture = try await AdminFixture()
        try fixture.scratch.write("config.json", #"{"database":{"path":"chat.sqlite"}}"#)
        let viaConfig = try admin(["stats", "--format", "json"], directory: fixture.scratch.path)
        #expect(try JSONParser.parse(viaConfig.out)["messages"]?.integerValue == 7)
        #expect(try admin(["--config", "x", "--database", "y", "stats"]).status == 64)
        #expect(try admin(["stats", "--bogus"]).status == 64)
    }

    @Test func worksBesideARunningServer() async throws {
        let scratch = try Scratch()
        try scratch.write("config.json", #"{"limits":{"rate":null}}"#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let alice = try server.user("alice")
        try alice.join("lobby")
        for index in 0..<20 { try alice.say("live message \(index)") }
        let config = scratch.file("config.json")
        let found = try admin(["--config", config, "search", "live", "--format", "ndjson"])
        #expect(found.status == 0)
        #expect(found.out.split(separator: "\n").count == 20)
        let backup = try admin(["--config", config, "backup", scratch.file("live-copy.sqlite")])
        #expect(backup.out.contains("backed up 20 messages"))
        // A delete while the server runs: the server never replays it.
        let firstID = try #require(JSONParser.parse(String(found.out.split(separator: "\n").last!))["id"]?.integerValue)
        #expect(try admin(["--config", config, "delete", String(firstID)]).status == 0)
        let reader = try server.user("reader")
        let history = try reader.join("lobby", extra: ["history": 100]).history
        #expect(history.messageIDs.count == 19)
        #expect(!history.messageIDs.contains(firstID))
    }
}
