import ChatProtocol
import Testing
@testable import Storage

@Suite struct HistoryTests {
    /// 30 messages in lobby interleaved with 30 in dev; returns the lobby ids.
    func populate(_ fixture: Fixture) async throws -> [Int64] {
        var lobbyIDs: [Int64] = []
        for index in 0..<30 {
            lobbyIDs.append(try await fixture.say("lobby \(index)", by: index.isMultiple(of: 2) ? fixture.alice : fixture.bob).id)
            try await fixture.say("dev \(index)", in: fixture.dev)
        }
        return lobbyIDs
    }

    @Test func latestNOfARoomOldestFirstWithMore() async throws {
        let fixture = try await Fixture.inMemory()
        let ids = try await populate(fixture)
        let slice = try fixture.database.newestMessages(room: fixture.lobby, limit: 10)
        #expect(slice.messages.map(\.id) == Array(ids.suffix(10)))
        #expect(slice.more)
        #expect(slice.messages.first?.text == "lobby 20")
        #expect(slice.messages.allSatisfy { $0.room == "lobby" })
        #expect(slice.messages.first?.from == "Alice")
        let all = try fixture.database.newestMessages(room: fixture.lobby, limit: 30)
        #expect(all.messages.count == 30)
        #expect(!all.more)
    }

    @Test func afterAnIdCappedKeepsTheNewestAndSaysMore() async throws {
        let fixture = try await Fixture.inMemory()
        let ids = try await populate(fixture)
        let capped = try fixture.database.newestMessages(room: fixture.lobby, after: ids[4], limit: 10)
        #expect(capped.messages.map(\.id) == Array(ids.suffix(10)))
        #expect(capped.more)
        let uncapped = try fixture.database.newestMessages(room: fixture.lobby, after: ids[24], limit: 10)
        #expect(uncapped.messages.map(\.id) == Array(ids[25...]))
        #expect(!uncapped.more)
    }

    @Test func replayStopsAtTheUpperBound() async throws {
        let fixture = try await Fixture.inMemory()
        let ids = try await populate(fixture)
        let slice = try fixture.database.newestMessages(room: fixture.lobby, after: ids[9], upTo: ids[19], limit: 100)
        #expect(slice.messages.map(\.id) == Array(ids[10...19]))
    }

    @Test func pagingBeforeAndAfter() async throws {
        let fixture = try await Fixture.inMemory()
        let ids = try await populate(fixture)
        let before = try fixture.database.historyPage(room: fixture.lobby, page: .before(ids[10]), limit: 5)
        #expect(before.messages.map(\.id) == Array(ids[5..<10]))
        #expect(before.more)
        let first = try fixture.database.historyPage(room: fixture.lobby, page: .before(ids[3]), limit: 5)
        #expect(first.messages.map(\.id) == Array(ids[0..<3]))
        #expect(!first.more)
        let after = try fixture.database.historyPage(room: fixture.lobby, page: .after(ids[10]), limit: 5)
        #expect(after.messages.map(\.id) == Array(ids[11...15]))
        #expect(after.more)
        let last = try fixture.database.historyPage(room: fixture.lobby, page: .after(ids[27]), limit: 5)
        #expect(last.messages.map(\.id) == Array(ids[28...]))
        #expect(!last.more)
    }

    @Test func readMarkersRoundTrip() async throws {
        let fixture = try await Fixture.inMemory()
        #expect(try fixture.database.readMarker(userID: fixture.alice.id, roomID: fixture.lobby.id) == nil)
        try await fixture.database.setReadMarker(userID: fixture.alice.id, roomID: fixture.lobby.id, lastID: 42)
        try await fixture.database.setReadMarker(userID: fixture.alice.id, roomID: fixture.lobby.id, lastID: 57)
        #expect(try fixture.database.readMarker(userID: fixture.alice.id, roomID: fixture.lobby.id) == 57)
        #expect(try fixture.database.readMarker(userID: fixture.alice.id, roomID: fixture.dev.id) == nil)
    }
}
