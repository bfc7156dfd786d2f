import ChatProtocol
import Foundation
import Testing
@testable import Storage

@Suite struct MessageTests {
    @Test func usersAreUniqueCaseInsensitivelyAndKeepTheirFirstSpelling() async throws {
        let database = try ChatDatabase.inMemory()
        let first = try await database.recordLogin(name: "Alice")
        let second = try await database.recordLogin(name: "ALICE")
        #expect(first == second)
        #expect(second.name == "Alice")
        #expect(try database.user(named: "alice")?.id == first.id)
    }

    @Test func appendsGetIncreasingIdsAndTimes() async throws {
        let fixture = try await Fixture.inMemory()
        var previous = CommittedMessage(id: 0, timestamp: 0)
        for index in 0..<20 {
            let message = try await fixture.say("message \(index)")
            #expect(message.id > previous.id)
            #expect(message.timestamp >= previous.timestamp)
            previous = message
        }
    }

    @Test func concurrentAppendsAreGroupCommittedAndEachCallerGetsItsOwnId() async throws {
        let directory = try TemporaryDirectory()
        let fixture = try await Fixture(ChatDatabase.open(path: directory.file("chat.sqlite")))
        let ids = try await withThrowingTaskGroup(of: Int64.self) { group in
            for index in 0..<500 {
                group.addTask { try await fixture.say("concurrent \(index)").id }
            }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(Set(ids).count == 500)
        let stored = try fixture.database.countMessages()
        #expect(stored == 500)
        // Each id's stored text is the one its caller sent.
        var texts: [Int64: String] = [:]
        try fixture.database.forEachMessage { texts[$0.id] = $0.text }
        #expect(texts.count == 500)
    }

    @Test func idsAreNeverReusedAfterDeletesAndRestarts() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("chat.sqlite")
        var database = try ChatDatabase.open(path: path)
        var fixture = try await Fixture(database)
        _ = try await fixture.say("one")
        let newest = try await fixture.say("two")
        #expect(try database.deleteMessages(ids: [newest.id]) == [newest.id])
        database.close()
        database = try ChatDatabase.open(path: path)
        fixture = try await Fixture(database)
        let next = try await fixture.say("three")
        #expect(next.id > newest.id)
    }

    @Test func aBatchAppendIsOneTransactionInOrder() async throws {
        let fixture = try await Fixture.inMemory()
        let drafts = (0..<100).map { MessageDraft(roomID: fixture.lobby.id, userID: fixture.bob.id, kind: .text, text: "batch \($0)") }
        let committed = try await fixture.database.appendMessages(drafts)
        #expect(committed.map(\.id) == Array(committed[0].id..<committed[0].id + 100))
        #expect(Set(committed.map(\.timestamp)).count == 1)
    }

    @Test func appendsAfterCloseFailWithClosed() async throws {
        let fixture = try await Fixture.inMemory()
        fixture.database.close()
        await #expect(throws: StorageError.closed) {
            try await fixture.say("too late")
        }
    }
}
