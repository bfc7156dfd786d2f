import ChatProtocol
import IRCProtocol
import NIOCore
import Storage

/// The IRCv3 capabilities the listener offers.
enum IRCCapability: String, CaseIterable {
    case accountTag = "account-tag"
    case batch
    case capNotify = "cap-notify"
    case chathistory = "draft/chathistory"
    case echoMessage = "echo-message"
    case labeledResponse = "labeled-response"
    case messageTags = "message-tags"
    case readMarker = "draft/read-marker"
    case sasl
    case search = "soju.im/search"
    case serverTime = "server-time"

    /// The value shown by `CAP LS 302`.
    var value: String? {
        switch self {
        case .sasl: "PLAIN"
        default: nil
        }
    }
}

/// A command as the dispatcher sees it (`IRCCommand.table`).
struct IRCInvocation {
    let message: IRCMessage
    /// Upper-cased.
    let command: String
    var parameters: [String] { message.parameters }
    /// The IRCv3 `label` to answer with, when usable.
    let label: String?
}

/// One IRC command, as a row of the dispatch table (the shape of Ergo's `irc/commands.go`): what
/// it needs before its handler runs, and the handler. A new command is one entry.
struct IRCCommand: Sendable {
    /// Where a command's answer comes from, which decides how it keeps its place in the order of
    /// answers (docs/design.md, "Answers in order").
    enum Answer: Sendable {
        /// The session answers it: handed to the session in order, answered in order.
        case bySession
        /// This adapter answers it: while the session still owes answers to earlier commands, it
        /// waits behind them (a barrier through the session), then runs.
        case local
        /// `WHO #channel` asks the session; `WHO nick` is answered here.
        case bySessionForChannels
        /// Nothing is answered (PONG), or the command orders itself (QUIT ends the session
        /// behind what it owes).
        case none
    }

    /// Whether it may come before registration ends (the rest wait for it, or get 451).
    var beforeRegistration = false
    /// Fewer parameters are answered `missing` (by default 461 "Not enough parameters").
    var minimumParameters = 0
    var missing: (code: String, text: String)?
    var answer = Answer.local
    let run: @Sendable (IRCConnection, IRCInvocation) -> Void

    init(beforeRegistration: Bool = false, minimumParameters: Int = 0, missing: (code: String, text: String)? = nil,
         answer: Answer = .local, _ run: @escaping @Sendable (IRCConnection, IRCInvocation) -> Void) {
        self.beforeRegistration = beforeRegistration
        self.minimumParameters = minimumParameters
        self.missing = missing
        self.answer = answer
        self.run = run
    }

