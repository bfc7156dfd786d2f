import ChatClient
import ChatProtocol
import Foundation
import NIOCore

/// Standard input not a terminal: every input line is a message, every event an output line.
struct PipeMode {
    let host: String
    let port: Int
    let name: String
    let room: String?
    let password: String?
    let json: Bool

    func run() async -> Int32 {
        let session = ChatSession(options: .init(host: host, port: port, name: name, password: password))
        do {
            try await session.start()
        } catch {
            complain("\(error)")
            return 1
        }
        let output = OutputLines(json: json)
        let printing = Task {
            for await event in session.events { output.print(event) }
        }
        let roomName: String
        do {
            roomName = try await joinRoom(session)
        } catch {
            complain("cannot join: \(error)")
            await session.quit()
            return 1
        }

        var failures: [String] = []
        var number = 0
        let lines = AsyncStream<String> { continuation in
            Thread {
                while let line = readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }.start()
        }
        for await line in lines {
            number += 1
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            if let failure = await send(line, to: roomName, session: session) {
                failures.append("line \(number): \(failure)")
            }
        }
        await session.quit()
        // The session's events end once the quit is done: every event is printed before exit.
        await printing.value
        if failures.isEmpty { return 0 }
        complain("\(failures.count) message\(failures.count == 1 ? " was" : "s were") not acknowledged:")
        for failure in failures { complain("  \(failure)") }
        return 1
    }

    private func joinRoom(_ session: ChatSession) async throws -> String {
        let room = Names.canonicalRoom(room ?? session.defaultRoom) ?? session.defaultRoom
        try await session.join(room: room)
        return room
    }

    /// Sends one line and waits for its acknowledgement; a rate limit is waited out (the
    /// message was not stored, so sending it again is safe). Returns why it failed, if it did.
    private func send(_ line: String, to room: String, session: ChatSession) async -> String? {
        var delay = 0.1
        while true {
            do {
                try await session.say(room: room, text: line)
                return nil
            } catch let error as ChatClientError where error.code == .rateLimited {
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                delay = min(2, delay * 2)
            } catch {
                return "\(error)"
            }
        }
    }

    private func complain(_ message: String) {
        FileHandle.standardError.write(Data("chat-client: \(message)\n".utf8))
    }
}

/// Prints events as plain lines (`[ts] #room <name> text`) or as JSON frames.
struct OutputLines: Sendable {
    let json: Bool

    func print(_ event: SessionEvent) {
        switch event {
        case .connected(let name, let motd, let isReconnect):
            if json { return }
            write(isReconnect ? "-- reconnected as \(name)" : "-- connected as \(name)\(motd.map { ": \($0)" } ?? "")")
        case .history(_, let messages, _):
            for message in messages { print(message) }
        case .message(let message):
            print(message)
        case .presence(let presence):
            if json {
                var buffer = ByteBuffer()
                ServerFrame.presence(room: presence.room, name: presence.name, event: presence.isJoin ? .join : .leave,
                                     reason: presence.reason, timestamp: presence.timestamp, into: &buffer)
                write(String(buffer: buffer), newline: false)
            } else {
                let what = presence.isJoin ? "joined" : "left\(presence.reason.map { " (\($0))" } ?? "")"
                write("[\(Timestamp.string(presence.timestamp))] #\(presence.room) -- \(presence.name) \(what)")
            }
        case .shutdown(let reason):
            json ? write(#"{"type":"shutdown","reason":"# + jsonString(reason) + "}") : write("-- server shutting down: \(reason)")
        case .disconnected(let retry):
            if !json { write("-- connection lost; reconnecting in \(retry) s") }
        case .error(let error):
            if json {
                var buffer = ByteBuffer()
                ServerFrame.error(error, into: &buffer)
                write(String(buffer: buffer), newline: false)
            } else {
                write("-- error \(error.code.rawValue): \(error.message)")
            }
        }
    }

    private func print(_ message: ChatMessage) {
        if json {
            var buffer = ByteBuffer()
            ServerFrame.message(message, re: nil, into: &buffer)
            write(String(buffer: buffer), newline: false)
        } else {
            let text = message.text.replacingOccurrences(of: "\n", with: "\n    ")
            let who = message.kind == .action ? "* \(message.from)" : "<\(message.from)>"
            write("[\(Timestamp.string(message.timestamp))] #\(message.room) \(who) \(text)")
        }
    }

    private func jsonString(_ text: String) -> String {
        var buffer = ByteBuffer()
        buffer.writeJSONString(text)
        return String(buffer: buffer)
    }

    private func write(_ line: String, newline: Bool = true) {
        FileHandle.standardOutput.write(Data((newline ? line + "\n" : line).utf8))
    }
}
