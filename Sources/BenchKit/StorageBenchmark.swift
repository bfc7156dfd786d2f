import ArgumentParser
import ChatProtocol
import Foundation
import Storage
import Synchronization

public struct StorageBenchmark: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Append, replay, search and export on a large SQLite database.",
        discussion: """
            Phases: append (sustained group-commit appends into a fresh file), populate (fills the
            database to --messages over --rooms rooms, reused when it already holds them), replay
            (latest 500 of a room, and 500 after an id), search (two-word queries, newest 50), and,
            when chat-admin sits next to this binary, the admin tool end to end (search, stats,
            export to NDJSON with its peak memory).
            """)

    @Option(help: "The database to populate (reused if it already holds --messages).")
    var database = "/tmp/chat-bench.sqlite"
    @Option(help: "Messages in the populated database.")
    var messages = 1_000_000
    @Option(help: "Rooms in the populated database.")
    var rooms = 100
    @Option(help: "Messages for the sustained-append phase (into a fresh file).")
    var append = 200_000
    @Option(help: "Appends in flight at once during the append phase.")
    var window = 8192
    @Option(help: "Queries per replay measurement.")
    var queries = 1000
    @Option(help: "Search queries.")
    var searches = 100

    public func validate() throws {
        guard messages >= rooms * 600, rooms >= 1 else {
            throw ValidationError("--messages must be at least 600 per room")
        }
        guard append >= 1, window >= 1, queries >= 1, searches >= 1 else { throw ValidationError("counts must be positive") }
    }

    public func run() async throws {
        var report: [String: Any] = ["benchmark": "storage", "messages": messages, "rooms": rooms]
        let vocabulary = Vocabulary(size: 5000, seed: 42)

        // 1. Sustained append into a fresh file.
        let appendPath = database + ".append"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: appendPath + suffix) }
        do {
            let store = try ChatDatabase.open(path: appendPath, durability: .normal)
            let (users, roomRecords) = try await makeUsersAndRooms(store, users: 1000, rooms: rooms)
            let texts = makeTexts(vocabulary, count: 10_000)
            let rate = try sustainedAppend(store, count: append, users: users, rooms: roomRecords, texts: texts)
            store.close()
            report["append_per_s"] = rate
            printError("append      \(grouped(rate)) messages/s (\(grouped(Double(append))) messages, durable=normal, FTS kept current)")
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: appendPath + suffix) }

        // 2. Populate (or reuse) the big database.
        let store = try ChatDatabase.open(path: database, durability: .normal)
        let existing = try store.countMessages()
        if existing < messages {
            let (users, roomRecords) = try await makeUsersAndRooms(store, users: 1000, rooms: rooms)
            let texts = makeTexts(vocabulary, count: 50_000)
            let start = now()
            var generator = SplitMix(seed: 7)
            var remaining = messages - existing
            while remaining > 0 {
                let batch = min(4096, remaining)
                let drafts = (0..<batch).map { _ in
                    MessageDraft(roomID: roomRecords.randomElement(using: &generator)!.id,
                                 userID: users.randomElement(using: &generator)!.id, kind: .text,
                                 text: texts.randomElement(using: &generator)!)
                }
                _ = try await store.appendMessages(drafts)
                remaining -= batch
            }
            printError("populate    \(grouped(Double(messages - existing))) messages in \(String(format: "%.1f", now() - start)) s")
        } else {
            printError("populate    reusing \(database) (\(grouped(Double(existing))) messages)")
        }

        // 3. Replay reads.
        let roomRecords = try store.roomsWithMessageCounts().map(\.room)
        var generator = SplitMix(seed: 11)
        var latest: [Double] = []
        var after: [Double] = []
        for _ in 0..<queries {
            let room = roomRecords.randomElement(using: &generator)!
            var start = now()
            let slice = try store.newestMessages(room: room, limit: 500)
            latest.append(now() - start)
            precondition(slice.messages.count == 500)
            // A reconnect after a while away: more than 500 qualify, the newest 500 are sent.
            let from = slice.messages[0].id - Int64.random(in: 1...50_000, using: &generator)
            start = now()
            let page = try store.newestMessages(room: room, after: from, limit: 500)
            after.append(now() - start)
            precondition(page.messages.count == 500)
        }
        let latestSummary = Summary(latest)
        let afterSummary = Summary(after)
        report["replay_latest500_p50_ms"] = latestSummary.median * 1000
        report["replay_latest500_p99_ms"] = latestSummary.percentile(99) * 1000
        report["replay_after_p50_ms"] = afterSummary.median * 1000
        report["replay_after_p99_ms"] = afterSummary.percentile(99) * 1000
        printError("replay      latest 500: p50 \(milliseconds(latestSummary.median)), p99 \(milliseconds(latestSummary.percentile(99)));  after id: p50 \(milliseconds(afterSummary.median)), p99 \(milliseconds(afterSummary.percentile(99)))")

        // 4. Search: two words drawn like the messages' own, newest 50.
        var searchTimes: [Double] = []
        var hits = 0
        var queriesUsed: [String] = []
        for _ in 0..<searches {
            let query = "\(vocabulary.word(using: &generator)) \(vocabulary.word(using: &generator))"
            queriesUsed.append(query)
            let start = now()
            hits += try store.search(query, limit: 50).count
            searchTimes.append(now() - start)
        }
        let searchSummary = Summary(searchTimes)
        report["search_p50_ms"] = searchSummary.median * 1000
        report["search_p90_ms"] = searchSummary.percentile(90) * 1000
        report["search_mean_hits"] = Double(hits) / Double(searches)
        printError("search      two words, newest 50: median \(milliseconds(searchSummary.median)), p90 \(milliseconds(searchSummary.percentile(90))), max \(milliseconds(searchSummary.max)) (mean \(hits / searches) hits)")
        store.close()

        // 5. The admin tool, end to end, process start included.
        let adminPath = productsFolder + "/chat-admin"
        if FileManager.default.isExecutableFile(atPath: adminPath) {
            var adminSearch: [Double] = []
            for query in queriesUsed.prefix(20) {
                let run = try measureProcess(adminPath, ["--database", database, "search", query, "--limit", "50"])
                adminSearch.append(run.seconds)
            }
            let stats = try measureProcess(adminPath, ["--database", database, "stats"])
            let export = try measureProcess(adminPath, ["--database", database, "export", "--format", "ndjson", "--output", "/dev/null"])
            let exportRate = Double(messages) / export.seconds
            report["admin_search_p50_ms"] = Summary(adminSearch).median * 1000
            report["admin_stats_s"] = stats.seconds
            report["admin_export_per_s"] = exportRate
            report["admin_export_max_rss_mib"] = Double(export.maxRSSKiB) / 1024
            printError("chat-admin  search: median \(milliseconds(Summary(adminSearch).median)) end to end;  stats: \(String(format: "%.2f", stats.seconds)) s;  export ndjson: \(grouped(exportRate)) messages/s, peak RSS \(export.maxRSSKiB / 1024) MiB")
        }

        try printReport(report)
    }

    private func makeUsersAndRooms(_ store: ChatDatabase, users: Int, rooms: Int) async throws -> ([UserRecord], [RoomRecord]) {
        var userRecords: [UserRecord] = []
        for index in 0..<users { userRecords.append(try await store.recordLogin(name: "user\(index)")) }
        var roomRecords: [RoomRecord] = []
        for index in 0..<rooms { roomRecords.append(try await store.ensureRoom(named: "room\(index)")) }
        return (userRecords, roomRecords)
    }

    private func makeTexts(_ vocabulary: Vocabulary, count: Int) -> [String] {
        var generator = SplitMix(seed: 3)
        return (0..<count).map { _ in vocabulary.sentence(using: &generator) }
    }

    /// Keeps up to `window` appends in flight through the callback API, as a busy server does.
    /// The producer sleeps when the window is full and is woken once half of it has drained,
    /// so the writer's completions cost an atomic decrement, not a wake-up each.
    private func sustainedAppend(_ store: ChatDatabase, count: Int, users: [UserRecord], rooms: [RoomRecord], texts: [String]) throws -> Double {
        let inFlight = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let condition = NSCondition()
        let lowWater = window / 2
        let window = self.window
        var generator = SplitMix(seed: 5)
        let drafts = (0..<count).map { _ in
            MessageDraft(roomID: rooms.randomElement(using: &generator)!.id, userID: users.randomElement(using: &generator)!.id,
                         kind: .text, text: texts.randomElement(using: &generator)!)
        }
        let start = now()
        for draft in drafts {
            if inFlight.load(ordering: .acquiring) >= window {
                condition.lock()
                while inFlight.load(ordering: .acquiring) > lowWater { condition.wait() }
                condition.unlock()
            }
            inFlight.wrappingAdd(1, ordering: .relaxed)
            store.appendMessage(draft) { result in
                if case .failure = result { failures.wrappingAdd(1, ordering: .relaxed) }
                let remaining = inFlight.wrappingSubtract(1, ordering: .releasing).newValue
                if remaining == lowWater || remaining == 0 {
                    condition.lock()
                    condition.broadcast()
                    condition.unlock()
                }
            }
        }
        condition.lock()
        while inFlight.load(ordering: .acquiring) > 0 { condition.wait() }
        condition.unlock()
        let elapsed = now() - start
        guard failures.load(ordering: .relaxed) == 0 else { throw ValidationError("\(failures.load(ordering: .relaxed)) appends failed") }
        return Double(count) / elapsed
    }
}
