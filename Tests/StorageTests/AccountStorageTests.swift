import ChatProtocol
import Foundation
import GRDB
@testable import Storage
import Testing

@Suite struct PasswordHashTests {
    @Test func aHashOpensWithItsPasswordOnlyAndEveryHashHasItsOwnSalt() throws {
        let first = try PasswordHash.make(password: "correct horse")
        let second = try PasswordHash.make(password: "correct horse")
        #expect(first.salt != second.salt)
        #expect(first.hash != second.hash)
        #expect(first.salt.count == 16 && first.hash.count == 32)
        #expect((first.cost, first.blockSize, first.parallelism) == (1 << PasswordHash.defaultLogN, 8, 1))
        #expect(first.verify(password: "correct horse"))
        #expect(!first.verify(password: "correct horsE"))
        #expect(!first.verify(password: ""))
        #expect(!first.isBelow(logN: PasswordHash.defaultLogN))
        #expect(first.isBelow(logN: PasswordHash.defaultLogN + 1))
        let cheaper = try PasswordHash.make(password: "correct horse", logN: 10)
        #expect(cheaper.cost == 1 << 10 && cheaper.verify(password: "correct horse"))
    }

    @Test func theStoredParametersAreTheOnesUsed() throws {
        // A hash made at a lower cost still verifies with its own parameters.
        let cheap = PasswordHash(salt: Array(repeating: 7, count: 16), hash: [], cost: 1 << 10, blockSize: 8, parallelism: 1)
        var made = cheap
        made.hash = try PasswordHash.derive(password: "pw", salt: cheap.salt, cost: cheap.cost, blockSize: 8, parallelism: 1)
        #expect(made.verify(password: "pw"))
        #expect(made.isBelow(logN: 11))
        #expect(!made.isBelow(logN: 10))
    }

    @Test func constantTimeComparisonComparesEverything() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!constantTimeEquals([], [0]))
    }
}

@Suite struct AccountStorageTests {
    @Test func accountsAreAddedChangedListedAndRemoved() async throws {
        let fixture = try await Fixture.inMemory()
        let database = fixture.database
        #expect(try database.account(named: "alice") == nil)
        try database.addAccount(name: "alice", password: try PasswordHash.make(password: "first password"))
        #expect(throws: StorageError.accountExists(name: "Alice")) {
            try database.addAccount(name: "ALICE", password: try PasswordHash.make(password: "x"))
        }
        let account = try #require(try database.account(named: "aLiCe"))
        #expect(account.user == fixture.alice, "the existing user became the account")
        #expect(account.password.verify(password: "first password"))

        #expect(try database.changePassword(name: "alice", password: try PasswordHash.make(password: "second password")))
        #expect(try database.account(named: "alice")?.password.verify(password: "second password") == true)
        #expect(try !database.changePassword(name: "bob", password: try PasswordHash.make(password: "x")))

        let carol = try database.addAccount(name: "Carol", password: try PasswordHash.make(password: "carol's password"))
        #expect(carol.name == "Carol")
        #expect(try database.accounts().map(\.name) == ["Alice", "Carol"])

        #expect(try database.removeAccount(name: "alice"))
        #expect(try !database.removeAccount(name: "alice"))
        #expect(try database.account(named: "alice") == nil)
        #expect(try database.user(named: "alice") == fixture.alice, "the name stays a user with its messages")
    }

    @Test func noPasswordIsStoredInTheClear() async throws {
        let folder = try TemporaryDirectory()
        let database = try ChatDatabase.open(path: folder.file("chat.sqlite"))
        try database.addAccount(name: "alice", password: try PasswordHash.make(password: "plaintext-canary-42"))
        try await database.waitForPendingWrites()
        database.close()
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: folder.file(file)))
            #expect(bytes.range(of: Data("plaintext-canary-42".utf8)) == nil, "in \(file)")
        }
    }

    @Test func directMessagesShareTheSequenceAndStayOutOfRooms() async throws {
        let fixture = try await Fixture.inMemory()
        let database = fixture.database
        try await fixture.say("in the lobby")
        let direct = try await withCheckedThrowingContinuation { continuation in
            database.appendDirectMessage(from: fixture.alice, to: "BOB", kind: .text, text: "psst") { continuation.resume(with: $0) }
        }
        #expect(direct.recipient == fixture.bob)
        #expect(direct.message.id == 2)
        await #expect(throws: StorageError.noSuchUser(name: "nobody")) {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CommittedDirectMessage, any Error>) in
                database.appendDirectMessage(from: fixture.alice, to: "nobody", kind: .text, text: "?") { continuation.resume(with: $0) }
            }
        }
        #expect(try database.roomsWithMessageCounts().map(\.room.name) == ["dev", "lobby"])
        #expect(try database.statistics().rooms == 2)
        #expect(try database.conversations(of: fixture.bob.id).map(\.with) == ["Alice"])

        var exported: [ChatMessage] = []
        try database.forEachMessage { exported.append($0) }
        #expect(exported.map(\.to) == [nil, "bob"])
        #expect(exported.last?.room == "")
        #expect(try database.search("psst", filter: MessageFilter(directMessages: .none)).isEmpty)
        #expect(try database.search("psst", filter: MessageFilter(directMessages: .of(fixture.bob.id))).count == 1)

        let forgotten = try database.forgetUser(named: "bob")
        #expect(forgotten.receivedDirectMessages == 1)
        #expect(try database.countMessages() == 1, "the conversation went with bob")
        #expect(try database.conversations(of: fixture.alice.id).isEmpty)
    }
}