    /// Every command the listener knows (SPEC.md, IRC); anything else is 421.
    static let table: [String: IRCCommand] = {
        var table: [String: IRCCommand] = [
            // Registration.
            "CAP": IRCCommand(beforeRegistration: true, minimumParameters: 1, answer: .none) { $0.capability($1.parameters) },
            "PASS": IRCCommand(beforeRegistration: true, minimumParameters: 1, answer: .none) { $0.pass($1.parameters) },
            "NICK": IRCCommand(beforeRegistration: true, minimumParameters: 1, missing: ("431", "No nickname given"), answer: .none) {
                $0.nickCommand($1.parameters)
            },
            "USER": IRCCommand(beforeRegistration: true, minimumParameters: 4, answer: .none) { $0.user($1.parameters) },
            "AUTHENTICATE": IRCCommand(beforeRegistration: true, minimumParameters: 1, answer: .none) { $0.authenticate($1.parameters) },
            "PING": IRCCommand(beforeRegistration: true, minimumParameters: 1, missing: ("409", "No origin specified")) { connection, command in
                connection.sendResponse([IRCMessage(source: connection.serverName, command: "PONG",
                                                    parameters: [connection.serverName, command.parameters[0]])], label: command.label)
            },
            "PONG": IRCCommand(beforeRegistration: true, answer: .none) { _, _ in },
            "QUIT": IRCCommand(beforeRegistration: true, answer: .none) { $0.quit($1) },
            // Chat, through the session.
            "JOIN": IRCCommand(minimumParameters: 1, answer: .bySession) { $0.join($1.parameters, label: $1.label) },
            "PART": IRCCommand(minimumParameters: 1, answer: .bySession) { $0.part($1.parameters, label: $1.label) },
            "PRIVMSG": IRCCommand(answer: .bySession) { $0.privmsg($1.command, $1.parameters, label: $1.label, clientTags: $0.clientTags(of: $1.message)) },
            "NOTICE": IRCCommand(answer: .bySession) { $0.privmsg($1.command, $1.parameters, label: $1.label, clientTags: $0.clientTags(of: $1.message)) },
            "TAGMSG": IRCCommand { $0.tagmsg($1.parameters, label: $1.label, clientTags: $0.clientTags(of: $1.message)) },
            "NAMES": IRCCommand(answer: .bySession) { $0.names($1.parameters, label: $1.label) },
            "WHO": IRCCommand(answer: .bySessionForChannels) { $0.who($1.parameters, label: $1.label) },
            "LIST": IRCCommand(answer: .bySession) { $0.submit(.rooms, .list, label: $1.label) },
            "CHATHISTORY": IRCCommand(answer: .bySession) { $0.chathistory($1.parameters, label: $1.label) },
            "SEARCH": IRCCommand(answer: .bySession) { $0.search($1.parameters, label: $1.label) },
            "MARKREAD": IRCCommand(answer: .bySession) { $0.markRead($1.parameters, label: $1.label) },
            // Answered here.
            "WHOIS": IRCCommand(minimumParameters: 1, missing: ("431", "No nickname given")) { $0.whois($1.parameters, label: $1.label) },
            "TOPIC": IRCCommand(minimumParameters: 1) { $0.topic($1.parameters, label: $1.label) },
            "MODE": IRCCommand(minimumParameters: 1) { $0.mode($1.parameters, label: $1.label) },
            "AWAY": IRCCommand { $0.away($1.parameters, label: $1.label) },
            "ISON": IRCCommand(minimumParameters: 1) { $0.ison($1.parameters, label: $1.label) },
            "USERHOST": IRCCommand(minimumParameters: 1) { $0.userhost($1.parameters, label: $1.label) },
            "MOTD": IRCCommand { $0.sendResponse($0.motdLines(), label: $1.label) },
            "LUSERS": IRCCommand { $0.sendResponse($0.lusersLines(), label: $1.label) },
            "VERSION": IRCCommand { $0.answer($1, "351", ["chat-server", $0.serverName, "stores every message"]) },
            "TIME": IRCCommand { $0.answer($1, "391", [$0.serverName, Timestamp.string(Timestamp.now())]) },
            "ADMIN": IRCCommand { $0.answer($1, "423", [$0.serverName, "No administrative info available"]) },
            "INFO": IRCCommand { connection, command in
                connection.sendResponse([connection.numeric("371", ["chat-server: a chat server that remembers"]),
                                         connection.numeric("374", ["End of INFO list"])], label: command.label)
            },
            "LINKS": IRCCommand { connection, command in
                connection.sendResponse([connection.numeric("364", ["*", connection.serverName, "0 \(connection.serverName)"]),
                                         connection.numeric("365", ["*", "End of /LINKS list"])], label: command.label)
            },
            "STATS": IRCCommand { $0.answer($1, "219", [$1.parameters.first ?? "*", "End of /STATS report"]) },
            "HELP": IRCCommand { $0.answer($1, "524", [$1.parameters.first ?? "*", "No help available on this topic"]) },
            "OPER": IRCCommand { $0.answer($1, "491", ["No O-lines for your host"]) },
            "KICK": IRCCommand { $0.noChannelOperators($1) },
            "INVITE": IRCCommand { $0.noChannelOperators($1) },
        ]
        for disabled in ["USERS", "SUMMON"] {
            table[disabled] = IRCCommand { $0.answer($1, "446", [$1.command, "Disabled"]) }
        }
        for operatorOnly in ["KILL", "WALLOPS", "REHASH", "RESTART", "DIE", "SQUIT", "CONNECT"] {
            table[operatorOnly] = IRCCommand { $0.answer($1, "481", ["Permission Denied- You're not an IRC operator"]) }
        }
        return table
    }()
}

/// What each IRC command does (SPEC.md, IRC).
extension IRCConnection {
    /// Runs one command through the table: unknown (421), before registration (queued behind the
    /// login in flight, or 451), short of parameters, or waiting behind the answers the session
    /// still owes; then its handler.
    func handle(_ message: IRCMessage) {
        let command = message.command.uppercased()
        let label = message.tag("label").flatMap { $0.isEmpty || $0.utf8.count > 64 ? nil : $0 }
        let invocation = IRCInvocation(message: message, command: command, label: label)
        guard let entry = IRCCommand.table[command] else {
            guard isRegistered else { return reply("451", ["You have not registered"]) }
            return sendResponse([numeric("421", [message.command, "Unknown command"])], label: label)
        }
        if !isRegistered, !entry.beforeRegistration {
            // Clients send JOIN right behind NICK and USER: those wait for the login's answer.
            if hasUser, requestedNick != nil || saslAccount != nil, waitingForRegistration.count < Self.maxWaitingLines {
                waitingForRegistration.append(message)
                return
            }
            return reply("451", ["You have not registered"])
        }
        if isRegistered, !pending.isEmpty, !isReplayingBarrier, entry.answersHere(invocation.parameters) {
            // Answers keep the order of commands: this one waits behind the session's answers to
            // earlier ones (a ping through the session is the barrier), then runs.
            return submit(.ping, .barrier(message), label: nil)
        }
        guard invocation.parameters.count >= entry.minimumParameters else {
            let missing = entry.missing ?? ("461", "Not enough parameters")
            let parameters = missing.code == "461" ? [command, missing.text] : [missing.text]
            return sendResponse([numeric(missing.code, parameters)], label: isRegistered ? label : nil)
        }
        entry.run(self, invocation)
    }

