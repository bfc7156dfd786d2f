import ChatClient
import ChatProtocol
import ChatTerminal
import Dispatch
import Foundation

/// Standard input and output are a terminal: prompts, raw-mode line editing, a live view.
struct TerminalMode {
    let host: String
    let port: Int
    let tls: ClientTLS?
    let name: String?
    let room: String?
    let password: String?
    /// The account password (CHAT_ACCOUNT_PASSWORD); asked for when the name needs one.
    let accountPassword: String?
    let style: Style

    func run() async -> Int32 {
        guard let session = await connect() else { return 1 }
        Terminal.enableRawMode()
        defer { Terminal.restore() }
        let screen = Screen(session: session, style: style)
        let (keys, keyInput) = standardInputChunks()
        let events = Task {
            for await event in session.events { await screen.show(event) }
            await screen.connectionEnded()
            // The session is over (shutdown, or a failure it cannot recover from): stop waiting for keys.
            keyInput.finish()
        }
        await screen.start(room: Names.canonicalRoom(room ?? session.defaultRoom) ?? session.defaultRoom)

        let resize = DispatchSource.makeSignalSource(signal: SIGWINCH)
        signal(SIGWINCH, SIG_IGN)
        resize.setEventHandler { Task { await screen.redraw() } }
        resize.resume()

        var decoder = KeyDecoder()
        for await bytes in keys {
            for key in decoder.decode(bytes) where await !screen.handle(key) {
                break
            }
            if await screen.isFinished { break }
        }
        resize.cancel()
        await screen.finish()
        events.cancel()
        return 0
    }

    /// Asks what is missing (name, password), connects and logs in; offers another name when
    /// the chosen one is taken. Nil (after saying why) when it cannot.
    private func connect() async -> ChatSession? {
        var name = self.name
        var password = self.password
        do {
            if try await ChatSession.probe(host: host, port: port, tls: tls), password == nil {
                password = Terminal.readSecret(prompt: "password for \(host):\(port): ")
            }
        } catch {
            say(style.error("chat-client: \(error)"))
            return nil
        }
        var accountPassword = self.accountPassword
        var failedPasswords = 0
        while true {
            if name == nil { name = askName() }
            guard let chosen = name else { return nil }
            var options = ChatSession.Options(host: host, port: port, name: chosen, password: password, accountPassword: accountPassword)
            options.tls = tls
            let session = ChatSession(options: options)
            do {
                try await session.start()
                return session
            } catch let error as ChatClientError {
                switch error.code {
                case .nameTaken?, .invalidName?:
                    say(style.notice(error.description))
                    name = nil
                case .badPassword?:
                    say(style.error("chat-client: wrong password"))
                    return nil
                case .accountRequired? where accountPassword == nil:
                    // The name is a registered account: its password opens it.
                    accountPassword = Terminal.readSecret(prompt: "account password for \(chosen): ")
                    if accountPassword == nil { return nil }
                case .accountRequired?:
                    // A password was given and still refused: guests are off and the name is no account.
                    say(style.notice(error.description))
                    (name, accountPassword) = (nil, nil)
                case .authFailed?:
                    failedPasswords += 1
                    say(style.error("wrong account password for \(chosen)"))
                    guard failedPasswords < 3 else { return nil }
                    accountPassword = Terminal.readSecret(prompt: "account password for \(chosen): ")
                    if accountPassword == nil { return nil }
                default:
                    say(style.error("chat-client: \(error)"))
                    return nil
                }
            } catch {
                say(style.error("chat-client: \(error)"))
                return nil
            }
        }
    }

    private func askName() -> String? {
        while true {
            Terminal.write("your name: ")
            guard let line = readLine(strippingNewline: true) else { return nil }
            let name = line.trimmingCharacters(in: .whitespaces)
            if Names.isValidUserName(name, maximumLength: 1024) { return name }
            say("a name is letters, digits, '_' or '-', not starting with '-'")
        }
    }

