import ChatTestSupport
import Foundation
import Storage
import Testing

/// Prometheus text exposition, parsed: sample name with labels → value. Throws on any line
/// that is neither a comment nor a well-formed sample.
func parsePrometheus(_ text: String) throws -> [String: Double] {
    struct Malformed: Error, CustomStringConvertible { let description: String }
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
        guard let space = line.lastIndex(of: " ") else { throw Malformed(description: "no value: \(line)") }
        let name = String(line[..<space])
        let valueText = line[line.index(after: space)...]
        guard let first = name.first, first.isLetter || first == "_" || first == ":",
              name.prefix(while: { $0 != "{" }).allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }),
              !name.contains("{") || name.hasSuffix("}"),
              let value = Double(valueText) ?? (valueText == "+Inf" ? .infinity : nil) else {
            throw Malformed(description: "not a sample: \(line)")
        }
        samples[name] = value
    }
    return samples
}

@Suite struct MetricsTests {
    @Test func metricsAreServedAsPrometheusTextOnTheirOwnListener() async throws {
        try await withServer({
            $0.metrics.enabled = true; $0.metrics.port = 0; $0.irc.enabled = true; $0.irc.port = 0; $0.web.enabled = true; $0.web.port = 0
        }) { server in
            let port = try #require(server.server.metricsPort)
            #expect(port != server.port)
            let ircClient = try IRCTestClient(port: try #require(server.server.ircPort))
            try ircClient.register("carol")
            let browser = try LineClient(webSocketPort: try #require(server.server.webPort))
            try browser.login("dave")
            try server.database.addAccount(name: "owner", password: try PasswordHash.make(password: "right password"))
            // Kept open through the scrape: a connection closed now might or might not be counted yet.
            let failed = try server.client()
            #expect(try failed.loginAnswer("owner", accountPassword: "wrong password").code == "auth_failed")
            let alice = try server.user("alice")
            let bob = try server.user("bob")
            try alice.join("lobby")
            try bob.join("lobby")
            for index in 0..<5 { try alice.say("message \(index)") }
            // Bob's acknowledgement comes after the room's five messages; alice's copy after her acks.
            _ = try bob.request(["type": "say", "to": "alice", "text": "direct"])
            #expect(try alice.next("message").text == "direct")

            let (status, _, body) = try httpRequest(port, "/metrics")
            #expect(status == 200)
            let samples = try parsePrometheus(body)
            #expect(samples["chat_messages_stored_total"] == 6)
            #expect((samples["chat_deliveries_total"] ?? 0) >= 12, "5 messages to 2 members, a DM to 2 sessions")
            #expect(samples["chat_auth_failures_total"] == 1)
            #expect(samples[#"chat_connections{transport="native"}"#] == 3, "alice, bob and the failed login")
            withExtendedLifetime(failed) {}
            #expect(samples[#"chat_connections{transport="irc"}"#] == 1)
            #expect(samples[#"chat_connections{transport="websocket"}"#] == 1)
            #expect(samples["chat_logged_in_sessions"] == 4)
            #expect(samples["chat_rooms"] == 1)
            #expect((samples["chat_commit_seconds_count"] ?? 0) >= 1)
            #expect((samples["chat_commit_batch_size_count"] ?? 0) >= 1)
            #expect((samples["chat_replay_seconds_count"] ?? 0) == 2)
            #expect(samples["chat_writer_queue_depth"] != nil)
            #expect((samples["process_resident_memory_bytes"] ?? 0) > 1_000_000)
            #expect(body.contains("# TYPE chat_messages_stored_total counter"))

            #expect(try httpRequest(port, "/").status == 404)
            #expect(try httpRequest(port, "/metrics", method: "POST").status == 405)
            let chat = try server.client()
            #expect(try chat.next().type == "greeting", "the chat listener is not the metrics one")
        }
    }

    @Test func withMetricsOffThereIsNoListener() async throws {
        try await withServer { server in
            #expect(server.server.metricsPort == nil)
        }
    }
}