    /// A single numeric as the whole answer to `command`.
    func answer(_ command: IRCInvocation, _ code: String, _ parameters: [String]) {
        sendResponse([numeric(code, parameters)], label: command.label)
    }

    func quit(_ command: IRCInvocation) {
        // Behind a login in flight, QUIT waits its turn like any command after NICK and USER.
        if !isRegistered, isLoggingIn, waitingForRegistration.count < Self.maxWaitingLines {
            waitingForRegistration.append(command.message)
            return
        }
        session?.quit(reason: command.parameters.first.map { String($0.prefix(200)) } ?? "Quit")
    }

    func away(_ parameters: [String], label: String?) {
        awayMessage = parameters.first.flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        let key = Names.userKey(nick)
        server.awayMessages.withLock { $0[key] = awayMessage }
        sendResponse([awayMessage == nil ? numeric("305", ["You are no longer marked as being away"])
                                         : numeric("306", ["You have been marked as being away"])], label: label)
    }

    func noChannelOperators(_ command: IRCInvocation) {
        let channel = command.parameters.first { $0.hasPrefix("#") } ?? command.parameters.first ?? "*"
        answer(command, "482", [channel, "Nobody is a channel operator on this server"])
    }

    // MARK: Registration

    func capability(_ parameters: [String]) {
        let subcommand = parameters[0].uppercased()
        switch subcommand {
        case "LS":
            if !isRegistered { isNegotiatingCaps = true }
            capVersion = max(capVersion, Int(parameters.dropFirst().first ?? "") ?? 0)
            let offered = IRCCapability.allCases.map { capVersion >= 302 ? $0.rawValue + ($0.value.map { "=" + $0 } ?? "") : $0.rawValue }
            sendLine(IRCMessage(source: serverName, command: "CAP", parameters: [nick, "LS", offered.joined(separator: " ")]))
        case "LIST":
            sendLine(IRCMessage(source: serverName, command: "CAP", parameters: [nick, "LIST", capabilities.map(\.rawValue).sorted().joined(separator: " ")]))
        case "REQ":
            if !isRegistered { isNegotiatingCaps = true }
            let requested = (parameters.dropFirst().first ?? "").split(separator: " ").map(String.init)
            var adding: Set<IRCCapability> = [], removing: Set<IRCCapability> = []
            var valid = !requested.isEmpty
            for name in requested {
                let isRemoval = name.hasPrefix("-")
                guard let capability = IRCCapability(rawValue: isRemoval ? String(name.dropFirst()) : name) else { valid = false; break }
                if isRemoval { removing.insert(capability) } else { adding.insert(capability) }
            }
            let answer = valid ? "ACK" : "NAK"
            if valid { capabilities = capabilities.union(adding).subtracting(removing) }
            sendLine(IRCMessage(source: serverName, command: "CAP", parameters: [nick, answer, parameters.dropFirst().first ?? ""]))
        case "END":
            guard isNegotiatingCaps else { return }
            isNegotiatingCaps = false
            tryToRegister()
        default:
            reply("410", [subcommand, "Invalid CAP command"])
        }
    }

    func pass(_ parameters: [String]) {
        guard !isRegistered else { return reply("462", ["You may not reregister"]) }
        password = parameters[0]
    }

    func nickCommand(_ parameters: [String]) {
        let wanted = parameters[0]
        guard !wanted.isEmpty else { return reply("431", ["No nickname given"]) }
        if isRegistered || saslAccount != nil {
            if Names.userKey(wanted) == Names.userKey(nick) { return }
            return reply("400", ["NICK", "Nick changes are not supported here: reconnect with the new nick"])
        }
        guard Names.isValidUserName(wanted, maximumLength: server.configuration.limits.maxNameLength) else {
            return reply("432", [wanted, "Erroneous nickname: 1 to \(server.configuration.limits.maxNameLength) of letters, digits, '_' or '-'"])
        }
        requestedNick = wanted
        tryToRegister()
    }

    func user(_ parameters: [String]) {
        guard !isRegistered else { return reply("462", ["You may not reregister"]) }
        hasUser = true
        tryToRegister()
    }

