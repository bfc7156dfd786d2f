import ChatProtocol

/// A frame from the server, decoded.
public enum ServerEvent: Sendable, Equatable {
    case greeting(server: String, passwordRequired: Bool)
    case welcome(re: RequestID?, name: String, defaultRoom: String, motd: String?, isAccount: Bool)
    case registered(re: RequestID?, name: String)
    case joined(re: RequestID?, room: String, members: [String])
    case history(re: RequestID?, room: String, messages: [ChatMessage], more: Bool)
    /// A page of the direct messages with a user.
    case conversationHistory(re: RequestID?, with: String, messages: [ChatMessage], more: Bool)
    case conversations(re: RequestID?, [ServerFrame.ConversationSummary])
    case search(re: RequestID?, messages: [ChatMessage], more: Bool)
    case message(ChatMessage, re: RequestID?)
    case presence(Presence)
    case left(re: RequestID?, room: String)
    case rooms(re: RequestID?, rooms: [ServerFrame.RoomSummary])
    case who(re: RequestID?, room: String, members: [String])
    case pong(re: RequestID?)
    case ping
    case bye
    case shutdown(reason: String)
    case error(ProtocolError)
    /// A frame of a type this client does not know (the protocol may grow).
    case other(type: String)

    /// Someone joined or left a room.
    public struct Presence: Sendable, Equatable {
        public var room: String
        public var name: String
        public var isJoin: Bool
        public var reason: String?
        public var timestamp: Int64
    }

    /// The request this frame answers, if any.
    public var re: RequestID? {
        switch self {
        case .welcome(let re, _, _, _, _), .registered(let re, _), .joined(let re, _, _), .history(let re, _, _, _),
             .conversationHistory(let re, _, _, _), .conversations(let re, _), .search(let re, _, _), .message(_, let re),
             .left(let re, _), .rooms(let re, _), .who(let re, _, _), .pong(let re):
            re
        case .error(let error):
            error.re
        default:
            nil
        }
    }

    /// Decodes one line from the server; nil when it is not a frame at all.
    public static func decode(_ line: String) -> ServerEvent? {
        guard let value = try? JSONParser.parse(line), case .object(let object) = value,
              let type = object["type"]?.stringValue else { return nil }
        let re = requestID(object["re"])
        func string(_ key: String) -> String { object[key]?.stringValue ?? "" }
        func strings(_ key: String) -> [String] {
            guard case .array(let items)? = object[key] else { return [] }
            return items.compactMap(\.stringValue)
        }
        switch type {
        case "greeting":
            return .greeting(server: string("server"), passwordRequired: object["password_required"] == .bool(true))
        case "welcome":
            return .welcome(re: re, name: string("name"), defaultRoom: string("default_room"), motd: object["motd"]?.stringValue,
                            isAccount: object["account"] == .bool(true))
        case "registered":
            return .registered(re: re, name: string("name"))
        case "joined":
            return .joined(re: re, room: string("room"), members: strings("members"))
        case "history":
            let messages = (object["messages"]?.arrayValue ?? []).compactMap(message)
            if let with = object["with"]?.stringValue {
                return .conversationHistory(re: re, with: with, messages: messages, more: object["more"] == .bool(true))
            }
            return .history(re: re, room: string("room"), messages: messages, more: object["more"] == .bool(true))
        case "search":
            return .search(re: re, messages: (object["messages"]?.arrayValue ?? []).compactMap(message), more: object["more"] == .bool(true))
        case "conversations":
            return .conversations(re: re, (object["conversations"]?.arrayValue ?? []).map {
                ServerFrame.ConversationSummary(with: $0["with"]?.stringValue ?? "", lastID: $0["last_id"]?.integerValue ?? 0)
            })
        case "message":
            guard let message = message(value) else { return nil }
            return .message(message, re: re)
        case "presence":
            return .presence(Presence(room: string("room"), name: string("name"), isJoin: string("event") == "join",
                                      reason: object["reason"]?.stringValue, timestamp: Timestamp.parse(string("ts")) ?? 0))
        case "left":
            return .left(re: re, room: string("room"))
        case "rooms":
            guard case .array(let items)? = object["rooms"] else { return .rooms(re: re, rooms: []) }
            return .rooms(re: re, rooms: items.map {
                ServerFrame.RoomSummary(name: $0["name"]?.stringValue ?? "", members: Int($0["members"]?.integerValue ?? 0),
                                        messages: Int($0["messages"]?.integerValue ?? 0))
            })
        case "who":
            return .who(re: re, room: string("room"), members: strings("members"))
        case "pong":
            return .pong(re: re)
        case "ping":
            return .ping
        case "bye":
            return .bye
        case "shutdown":
            return .shutdown(reason: string("reason"))
        case "error":
            let code = ErrorCode(rawValue: string("code")) ?? .internal
            return .error(ProtocolError(code, string("message"), re: re))
        default:
            return .other(type: type)
        }
    }

    private static func requestID(_ value: JSONValue?) -> RequestID? {
        switch value {
        case .integer(let number)?: .integer(number)
        case .string(let text)?: .string(text)
        default: nil
        }
    }

    private static func message(_ value: JSONValue) -> ChatMessage? {
        let to = value["to"]?.stringValue
        guard let id = value["id"]?.integerValue, let room = value["room"]?.stringValue ?? (to == nil ? nil : ""),
              let from = value["from"]?.stringValue, let text = value["text"]?.stringValue else { return nil }
        return ChatMessage(id: id, timestamp: value["ts"]?.stringValue.flatMap(Timestamp.parse) ?? 0, room: room, from: from, to: to,
                           kind: value["kind"]?.stringValue == "action" ? .action : .text, text: text)
    }
}
