import ChatConfiguration
import ChatTestSupport
import Foundation
import Logging
import Server
import Storage
import Testing

/// A real server in this process, on 127.0.0.1 and a free port, with its database in a fresh
/// temporary folder (or in memory).
final class TestServer: @unchecked Sendable {
    let server: ChatServer
    let database: ChatDatabase
    let folder: String
    var port: Int { server.port }

    static func start(inMemory: Bool = false, _ adjust: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let folder = FileManager.default.temporaryDirectory.appending(path: "chat-server-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var configuration = ServerConfiguration()
        configuration.server.port = 0
        configuration.database.path = folder + "/chat.sqlite"
        configuration.limits.rate = nil
        // The suite runs many tests at once on 2 cores: a client may wait long for its turn to
        // log in. Tests of the login deadline set it themselves.
        configuration.limits.loginTimeoutSeconds = 0
        configuration.log.messages = false
        adjust(&configuration)
        let database = inMemory ? try ChatDatabase.inMemory() : try ChatDatabase.open(path: configuration.database.path)
        var logger = Logger(label: "test-server")
        // CHAT_TEST_LOG=debug shows the server's log while debugging a test.
        logger.logLevel = ProcessInfo.processInfo.environment["CHAT_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let server = try await ChatServer.start(configuration: configuration, database: database, logger: logger)
        return TestServer(server: server, database: database, folder: folder)
    }

    private init(server: ChatServer, database: ChatDatabase, folder: String) {
        self.server = server
        self.database = database
        self.folder = folder
    }

    func client() throws -> LineClient {
        try LineClient(port: port)
    }

    /// A client logged in as `name`.
    func user(_ name: String, password: String? = nil) throws -> LineClient {
        let client = try client()
        try client.login(name, password: password)
        return client
    }

    func stop() async {
        await server.shutdown()
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// Runs `body` against a fresh server and always stops it.
func withServer(inMemory: Bool = false, _ adjust: (inout ServerConfiguration) -> Void = { _ in }, _ body: (TestServer) async throws -> Void) async throws {
    let server = try await TestServer.start(inMemory: inMemory, adjust)
    do {
        try await body(server)
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
}

/// Waits until `condition` holds, polling; fails after `timeout` seconds.
func waitUntil(timeout: Double = 30, _ what: String, _ condition: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        guard Date() < deadline else { throw LineClient.Timeout(waitingFor: what) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Blocking work (socket reads) on a thread of its own, started at once: it never waits for, nor
/// occupies, one of the few threads of Swift's cooperative pool that the other tests need.
final class BackgroundThread<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Value, any Error>?
    private var continuation: CheckedContinuation<Value, any Error>?

    init(_ body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            let outcome = Result { try body() }
            lock.lock()
            if let continuation {
                lock.unlock()
                continuation.resume(with: outcome)
            } else {
                result = outcome
                lock.unlock()
            }
        }
        thread.start()
    }

    /// The body's result, once it has finished.
    var value: Value {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                lock.lock()
                if let result {
                    lock.unlock()
                    continuation.resume(with: result)
                } else {
                    self.continuation = continuation
                    lock.unlock()
                }
            }
        }
    }
}

/// Sends 1,000-byte messages to `lobby` until `member` (which reads nothing) has more waiting
/// than its socket buffers and `maxOutboundBytes` hold and is dropped: its departure (presence)
/// tells. Each message waits for its acknowledgement, so the sender never falls behind.
/// Returns whether the member was dropped within 50,000 messages.
func floodUntilDropped(_ server: TestServer, member: String) throws -> Bool {
    let sender = try server.user("sender")
    try sender.join("lobby")
    let text = String(repeating: "x", count: 1000)
    let started = Date()
    for sent in 0..<50_000 {
        sender.send(["type": "say", "room": "lobby", "text": "\(sent) \(text)", "id": sent])
        var dropped = false
        while true {
            let frame: Frame
            do { frame = try sender.next() } catch let timeout as LineClient.Timeout {
                throw LineClient.Timeout(waitingFor: "the acknowledgement of message \(sent) (\(timeout.waitingFor)), \(Int(Date().timeIntervalSince(started))) s into the flood")
            }
            if frame.type == "presence", frame.value["name"]?.stringValue == member { dropped = true }
            if frame.re == .integer(Int64(sent)) { break }
        }
        if dropped { return true }
    }
    return false
}

/// One HTTP/1.1 request on a connection of its own (`Connection: close`): the status, the
/// headers (names in lower case) and the body's lines.
func httpRequest(_ port: Int, _ path: String, method: String = "GET", headers: [String] = [], body: String = "") throws
    -> (status: Int, headers: [String: String], body: String) {
    let client = try LineClient(port: port)
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for header in headers { request += header + "\r\n" }
    if !body.isEmpty { request += "Content-Length: \(body.utf8.count)\r\n" }
    client.send(bytes: Array((request + "\r\n" + body).utf8))
    var lines: [String] = []
    while let line = try client.nextLine() { lines.append(line.hasSuffix("\r") ? String(line.dropLast()) : line) }
    let status = try #require(lines.first.flatMap { Int($0.split(separator: " ")[1]) })
    let blank = lines.firstIndex(of: "") ?? lines.count
    var fields: [String: String] = [:]
    for line in lines[1..<blank] {
        let parts = line.split(separator: ":", maxSplits: 1)
        fields[parts[0].lowercased()] = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
    }
    return (status, fields, lines[min(blank + 1, lines.count)...].joined(separator: "\n"))
}