    /// NICK and USER are in and capability negotiation is over: log in (unless SASL did).
    func tryToRegister() {
        guard !isRegistered, !isNegotiatingCaps, hasUser, !isLoggingIn else { return }
        if saslAccount != nil { return completeRegistrationIfReady() }
        guard let requestedNick else { return }
        isLoggingIn = true
        submit(.login(name: requestedNick, password: password, accountPassword: nil), .login(viaSASL: false), label: nil)
    }

    /// After the login: 001 to 005 and the MOTD, once NICK, USER and CAP END are in.
    func completeRegistrationIfReady() {
        guard !isRegistered, !isNegotiatingCaps, hasUser, let name = session?.user?.name else { return }
        if requestedNick == nil { requestedNick = name }
        isRegistered = true
        let limits = server.configuration.limits
        reply("001", ["Welcome to the \(serverName) chat, \(IRCEncoding.source(name))"])
        reply("002", ["Your host is \(serverName), running chat-server"])
        reply("003", ["This server keeps every message"])
        reply("004", [serverName, "chat-server", "i", "nt"])
        let tokens = [
            "AWAYLEN=200", "CASEMAPPING=ascii", "CHANLIMIT=#:", "CHANMODES=,,,nt", "CHANNELLEN=\(1 + 32)", "CHANTYPES=#",
            "CHATHISTORY=\(server.configuration.history.maxReplay)", "MAXTARGETS=4", "MSGREFTYPES=msgid,timestamp",
            "NETWORK=\(serverName)", "NICKLEN=\(limits.maxNameLength)", "PREFIX=(ov)@+", "TOPICLEN=0", "UTF8ONLY",
        ]
        reply("005", tokens + ["are supported by this server"])
        lusersLines().forEach(sendLine)
        motdLines().forEach(sendLine)
        if let name = requestedNick, saslAccount != nil, Names.userKey(name) != Names.userKey(self.nick) {
            sendLine(IRCMessage(source: IRCEncoding.source(name), command: "NICK", parameters: [self.nick]))
        }
        let waiting = waitingForRegistration
        waitingForRegistration = []
        waiting.forEach(handle)
    }

    /// RPL_LUSERCLIENT, RPL_LUSERCHANNELS, RPL_LUSERME: who is online, over both protocols.
    func lusersLines() -> [IRCMessage] {
        let users = server.registry.sessionCount
        let rooms = server.roomCount.load(ordering: .relaxed)
        return [numeric("251", ["There are \(users) users and 0 invisible on 1 servers"]),
                numeric("254", [String(rooms), "channels formed"]),
                numeric("255", ["I have \(users) clients and 0 servers"])]
    }

    func motdLines() -> [IRCMessage] {
        guard let motd = server.reloadable.withLock({ $0.motd }), !motd.isEmpty else {
            return [numeric("422", ["MOTD File is missing"])]
        }
        var lines = [numeric("375", ["- \(serverName) Message of the day - "])]
        for line in IRCTextSplitter.split(motd, maxBytes: 400) { lines.append(numeric("372", ["- " + line])) }
        lines.append(numeric("376", ["End of /MOTD command."]))
        return lines
    }

    func authenticate(_ parameters: [String]) {
        let argument = parameters[0]
        guard !isRegistered, saslAccount == nil else { return reply("907", ["You have already authenticated using SASL"]) }
        switch saslState {
        case .none:
            guard argument.uppercased() == "PLAIN" else {
                reply("908", ["PLAIN", "are available SASL mechanisms"])
                return reply("904", ["SASL authentication failed"])
            }
            saslState = .awaitingPayload("")
            sendLine(IRCMessage(command: "AUTHENTICATE", parameters: ["+"]))
        case .awaitingPayload(let sofar):
            if argument == "*" {
                saslState = .none
                return reply("906", ["SASL authentication aborted"])
            }
            let payload = sofar + (argument == "+" ? "" : argument)
            guard payload.utf8.count <= 1200 else {
                saslState = .none
                return reply("905", ["SASL message too long"])
            }
            if argument.utf8.count == 400 { saslState = .awaitingPayload(payload); return }
            let fields = (Base64.decode(payload) ?? []).split(separator: 0, omittingEmptySubsequences: false)
            // authzid empty or the account itself: nobody logs in as somebody else.
            guard fields.count == 3, let account = String(validating: fields[1], as: UTF8.self),
                  let secret = String(validating: fields[2], as: UTF8.self), !account.isEmpty,
                  fields[0].isEmpty || Names.userKey(String(decoding: fields[0], as: UTF8.self)) == Names.userKey(account) else {
                saslState = .none
                return reply("904", ["SASL authentication failed"])
            }
            saslState = .checking
            isLoggingIn = true
            submit(.login(name: account, password: password, accountPassword: secret), .login(viaSASL: true), label: nil)
        case .checking:
            reply("904", ["SASL authentication failed"])
        }
    }

