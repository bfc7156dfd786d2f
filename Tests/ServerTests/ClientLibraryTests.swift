import ChatClient
import ChatProtocol
import Foundation
import Testing

@Suite struct ClientLibraryTests {
    @Test func connectLoginJoinSayAndPage() async throws {
        try await withServer { server in
            let connection = try await ChatConnection.connect(host: "127.0.0.1", port: server.port)
            #expect(!connection.passwordRequired)
            let welcome = try await connection.login(name: "alice", password: nil)
            #expect(welcome.defaultRoom == "lobby")
            let joined = try await connection.join(room: "lobby")
            #expect(joined.members == ["alice"])
            #expect(joined.history.isEmpty)
            var ids: [Int64] = []
            for index in 0..<5 { ids.append(try await connection.say(room: "lobby", text: "m\(index)").id) }
            #expect(ids == ids.sorted())
            let page = try await connection.history(room: "lobby", before: ids[3], limit: 2)
            #expect(page.messages.map(\.id) == [ids[1], ids[2]])
            #expect(page.more)
            #expect(try await connection.who(room: "lobby") == ["alice"])
            #expect(try await connection.rooms().first?.messages == 5)
            await connection.quit(reason: "done")
        }
    }

    @Test func refusalsCarryTheServersCode() async throws {
        try await withServer({ $0.server.password = "pw" }) { server in
            let connection = try await ChatConnection.connect(host: "127.0.0.1", port: server.port)
            #expect(connection.passwordRequired)
            await #expect(throws: ChatClientError.refused(ProtocolError(.badPassword, "wrong password", re: .integer(1)))) {
                _ = try await connection.login(name: "alice", password: "nope")
            }
        }
        await #expect {
            _ = try await ChatConnection.connect(host: "127.0.0.1", port: 1)
        } throws: { error in
            if case .cannotConnect? = error as? ChatClientError { return true }
            return false
        }
    }

    @Test func aServerShutdownEndsTheSessionWithItsReason() async throws {
        let server = try await TestServer.start()
        let session = ChatSession(options: .init(host: "127.0.0.1", port: server.port, name: "alice"))
        try await session.start()
        try await session.join(room: "lobby")
        await server.stop()
        var last: SessionEvent?
        for await event in session.events { last = event }
        #expect(last == .shutdown(reason: "server is shutting down"))
    }
}
