import ChatProtocol
import ChatTestSupport
import Foundation
import Storage
import Testing

/// PROTOCOL.md, Accounts: register, account logins, failed passwords, guests, several sessions.
@Suite struct AccountTests {
    static let password = "correct horse battery"

    /// A guest that registered its name; returns its (still open) connection.
    static func registered(_ name: String, on server: TestServer) throws -> LineClient {
        let client = try server.user(name)
        let answer = try client.request(["type": "register", "password": password])
        guard answer.type == "registered" else { throw LineClient.Unexpected(frame: answer) }
        return client
    }

    @Test func aRegisteredNameOpensOnlyWithItsPassword() async throws {
        try await withServer { server in
            let alice = try server.user("Alice")
            let weak = try alice.request(["type": "register", "password": "short"])
            #expect(weak.type == "error" && weak.code == "weak_password")
            let tooLong = try alice.request(["type": "register", "password": String(repeating: "é", count: 129)])
            #expect(tooLong.code == "weak_password", "over 256 bytes")
            let registered = try alice.request(["type": "register", "password": Self.password])
            #expect(registered.type == "registered")
            #expect(registered.value["name"]?.stringValue == "Alice")
            let again = try alice.request(["type": "register", "password": Self.password])
            #expect(again.code == "bad_request", "already an account")
            alice.send(#"{"type":"quit"}"#)
            _ = try alice.readUntilClosed()

            let intruder = try server.client()
            let missing = try intruder.loginAnswer("alice", accountPassword: nil)
            #expect(missing.code == "account_required")
            let first = try intruder.loginAnswer("alice", accountPassword: "wrong password 1", readGreeting: false)
            #expect(first.code == "auth_failed")
            let second = try intruder.loginAnswer("alice", accountPassword: "wrong password 2", readGreeting: false)
            #expect(second.code == "auth_failed")
            // A missing password did not count; the third wrong one closes the connection.
            let third = try intruder.loginAnswer("alice", accountPassword: "wrong password 3", readGreeting: false)
            #expect(third.code == "auth_failed")
            #expect(try intruder.readUntilClosed().isEmpty)

            let owner = try server.client()
            let welcome = try owner.loginAnswer("ALICE", accountPassword: Self.password)
            #expect(welcome.type == "welcome")
            #expect(welcome.value["account"] == .bool(true))
            #expect(welcome.value["name"]?.stringValue == "Alice", "the first spelling")
        }
    }

    @Test func guestsGetAccountFalseAndCanBeTurnedOff() async throws {
        try await withServer { server in
            #expect(try server.client().loginAnswer("guest", accountPassword: nil).value["account"] == .bool(false))
            _ = try Self.registered("member", on: server)
        }
        try await withServer({ $0.accounts.guests = false }) { server in
            let guest = try server.client()
            #expect(try guest.loginAnswer("guest", accountPassword: nil).code == "account_required")
            try server.database.addAccount(name: "member", password: try PasswordHash.make(password: Self.password))
            let member = try server.client()
            #expect(try member.loginAnswer("member", accountPassword: Self.password).type == "welcome")
        }
    }

    /// `accounts.scryptLogN` raised: a hash made at the old cost is re-made at the new one on
    /// the next good login (never on a wrong one), and still opens with the same password.
    @Test func aHashBelowTheConfiguredCostIsRemadeOnTheNextGoodLogin() async throws {
        try await withServer({ $0.accounts.scryptLogN = 11 }) { server in
            try server.database.addAccount(name: "member", password: try PasswordHash.make(password: Self.password, logN: 10))
            let intruder = try server.client()
            #expect(try intruder.loginAnswer("member", accountPassword: "not the password").code == "auth_failed")
            #expect(try server.database.account(named: "member")?.password.cost == 1 << 10, "a wrong password re-makes nothing")
            let member = try server.client()
            #expect(try member.loginAnswer("member", accountPassword: Self.password).type == "welcome")
            try await waitUntil("the hash is re-made at N = 2^11") {
                try server.database.account(named: "member")?.password.cost == 1 << 11
            }
            let again = try server.client()
            #expect(try again.loginAnswer("member", accountPassword: Self.password).type == "welcome")
            #expect(try server.database.account(named: "member")?.password.cost == 1 << 11)
        }
        try await withServer({ $0.accounts.scryptLogN = 10 }) { server in
            try server.database.addAccount(name: "member", password: try PasswordHash.make(password: Self.password, logN: 11))
            #expect(try server.client().loginAnswer("member", accountPassword: Self.password).type == "welcome")
            // The welcome follows the login's record, committed after any re-made hash.
            #expect(try server.database.account(named: "member")?.password.cost == 1 << 11, "a dearer hash is kept")
        }
    }

    @Test func registrationCanBeLeftToTheAdministrator() async throws {
        try await withServer({ $0.accounts.registration = .admin }) { server in
            let guest = try server.user("guest")
            #expect(try guest.request(["type": "register", "password": Self.password]).code == "registration_closed")
        }
    }

    @Test func theMinimumPasswordLengthIsConfigurable() async throws {
        try await withServer({ $0.accounts.minPasswordLength = 20 }) { server in
            let guest = try server.user("guest")
            #expect(try guest.request(["type": "register", "password": "nineteen characters"]).code == "weak_password")
            #expect(try guest.request(["type": "register", "password": "twenty characters ok"]).type == "registered")
        }
    }

    @Test func anAccountHasSeveralSessionsAndRoomsListItOnce() async throws {
        try await withServer { server in
            let phone = try Self.registered("alice", on: server)
            let laptop = try server.client()
            #expect(try laptop.loginAnswer("alice", accountPassword: Self.password).type == "welcome")
            let guest = try server.user("bob")
            #expect(try server.client().loginAnswer("bob", accountPassword: nil).code == "name_taken", "guest names stay single")

            try guest.join("lobby")
            try phone.join("lobby")
            #expect(try guest.next("presence").value["name"]?.stringValue == "alice")
            let (joined, _) = try laptop.join("lobby")
            #expect(joined.members == ["bob", "alice"], "listed once")
            let who = try guest.request(["type": "who", "room": "lobby"])
            #expect(who.members == ["bob", "alice"])

            // Both sessions get the room's messages.
            let said = try guest.say("to both")
            #expect(try phone.next("message").id == said.id)
            #expect(try laptop.next("message").id == said.id)

            // The first session leaving tells nobody; the last one does.
            #expect(try phone.request(["type": "leave", "room": "lobby"]).type == "left")
            let marker = try guest.say("after the first left")
            #expect(try laptop.next("message").id == marker.id)
            #expect(try laptop.request(["type": "leave", "room": "lobby"]).type == "left")
            let presence = try guest.next("presence")
            #expect(presence.value["event"]?.stringValue == "leave")
            #expect(presence.value["name"]?.stringValue == "alice")
            guest.send(#"{"type":"ping","id":"end"}"#)
            let next = try guest.next()
            #expect(next.type == "pong", "one leave only: \(next)")
        }
    }

    @Test func failedPasswordsFromOneAddressAreRefusedForAWhile() async throws {
        try await withServer { server in
            try server.database.addAccount(name: "target", password: try PasswordHash.make(password: Self.password))
            var failures = 0
            while failures < 5 {
                let guesser = try server.client()
                _ = try guesser.next("greeting")
                for _ in 0..<2 where failures < 5 {
                    #expect(try guesser.loginAnswer("target", accountPassword: "guess \(failures)", readGreeting: false).code == "auth_failed")
                    failures += 1
                }
            }
            // Now even the right password is refused from this address, without being checked.
            let refused = try server.client().loginAnswer("target", accountPassword: Self.password)
            #expect(refused.code == "auth_failed")
            #expect(refused.value["message"]?.stringValue?.contains("too many failed logins") == true)
        }
    }
}