    // MARK: Channels

    /// `#room` to a room name; nil for anything that is not a channel of ours.
    func roomName(ofChannel channel: String) -> String? {
        guard channel.hasPrefix("#") else { return nil }
        return Names.canonicalRoom(channel)
    }

    func join(_ parameters: [String], label: String?) {
        let list = parameters[0]
        if list == "0" {
            let rooms = session?.subscriptions.keys.sorted() ?? []
            if rooms.isEmpty { return sendResponse([], label: label) }
            for room in rooms { submit(.leave(room: room), .part(channel: "#" + room, reason: nil), label: label) }
            return
        }
        let channels = list.split(separator: ",").map(String.init).prefix(16)
        let replay: ReplayRequest = capabilities.contains(.chathistory) ? .latest(0) : .missed
        for channel in channels {
            guard let room = roomName(ofChannel: channel) else {
                sendResponse([numeric("403", [channel, "No such channel (a channel is # and 1 to 32 of a-z, 0-9, '_' or '-')"])], label: label)
                continue
            }
            if session?.subscriptions[room] != nil { continue }
            submit(.join(room: room, replay: replay), .join(channel: "#" + room), label: label)
        }
    }

    func part(_ parameters: [String], label: String?) {
        let list = parameters[0]
        for channel in list.split(separator: ",").map(String.init).prefix(16) {
            guard let room = roomName(ofChannel: channel) else {
                sendResponse([numeric("403", [channel, "No such channel"])], label: label)
                continue
            }
            let reason = parameters.dropFirst().first.map { IRCEncoding.sanitized(String($0.prefix(200))) }
            submit(.leave(room: room), .part(channel: channel, reason: reason), label: label)
        }
    }

