import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore
import Storage

/// Registration: capabilities, the server password, NICK and USER, SASL.
extension IRCConnection {
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
}
