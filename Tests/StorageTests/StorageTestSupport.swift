import ChatProtocol
import Foundation
@testable import Storage

/// A fresh folder for one test's database files, removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appending(path: "chat-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A database with a user and a room, ready for messages.
struct Fixture {
    let database: ChatDatabase
    let alice: UserRecord
    let bob: UserRecord
    let lobby: RoomRecord
    let dev: RoomRecord

    init(_ database: ChatDatabase) async throws {
        self.database = database
        alice = try await database.recordLogin(name: "Alice")
        bob = try await database.recordLogin(name: "bob")
        lobby = try await database.ensureRoom(named: "lobby")
        dev = try await database.ensureRoom(named: "dev")
    }

    static func inMemory() async throws -> Fixture {
        try await Fixture(ChatDatabase.inMemory())
    }

    @discardableResult
    func say(_ text: String, by user: UserRecord? = nil, in room: RoomRecord? = nil, kind: MessageKind = .text) async throws -> CommittedMessage {
        try await database.appendMessage(MessageDraft(roomID: (room ?? lobby).id, userID: (user ?? alice).id, kind: kind, text: text))
    }
}
