import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore
import Storage

/// History and search: CHATHISTORY, SEARCH, MARKREAD, and the errors they answer with.
extension IRCConnection {
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