    /// The client-only tags (`+name`) of a line from a client that negotiated `message-tags`,
    /// as they are relayed: `+name=value;...`, values escaped again.
    func clientTags(of message: IRCMessage) -> String {
        guard capabilities.contains(.messageTags) else { return "" }
        return message.orderedTags.compactMap { tag -> String? in
            guard tag.name.count > 1, tag.name.hasPrefix("+"),
                  !tag.name.utf8.contains(where: { $0 <= 32 || $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: "=") }) else { return nil }
            return tag.value.isEmpty ? tag.name : tag.name + "=" + IRCEncoding.escapedTagValue(tag.value)
        }.joined(separator: ";")
    }

    /// `TAGMSG target`: the client-only tags relayed to a channel's members or a user, not stored.
    func tagmsg(_ parameters: [String], label: String?, clientTags: String) {
        guard let target = parameters.first?.split(separator: ",").first.map(String.init), !target.isEmpty else {
            return sendResponse([numeric("411", ["No recipient given (TAGMSG)"])], label: label)
        }
        // Nothing to relay (no tags, or a client that did not negotiate message-tags).
        guard !clientTags.isEmpty else { return sendResponse([], label: label) }
        if target.hasPrefix("#") {
            guard let room = roomName(ofChannel: target) else {
                return sendResponse([numeric("403", [target, "No such channel"])], label: label)
            }
            submit(.tagMessage(.room(room), clientTags: clientTags), .message(target: target, command: "TAGMSG"), label: label)
        } else {
            submit(.tagMessage(.user(target), clientTags: clientTags), .message(target: target, command: "TAGMSG"), label: label)
        }
    }

    func privmsg(_ command: String, _ parameters: [String], label: String?, clientTags: String = "") {
        let isNotice = command == "NOTICE"
        guard let targets = parameters.first, !targets.isEmpty else {
            if !isNotice { sendResponse([numeric("411", ["No recipient given (\(command))"])], label: label) }
            return
        }
        guard parameters.count >= 2, !parameters[1].isEmpty else {
            if !isNotice { sendResponse([numeric("412", ["No text to send"])], label: label) }
            return
        }
        var text = parameters[1]
        var kind = MessageKind.text
        if text.hasPrefix("\u{1}") {
            let body = text.dropFirst().hasSuffix("\u{1}") ? String(text.dropFirst().dropLast()) : String(text.dropFirst())
            guard body.hasPrefix("ACTION") else {
                // Other CTCP (VERSION, PING...) is not chat: not stored, not relayed.
                return sendResponse([], label: label)
            }
            kind = .action
            text = String(body.dropFirst(6).drop { $0 == " " })
            if text.isEmpty { return sendResponse([], label: label) }
        }
        for target in targets.split(separator: ",").map(String.init).prefix(4) {
            if target.hasPrefix("#") {
                guard let room = roomName(ofChannel: target) else {
                    if !isNotice { sendResponse([numeric("403", [target, "No such channel"])], label: label) }
                    continue
                }
                submit(.say(.room(room), text: text, kind: kind, clientTags: clientTags), .message(target: target, command: command), label: label)
            } else {
                submit(.say(.user(target), text: text, kind: kind, clientTags: clientTags), .message(target: target, command: command), label: label)
            }
        }
    }

    func names(_ parameters: [String], label: String?) {
        guard let channel = parameters.first?.split(separator: ",").first.map(String.init), let room = roomName(ofChannel: channel) else {
            return sendResponse([numeric("366", [parameters.first ?? "*", "End of /NAMES list"])], label: label)
        }
        submit(.who(room: room), .names(channel: "#" + room), label: label)
    }

    /// The names reply as messages (for a labeled answer, which tags each line): the lines
    /// `writeNames` writes, so there is one rule for splitting them.
    func namesLines(channel: String, members: [String]) -> [IRCMessage] {
        guard let allocator = context?.channel.allocator else { return [] }
        var buffer = allocator.buffer(capacity: 64 + members.count * 12)
        writeNames(channel: channel, members: members, into: &buffer)
        return messages(in: buffer)
    }

    func whoLine(channel: String, member: String) -> IRCMessage {
        numeric("352", [channel, member, IRCEncoding.userHost, serverName, member, "H", "0 \(member)"])
    }

    func who(_ parameters: [String], label: String?) {
        guard let mask = parameters.first else { return sendResponse([numeric("315", ["*", "End of /WHO list"])], label: label) }
        if let room = roomName(ofChannel: mask) {
            return submit(.who(room: room), .who(mask: mask), label: label)
        }
        var lines: [IRCMessage] = []
        if let name = onlineName(mask) { lines.append(whoLine(channel: "*", member: name)) }
        lines.append(numeric("315", [mask, "End of /WHO list"]))
        sendResponse(lines, label: label)
    }

    /// The `AWAY` message of the user `nick`, when it is away.
    func awayMessage(of nick: String) -> String? {
        let key = Names.userKey(nick)
        return server.awayMessages.withLock { $0[key] }
    }

    /// The name as its holder spelled it, when someone online holds `nick`.
    func onlineName(_ nick: String) -> String? {
        guard Names.isValidUserName(nick, maximumLength: 64) else { return nil }
        return server.registry.holder(of: nick)?.name
    }

    func whois(_ parameters: [String], label: String?) {
        let target = parameters[parameters.count - 1]
        guard Names.isValidUserName(target, maximumLength: 64), let (name, isAccount) = server.registry.holder(of: target) else {
            return sendResponse([numeric("401", [target, "No such nick/channel"]), numeric("318", [target, "End of /WHOIS list"])], label: label)
        }
        var lines = [numeric("311", [name, name, IRCEncoding.userHost, "*", name]), numeric("312", [name, serverName, "chat-server"])]
        if let away = awayMessage(of: name) { lines.append(numeric("301", [name, away])) }
        if isAccount { lines.append(numeric("330", [name, name, "is logged in as"])) }
        lines.append(numeric("318", [name, "End of /WHOIS list"]))
        sendResponse(lines, label: label)
    }

    func topic(_ parameters: [String], label: String?) {
        let channel = parameters[0]
        guard let room = roomName(ofChannel: channel) else { return sendResponse([numeric("403", [channel, "No such channel"])], label: label) }
        if parameters.count >= 2 {
            return sendResponse([numeric("482", ["#" + room, "Topics are not kept on this server"])], label: label)
        }
        sendResponse([numeric("331", ["#" + room, "No topic is set"])], label: label)
    }

    func mode(_ parameters: [String], label: String?) {
        let target = parameters[0]
        if target.hasPrefix("#") {
            guard let room = roomName(ofChannel: target) else { return sendResponse([numeric("403", [target, "No such channel"])], label: label) }
            let channel = "#" + room
            guard parameters.count >= 2 else { return sendResponse([numeric("324", [channel, "+nt"])], label: label) }
            let modes = parameters[1]
            if modes.trimmingPrefix("+") == "b" || modes == "b" { return sendResponse([numeric("368", [channel, "End of channel ban list"])], label: label) }
            if modes.trimmingPrefix("+") == "e" { return sendResponse([numeric("349", [channel, "End of channel exception list"])], label: label) }
            if modes.trimmingPrefix("+") == "I" { return sendResponse([numeric("347", [channel, "End of channel invite list"])], label: label) }
            return sendResponse([numeric("482", [channel, "Channel modes are fixed on this server"])], label: label)
        }
        guard Names.userKey(target) == Names.userKey(nick) else {
            let known = onlineName(target) != nil
            return sendResponse([known ? numeric("502", ["Can't change mode for other users"]) : numeric("401", [target, "No such nick/channel"])],
                                label: label)
        }
        if parameters.count >= 2 { return sendResponse([], label: label) } // user modes are fixed: +i
        sendResponse([numeric("221", ["+i"])], label: label)
    }

    func ison(_ parameters: [String], label: String?) {
        let nicks = parameters.flatMap { $0.split(separator: " ").map(String.init) }.prefix(32)
        let online = nicks.compactMap { onlineName($0) }
        sendResponse([numeric("303", [online.joined(separator: " ")])], label: label)
    }

    func userhost(_ parameters: [String], label: String?) {
        let replies = parameters.prefix(5).compactMap { onlineName($0).map { "\($0)=+\($0)@\(IRCEncoding.userHost)" } }
        sendResponse([numeric("302", [replies.joined(separator: " ")])], label: label)
    }

    // MARK: History and search

    func chathistory(_ parameters: [String], label: String?) {
        func fail(_ code: String, _ context: [String], _ text: String) {
            sendResponse([failure("CHATHISTORY", code, context: context, text)], label: label)
        }
        guard parameters.count >= 2 else { return fail("NEED_MORE_PARAMS", [], "Missing parameters") }
        let subcommand = parameters[0].uppercased()
        let maximum = server.configuration.history.maxReplay
        func limit(at index: Int) -> Int? {
            guard index < parameters.count, let value = Int(parameters[index]), value >= 0 else { return nil }
            return min(value, maximum)
        }
        if subcommand == "TARGETS" {
            guard parameters.count >= 4, let from = point(parameters[1]), let to = point(parameters[2]),
                  case .time(let fromTime) = from, case .time(let toTime) = to, let count = limit(at: 3) else {
                return fail("INVALID_PARAMS", [subcommand], "TARGETS takes two timestamps and a limit")
            }
            return submit(.conversations, .targets(from: fromTime, to: toTime, limit: count), label: label)
        }
        let target = parameters[1]
        let subject: MessageTarget
        if target.hasPrefix("#") {
            guard let room = roomName(ofChannel: target) else { return fail("INVALID_TARGET", [subcommand, target], "No such channel") }
            subject = .room(room)
        } else {
            guard Names.isValidUserName(target, maximumLength: 64) else { return fail("INVALID_TARGET", [subcommand, target], "No such nick") }
            subject = .user(target)
        }
        let page: HistoryPage
        let count: Int?
        switch subcommand {
        case "LATEST":
            guard parameters.count >= 4, let reference = parameters[2] == "*" ? HistoryPoint.id(.max) : point(parameters[2]) else {
                return fail("INVALID_PARAMS", [subcommand, target], "LATEST takes * or a msgid= / timestamp= reference, and a limit")
            }
            if case .id(.max) = reference { page = .before(.max) } else { page = .latestAfter(reference) }
            count = limit(at: 3)
        case "BEFORE", "AFTER", "AROUND":
            guard parameters.count >= 4, let reference = point(parameters[2]) else {
                return fail("INVALID_PARAMS", [subcommand, target], "\(subcommand) takes a msgid= / timestamp= reference and a limit")
            }
            page = subcommand == "BEFORE" ? .beforePoint(reference) : subcommand == "AFTER" ? .afterPoint(reference) : .around(reference)
            count = limit(at: 3)
        case "BETWEEN":
            guard parameters.count >= 5, let first = point(parameters[2]), let second = point(parameters[3]) else {
                return fail("INVALID_PARAMS", [subcommand, target], "BETWEEN takes two msgid= / timestamp= references and a limit")
            }
            page = .between(first, second)
            count = limit(at: 4)
        default:
            return fail("INVALID_PARAMS", [subcommand], "Unknown subcommand")
        }
        guard let count else { return fail("INVALID_PARAMS", [subcommand, target], "The limit is a number") }
        submit(.history(subject, page: page, limit: count), .chathistory(target: target), label: label)
    }

    /// `msgid=ID` or `timestamp=RFC3339` (IRCv3 chathistory references).
    private func point(_ reference: String) -> HistoryPoint? {
        if reference.hasPrefix("msgid="), let id = Int64(reference.dropFirst(6)), id >= 0 { return .id(id) }
        if reference.hasPrefix("timestamp="), let time = Timestamp.parse(String(reference.dropFirst(10))) { return .time(time) }
        return nil
    }

    /// `MARKREAD target [timestamp=T]` (draft/read-marker): rooms keep markers; a DM has none.
    func markRead(_ parameters: [String], label: String?) {
        func fail(_ code: String, _ context: [String], _ text: String) {
            sendResponse([failure("MARKREAD", code, context: context, text)], label: label)
        }
        guard let target = parameters.first else { return fail("NEED_MORE_PARAMS", [], "MARKREAD takes a target") }
        var time: Int64?
        if parameters.count >= 2 {
            guard parameters[1].hasPrefix("timestamp="), let parsed = Timestamp.parse(String(parameters[1].dropFirst(10))) else {
                return fail("INVALID_PARAMS", [target], "The marker is timestamp=YYYY-MM-DDThh:mm:ss.sssZ")
            }
            time = parsed
        }
        guard target.hasPrefix("#") else {
            return sendResponse([IRCMessage(source: serverName, command: "MARKREAD", parameters: [target, "*"])], label: label)
        }
        guard let room = roomName(ofChannel: target) else { return fail("INVALID_PARAMS", [target], "No such channel") }
        submit(.markRead(room: room, time: time), .markRead(channel: "#" + room), label: label)
    }

    /// `SEARCH in=#chan;from=nick;text=words;limit=N` (soju.im/search).
    func search(_ parameters: [String], label: String?) {
        func fail(_ code: String, _ text: String) {
            sendResponse([failure("SEARCH", code, text)], label: label)
        }
        guard let attributes = parameters.first else { return fail("NEED_MORE_PARAMS", "Missing search attributes") }
        var request = SearchRequest(query: "")
        for pair in attributes.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let value = IRCMessage.unescapeTagValue(parts.count > 1 ? parts[1] : "")
            switch parts[0] {
            case "text": request.query = value
            case "in":
                if value.hasPrefix("#") { request.room = value } else { request.with = value }
            case "from": request.from = value
            case "limit": request.limit = Int(value).map { max(1, $0) }
            default: break
            }
        }
        guard !request.query.isEmpty else { return fail("INVALID_PARAMS", "text= is required") }
        submit(.search(request), .search, label: label)
    }

    // MARK: Errors

    /// A refusal from the session as the numerics IRC clients know.
    func errorLines(for kind: PendingRequest.Kind, _ error: ProtocolError) -> [IRCMessage] {
        switch kind {
        case .login(let viaSASL):
            isLoggingIn = false
            if viaSASL {
                saslState = .none
                return [numeric("904", ["SASL authentication failed: \(error.message)"])]
            }
            let wanted = requestedNick ?? "*"
            requestedNick = nil
            switch error.code {
            case .badPassword: return [numeric("464", ["Password incorrect"])]
            case .nameTaken: return [numeric("433", [wanted, "Nickname is already in use"])]
            case .accountRequired: return [numeric("433", [wanted, "Nickname is registered: log in with SASL PLAIN"])]
            case .invalidName: return [numeric("432", [wanted, "Erroneous nickname"])]
            default: return [failure("NICK", error.code.rawValue.uppercased(), error.message)]
            }
        case .join(let channel):
            switch error.code {
            case .rateLimited: return [numeric("405", [channel, error.message])]
            default: return [numeric("403", [channel, error.message])]
            }
        case .part(let channel, _):
            return [numeric(error.code == .notInRoom ? "442" : "403", [channel, error.code == .notInRoom ? "You're not on that channel" : error.message])]
        case .message(let target, let command):
            if command == "NOTICE" { return [] }
            switch error.code {
            case .notInRoom: return [numeric("404", [target, "Cannot send to channel (join it first)"])]
            case .noSuchUser: return [numeric("401", [target, "No such nick/channel"])]
            case .invalidRoom, .noSuchRoom: return [numeric("403", [target, "No such channel"])]
            case .tooLong: return [numeric("417", ["Message too long"])]
            default: return [failure(command, error.code.rawValue.uppercased(), context: [target], error.message)]
            }
        case .names(let channel):
            return [numeric("366", [channel, "End of /NAMES list"])]
        case .who(let mask):
            return [numeric("315", [mask, "End of /WHO list"])]
        case .list:
            return [numeric("323", ["End of /LIST"])]
        case .chathistory(let target):
            let code = [.noSuchRoom, .notInRoom, .noSuchUser, .invalidRoom, .accountRequired].contains(error.code) ? "INVALID_TARGET" : "MESSAGE_ERROR"
            return [failure("CHATHISTORY", code, context: [target], error.message)]
        case .targets:
            return [failure("CHATHISTORY", "MESSAGE_ERROR", context: ["TARGETS"], error.message)]
        case .search:
            return [failure("SEARCH", "INVALID_PARAMS", error.message)]
        case .barrier:
            return []
        case .markRead(let channel):
            return [failure("MARKREAD", "INVALID_PARAMS", context: [channel], error.message)]
        }
    }
}

extension IRCCommand {
    /// Whether this adapter answers the command (so it must wait behind the session's answers).
    func answersHere(_ parameters: [String]) -> Bool {
        switch answer {
        case .local: true
        case .bySession, .none: false
        case .bySessionForChannels: parameters.first.map { !$0.hasPrefix("#") } ?? true
        }
    }
}