    private func say(_ line: String) {
        Terminal.write(line + "\n")
    }

    /// Standard input in chunks, read on a thread of its own; the continuation lets the session
    /// end the stream too.
    private func standardInputChunks() -> (AsyncStream<[UInt8]>, AsyncStream<[UInt8]>.Continuation) {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(STDIN_FILENO, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                continuation.yield(Array(buffer[..<count]))
            }
            continuation.finish()
        }.start()
        return (stream, continuation)
    }
}

/// The screen: output scrolls above, the input line stays at the bottom and is redrawn after
/// every line printed, so incoming messages never break what is being typed.
actor Screen {
    private let session: ChatSession
    private let style: Style
    private var editor = LineEditor()
    private var currentRoom: String?
    /// With /query, typed lines go to this user as direct messages instead of to the room.
    private var currentQuery: String?
    /// What a secret typed in the input line (dots, no history) is for, e.g. /register.
    private var secretHandler: (@Sendable (String) async -> Void)?
    /// The oldest message id shown per room, for /history.
    private var oldestShown: [String: Int64] = [:]
    private(set) var isFinished = false

    init(session: ChatSession, style: Style) {
        self.session = session
        self.style = style
    }

    func start(room: String) async {
        print(style.dim("connected to the server as \(session.name). /help lists the commands."))
        await join(room)
    }

    // MARK: Output

    private var prompt: String {
        if editor.isSecret { return "password: " }
        if let currentQuery { return "[@\(currentQuery)] " }
        return currentRoom.map { "[#\($0)] " } ?? "> "
    }

    /// Prints a line above the input line, then redraws the input line.
    func print(_ line: String) {
        Terminal.write("\r\u{1B}[2K" + line + "\n")
        redraw()
    }

    func redraw() {
        let columns = Terminal.size().columns
        var promptText = prompt
        if columns - promptText.count < 10 { promptText = "" }
        let (text, cursor) = editor.visible(width: columns - promptText.count)
        let column = promptText.count + cursor
        Terminal.write("\r\u{1B}[2K" + style.bold(promptText) + text + "\r" + (column > 0 ? "\u{1B}[\(column)C" : ""))
    }

    func show(_ event: SessionEvent) {
        switch event {
        case .connected(let name, let motd, let isReconnect):
            if isReconnect { print(style.notice("reconnected as \(name); caught up on what was missed")) }
            if let motd, !isReconnect { print(style.italic(motd)) }
        case .history(let room, let messages, let more):
            if more { print(style.dim("… older messages in #\(room): /history")) }
            for message in messages { print(style.message(message, showRoom: room != currentRoom, isHistory: true)) }
            if let first = messages.first { oldestShown[room] = min(oldestShown[room] ?? .max, first.id) }
            print(style.dim("──── #\(room): live ────"))
        case .message(let message) where message.isDirect:
            print(style.message(message, showRoom: true, isHistory: false))
        case .message(let message):
            if oldestShown[message.room] == nil { oldestShown[message.room] = message.id }
            print(style.message(message, showRoom: message.room != currentRoom, isHistory: false))
        case .presence(let presence):
            let what = presence.isJoin ? "joined" : "left" + (presence.reason.map { " (\($0))" } ?? "")
            let room = presence.room == currentRoom ? "" : " #\(presence.room)"
            print(style.dim("\(Style.localTime(presence.timestamp)) → \(presence.name) \(what)\(room)"))
        case .shutdown(let reason):
            print(style.notice("the server is shutting down: \(reason)"))
            isFinished = true
        case .disconnected(let retry):
            print(style.notice("connection lost; reconnecting in \(retry) s…"))
        case .error(let error):
            print(style.error("\(error.code.rawValue): \(error.message)"))
        }
    }

    func connectionEnded() {
        if !isFinished {
            print(style.notice("disconnected"))
            isFinished = true
        }
    }

    // MARK: Input

    /// Handles a key; false when the client should stop reading keys.
    func handle(_ key: Key) async -> Bool {
        switch editor.handle(key) {
        case .edited:
            redraw()
        case .submitted(let line) where editor.isSecret:
            editor.isSecret = false
            let handler = secretHandler
            secretHandler = nil
            redraw()
            await handler?(line)
        case .submitted(let line):
            redraw()
            await submit(line)
        case .interrupted:
            isFinished = true
            return false
        case .clearScreen:
            Terminal.write("\u{1B}[2J\u{1B}[H")
            redraw()
        case .ignored:
            break
        }
        return !isFinished
    }

    private func submit(_ line: String) async {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return }
        if ["/quit", "exit", "\\quit", "/exit"].contains(trimmed) {
            isFinished = true
            return
        }
        if trimmed.hasPrefix("/") && !trimmed.hasPrefix("//") {
            await command(trimmed)
            return
        }
        send(trimmed.hasPrefix("//") ? String(line.dropFirst()) : line, kind: .text)
    }

    private func send(_ text: String, kind: MessageKind) {
        if let currentQuery {
            sendDirect(text, to: currentQuery, kind: kind)
            return
        }
        guard let room = currentRoom else {
            print(style.notice("join a room first: /join ROOM"))
            return
        }
        session.send(room: room, text: text, kind: kind) { [weak self] result in
            guard case .failure(let error) = result, let self else { return }
            Task { await self.print(self.style.error("not sent: \(error)")) }
        }
    }

    private func sendDirect(_ text: String, to user: String, kind: MessageKind) {
        session.send(to: user, text: text, kind: kind) { [weak self] result in
            guard case .failure(let error) = result, let self else { return }
            Task { await self.print(self.style.error("not sent to \(user): \(error)")) }
        }
    }

    private func command(_ line: String) async {
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        do {
            switch parts[0] {
            case "/join", "/j":
                guard !argument.isEmpty else { return print(style.notice("usage: /join ROOM")) }
                await join(argument)
            case "/leave", "/part":
                guard let room = argument.isEmpty ? currentRoom : Names.canonicalRoom(argument) else {
                    return print(style.notice("you are in no room"))
                }
                try await session.leave(room: room)
                print(style.dim("left #\(room)"))
                if room == currentRoom { currentRoom = session.joinedRooms.first }
                redraw()
            case "/rooms":
                let rooms = try await session.rooms()
                let joined = Set(session.joinedRooms)
                for room in rooms {
                    print("\(joined.contains(room.name) ? "*" : " ") #\(room.name)  \(room.members) online, \(room.messages) messages")
                }
            case "/who":
                guard let room = argument.isEmpty ? currentRoom : Names.canonicalRoom(argument) else {
                    return print(style.notice("usage: /who ROOM"))
                }
                let members = try await session.who(room: room)
                print("#\(room): \(members.isEmpty ? "nobody" : members.map(style.name).joined(separator: ", "))")
            case "/history":
                guard let room = currentRoom else { return print(style.notice("join a room first")) }
                let count = Int(argument) ?? 20
                guard count > 0 else { return print(style.notice("usage: /history [N]")) }
                let page = try await session.history(room: room, before: oldestShown[room], limit: count)
                if page.messages.isEmpty {
                    print(style.dim("no older messages in #\(room)"))
                } else {
                    print(style.dim("──── older messages in #\(room) ────"))
                    for message in page.messages { print(style.message(message, showRoom: false, isHistory: true)) }
                    oldestShown[room] = page.messages.first?.id
                    print(style.dim("──── end of older messages\(page.more ? " (/history for more)" : "") ────"))
                }
            case "/me":
                guard !argument.isEmpty else { return print(style.notice("usage: /me TEXT")) }
                send(argument, kind: .action)
            case "/msg", "/m":
                let words = argument.split(separator: " ", maxSplits: 1).map(String.init)
                guard words.count == 2, !words[1].trimmingCharacters(in: .whitespaces).isEmpty else {
                    return print(style.notice("usage: /msg NAME TEXT"))
                }
                sendDirect(words[1], to: words[0], kind: .text)
            case "/query", "/q":
                guard !argument.isEmpty else {
                    currentQuery = nil
                    print(style.dim(currentRoom.map { "back to #\($0)" } ?? "no conversation open"))
                    return redraw()
                }
                guard Names.isValidUserName(argument, maximumLength: 1024) else { return print(style.notice("usage: /query NAME")) }
                currentQuery = argument
                print(style.dim("talking to \(argument) directly; /query alone goes back to the room"))
                if session.isAccount {
                    let page = try await session.history(with: argument, before: nil, limit: 10)
                    for message in page.messages { print(style.message(message, showRoom: true, isHistory: true)) }
                }
                redraw()
            case "/register":
                guard !session.isAccount else { return print(style.notice("\(session.name) is an account already")) }
                print(style.dim("type the password for \(session.name) (not shown, not kept in the history)"))
                editor.isSecret = true
                secretHandler = { [weak self] password in await self?.register(password: password) }
                redraw()
            case "/search", "/s":
                guard !argument.isEmpty else { return print(style.notice("usage: /search QUERY (words, \"phrases\", AND, OR, NOT, prefix*)")) }
                let found = try await session.search(argument)
                let terms = Style.searchTerms(argument)
                print(style.dim("──── \(found.messages.count)\(found.more ? "+" : "") matches for \(argument) ────"))
                for message in found.messages.reversed() {
                    print(style.message(message, showRoom: true, isHistory: false, highlighting: terms))
                }
                print(style.dim("──── end of matches ────"))
            case "/help", "/?":
                for help in [
                    "/join ROOM     join a room (or switch to it)", "/leave [ROOM]  leave the current room (or ROOM)",
                    "/rooms         list the rooms", "/who [ROOM]    who is in the room",
                    "/history [N]   show N older messages", "/me TEXT       an action (* you TEXT)",
                    "/msg NAME TEXT a direct message", "/query NAME    talk to NAME directly (/query alone: back)",
                    "/search QUERY  search rooms and your direct messages", "/register      make your name an account",
                    "/quit          leave (also exit, \\quit, Ctrl+C, Ctrl+D)",
                    "keys: ←/→ Home/End Ctrl+A/E move, Ctrl+U/K/W delete, ↑/↓ earlier lines, Ctrl+L clear",
                    "a line starting with // is sent with one slash",
                ] { print(style.dim(help)) }
            default:
                print(style.notice("unknown command \(parts[0]); /help lists the commands"))
            }
        } catch {
            print(style.error("\(error)"))
        }
    }

    private func register(password: String) async {
        do {
            try await session.register(password: password)
            print(style.notice("\(session.name) is now an account: log in with its password from now on"))
        } catch {
            print(style.error("not registered: \(error)"))
        }
    }

    private func join(_ requested: String) async {
        guard let room = Names.canonicalRoom(requested) else {
            return print(style.notice("a room name is 1 to 32 of a-z, 0-9, '_' or '-'"))
        }
        currentQuery = nil
        if session.joinedRooms.contains(room) {
            currentRoom = room
            print(style.dim("now talking in #\(room)"))
            return
        }
        do {
            currentRoom = room
            let members = try await session.join(room: room)
            print(style.dim("#\(room): \(members.count) online: \(members.joined(separator: ", "))"))
        } catch {
            currentRoom = session.joinedRooms.first
            print(style.error("cannot join #\(room): \(error)"))
        }
        redraw()
    }

    /// Leaves cleanly: quit sent, the terminal restored by the caller.
    func finish() async {
        isFinished = true
        Terminal.write("\r\u{1B}[2K")
        await session.quit()
        Terminal.write(style.dim("bye") + "\n")
    }
}
