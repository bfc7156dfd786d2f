import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore
import Storage

/// Channels and people: JOIN, PART, messages, NAMES, WHO, WHOIS, TOPIC, MODE, ISON, USERHOST.
extension IRCConnection {
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
        return state.awayMessages.withLock { $0[key] }
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
}
