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

/// What each IRC command does (SPEC.md, IRC).
extension IRCConnection {
    func handle(_ message: IRCMessage) {
        let command = message.command.uppercased()
        let parameters = message.parameters
        let label = message.tag("label").flatMap { $0.isEmpty || $0.utf8.count > 64 ? nil : $0 }
        switch command {
        case "CAP": return capability(parameters)
        case "PASS": return pass(parameters)
        case "NICK": return nickCommand(parameters)
        case "USER": return user(parameters)
        case "AUTHENTICATE": return authenticate(parameters)
        case "PING":
            guard let token = parameters.first else { return reply("409", ["No origin specified"]) }
            return sendResponse([IRCMessage(source: serverName, command: "PONG", parameters: [serverName, token])], label: label)
        case "PONG": return
        case "QUIT":
            // Behind a login in flight, QUIT waits its turn like any command after NICK and USER.
            if !isRegistered, isLoggingIn, waitingForRegistration.count < Self.maxWaitingLines {
                waitingForRegistration.append(message)
                return
            }
            session?.quit(reason: parameters.first.map { String($0.prefix(200)) } ?? "Quit")
            return
        default: break
        }
        guard isRegistered else {
            // Clients send JOIN right behind NICK and USER: those wait for the login's answer.
            if hasUser, requestedNick != nil || saslAccount != nil, waitingForRegistration.count < Self.maxWaitingLines {
                waitingForRegistration.append(message)
                return
            }
            return reply("451", ["You have not registered"])
        }
        // Answers keep the order of commands: one answered here waits behind the session's
        // answers to earlier ones (a ping through the session is the barrier).
        let isLocal = !["JOIN", "PART", "PRIVMSG", "NOTICE", "NAMES", "LIST", "CHATHISTORY", "SEARCH", "MARKREAD"].contains(command)
            && !(command == "WHO" && parameters.first.map { $0.hasPrefix("#") } == true)
        if isLocal, !pending.isEmpty, !isReplayingBarrier {
            return submit(.ping, .barrier(message), label: nil)
        }
        switch command {
        case "JOIN": join(parameters, label: label)
        case "PART": part(parameters, label: label)
        case "PRIVMSG", "NOTICE": privmsg(command, parameters, label: label, clientTags: clientTags(of: message))
        case "TAGMSG": tagmsg(parameters, label: label, clientTags: clientTags(of: message))
        case "NAMES": names(parameters, label: label)
        case "WHO": who(parameters, label: label)
        case "WHOIS": whois(parameters, label: label)
        case "LIST": submit(.rooms, .list, label: label)
        case "TOPIC": topic(parameters, label: label)
        case "MODE": mode(parameters, label: label)
        case "MOTD": sendResponse(motdLines(), label: label)
        case "AWAY":
            awayMessage = parameters.first.flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
            let key = Names.userKey(nick)
            server.awayMessages.withLock { $0[key] = awayMessage }
            sendResponse([awayMessage == nil ? numeric("305", ["You are no longer marked as being away"])
                                             : numeric("306", ["You have been marked as being away"])], label: label)
        case "ISON": ison(parameters, label: label)
        case "USERHOST": userhost(parameters, label: label)
        case "CHATHISTORY": chathistory(parameters, label: label)
        case "SEARCH": search(parameters, label: label)
        case "MARKREAD": markRead(parameters, label: label)
        case "USERS", "SUMMON": sendResponse([numeric("446", [command, "Disabled"])], label: label)
        case "VERSION": sendResponse([numeric("351", ["chat-server", serverName, "stores every message"])], label: label)
        case "TIME": sendResponse([numeric("391", [serverName, Timestamp.string(Timestamp.now())])], label: label)
        case "LUSERS": sendResponse(lusersLines(), label: label)
        case "ADMIN": sendResponse([numeric("423", [serverName, "No administrative info available"])], label: label)
        case "INFO": sendResponse([numeric("371", ["chat-server: a chat server that remembers"]), numeric("374", ["End of INFO list"])], label: label)
        case "LINKS": sendResponse([numeric("364", ["*", serverName, "0 \(serverName)"]), numeric("365", ["*", "End of /LINKS list"])], label: label)
        case "STATS": sendResponse([numeric("219", [parameters.first ?? "*", "End of /STATS report"])], label: label)
        case "HELP": sendResponse([numeric("524", [parameters.first ?? "*", "No help available on this topic"])], label: label)
        case "OPER": sendResponse([numeric("491", ["No O-lines for your host"])], label: label)
        case "KILL", "WALLOPS", "REHASH", "RESTART", "DIE", "SQUIT", "CONNECT":
            sendResponse([numeric("481", ["Permission Denied- You're not an IRC operator"])], label: label)
        case "KICK", "INVITE":
            let channel = parameters.first { $0.hasPrefix("#") } ?? parameters.first ?? "*"
            sendResponse([numeric("482", [channel, "Nobody is a channel operator on this server"])], label: label)
        default:
            sendResponse([numeric("421", [message.command, "Unknown command"])], label: label)
        }
    }

    // MARK: Registration

    private func capability(_ parameters: [String]) {
        guard let subcommand = parameters.first?.uppercased() else { return reply("461", ["CAP", "Not enough parameters"]) }
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

    private func pass(_ parameters: [String]) {
        guard !isRegistered else { return reply("462", ["You may not reregister"]) }
        guard let given = parameters.first else { return reply("461", ["PASS", "Not enough parameters"]) }
        password = given
    }

    private func nickCommand(_ parameters: [String]) {
        guard let wanted = parameters.first, !wanted.isEmpty else { return reply("431", ["No nickname given"]) }
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

    private func user(_ parameters: [String]) {
        guard !isRegistered else { return reply("462", ["You may not reregister"]) }
        guard parameters.count >= 4 else { return reply("461", ["USER", "Not enough parameters"]) }
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

    private func authenticate(_ parameters: [String]) {
        guard let argument = parameters.first else { return reply("461", ["AUTHENTICATE", "Not enough parameters"]) }
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

    private func join(_ parameters: [String], label: String?) {
        guard let list = parameters.first else { return sendResponse([numeric("461", ["JOIN", "Not enough parameters"])], label: label) }
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

    private func part(_ parameters: [String], label: String?) {
        guard let list = parameters.first else { return sendResponse([numeric("461", ["PART", "Not enough parameters"])], label: label) }
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
    private func clientTags(of message: IRCMessage) -> String {
        guard capabilities.contains(.messageTags) else { return "" }
        return message.orderedTags.compactMap { tag -> String? in
            guard tag.name.count > 1, tag.name.hasPrefix("+"),
                  !tag.name.utf8.contains(where: { $0 <= 32 || $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: "=") }) else { return nil }
            return tag.value.isEmpty ? tag.name : tag.name + "=" + IRCEncoding.escapedTagValue(tag.value)
        }.joined(separator: ";")
    }

    /// `TAGMSG target`: the client-only tags relayed to a channel's members or a user, not stored.
    private func tagmsg(_ parameters: [String], label: String?, clientTags: String) {
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

    private func privmsg(_ command: String, _ parameters: [String], label: String?, clientTags: String = "") {
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

    private func names(_ parameters: [String], label: String?) {
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

    private func who(_ parameters: [String], label: String?) {
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

    private func whois(_ parameters: [String], label: String?) {
        guard let target = parameters.last else { return sendResponse([numeric("431", ["No nickname given"])], label: label) }
        guard Names.isValidUserName(target, maximumLength: 64), let (name, isAccount) = server.registry.holder(of: target) else {
            return sendResponse([numeric("401", [target, "No such nick/channel"]), numeric("318", [target, "End of /WHOIS list"])], label: label)
        }
        var lines = [numeric("311", [name, name, IRCEncoding.userHost, "*", name]), numeric("312", [name, serverName, "chat-server"])]
        if let away = awayMessage(of: name) { lines.append(numeric("301", [name, away])) }
        if isAccount { lines.append(numeric("330", [name, name, "is logged in as"])) }
        lines.append(numeric("318", [name, "End of /WHOIS list"]))
        sendResponse(lines, label: label)
    }

    private func topic(_ parameters: [String], label: String?) {
        guard let channel = parameters.first else { return sendResponse([numeric("461", ["TOPIC", "Not enough parameters"])], label: label) }
        guard let room = roomName(ofChannel: channel) else { return sendResponse([numeric("403", [channel, "No such channel"])], label: label) }
        if parameters.count >= 2 {
            return sendResponse([numeric("482", ["#" + room, "Topics are not kept on this server"])], label: label)
        }
        sendResponse([numeric("331", ["#" + room, "No topic is set"])], label: label)
    }

    private func mode(_ parameters: [String], label: String?) {
        guard let target = parameters.first else { return sendResponse([numeric("461", ["MODE", "Not enough parameters"])], label: label) }
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

    private func ison(_ parameters: [String], label: String?) {
        guard !parameters.isEmpty else { return sendResponse([numeric("461", ["ISON", "Not enough parameters"])], label: label) }
        let nicks = parameters.flatMap { $0.split(separator: " ").map(String.init) }.prefix(32)
        let online = nicks.compactMap { onlineName($0) }
        sendResponse([numeric("303", [online.joined(separator: " ")])], label: label)
    }

    private func userhost(_ parameters: [String], label: String?) {
        guard !parameters.isEmpty else { return sendResponse([numeric("461", ["USERHOST", "Not enough parameters"])], label: label) }
        let replies = parameters.prefix(5).compactMap { onlineName($0).map { "\($0)=+\($0)@\(IRCEncoding.userHost)" } }
        sendResponse([numeric("302", [replies.joined(separator: " ")])], label: label)
    }

    // MARK: History and search

    private func chathistory(_ parameters: [String], label: String?) {
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
    private func markRead(_ parameters: [String], label: String?) {
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
    private func search(_ parameters: [String], label: String?) {
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
