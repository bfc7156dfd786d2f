/// How much history a `join` asks for.
public enum ReplayRequest: Sendable, Equatable {
    /// What the user missed since its read marker, or the latest `history.onJoin` for a newcomer.
    case missed
    /// The messages with an id greater than this one.
    case after(Int64)
    /// The latest N messages.
    case latest(Int)
}

/// The direction of a `history` page. The native protocol asks `before` and `after` an id; IRC's
/// chathistory also asks around a point and between two, by id or by time.
public enum HistoryPage: Sendable, Equatable {
    /// The newest `limit` messages older than the id (`Int64.max`: the newest of all).
    case before(Int64)
    /// The oldest `limit` messages newer than the id.
    case after(Int64)
    /// The newest `limit` messages older than the point.
    case beforePoint(HistoryPoint)
    /// The oldest `limit` messages newer than the point.
    case afterPoint(HistoryPoint)
    /// The newest `limit` messages newer than the point.
    case latestAfter(HistoryPoint)
    /// About half the page before the point, the rest from it on.
    case around(HistoryPoint)
    /// At most `limit` messages strictly between two points, counted from the first towards the
    /// second (which may be earlier), oldest first.
    case between(HistoryPoint, HistoryPoint)
}

/// A point in a conversation's history: a message id, or a time (milliseconds since the epoch).
public enum HistoryPoint: Sendable, Equatable {
    case id(Int64)
    case time(Int64)
}

/// Where a message goes: a room, or a user (a direct message).
public enum MessageTarget: Sendable, Equatable {
    case room(String)
    case user(String)
}

/// What a `search` looks through besides the query.
public struct SearchRequest: Sendable, Equatable {
    public var query: String
    public var room: String?
    public var from: String?
    /// The direct messages with this user.
    public var with: String?
    public var limit: Int?

    public init(query: String, room: String? = nil, from: String? = nil, with: String? = nil, limit: Int? = nil) {
        self.query = query
        self.room = room
        self.from = from
        self.with = with
        self.limit = limit
    }
}

/// A request a client may send, decoded and type-checked but not yet judged by the server.
public enum ClientRequest: Sendable, Equatable {
    case login(name: String, password: String?, accountPassword: String?)
    case register(password: String)
    case join(room: String, replay: ReplayRequest)
    case leave(room: String)
    /// `clientTags`: IRCv3 client-only tags (`+name=value;...`, escaped) relayed live to clients
    /// that take tags, never stored; empty from the native protocol.
    /// `nonce`: the client's name for this message (PROTOCOL.md, Sending exactly once).
    case say(MessageTarget, text: String, kind: MessageKind, clientTags: String = "", nonce: String? = nil)
    /// IRC `TAGMSG`: client-only tags relayed to the target's members now, not stored.
    case tagMessage(MessageTarget, clientTags: String)
    case history(MessageTarget, page: HistoryPage, limit: Int?)
    case conversations
    case search(SearchRequest)
    case rooms
    case who(room: String)
    case ping
    case pong
    case quit(reason: String?)
    /// A room's read marker: read it (`nil`), or move it forward to a time (IRC's `MARKREAD`;
    /// the native protocol keeps markers itself, as members leave).
    case markRead(room: String, time: Int64?)
}

/// One decoded client frame: the request and the `id` to answer it with.
public struct ClientFrame: Sendable, Equatable {
    public var id: RequestID?
    public var request: ClientRequest

    public init(id: RequestID?, request: ClientRequest) {
        self.id = id
        self.request = request
    }

    /// Decodes one line (without its `\n`). Errors carry the code PROTOCOL.md assigns and, when
    /// the frame had a usable `id`, that id as `re`.
    public static func decode(line: UnsafeBufferPointer<UInt8>) throws(ProtocolError) -> ClientFrame {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            throw ProtocolError(.badRequest, "not valid JSON: \(error)")
        }
        guard case .object(let object) = value else {
            throw ProtocolError(.badRequest, "a frame must be a JSON object, got \(value.typeName)")
        }
        return try decode(object: object)
    }

    /// Decodes a frame already parsed as a JSON object.
    public static func decode(object: [String: JSONValue]) throws(ProtocolError) -> ClientFrame {
        var fields = Fields(object: object, re: nil)
        fields.re = try fields.requestID()
        guard let typeValue = object["type"] else {
            throw ProtocolError(.badRequest, "missing field 'type'", re: fields.re)
        }
        guard case .string(let type) = typeValue else {
            throw ProtocolError(.badRequest, "field 'type' must be a string", re: fields.re)
        }
        let request: ClientRequest
        switch type {
        case "login":
            request = .login(name: try fields.string("name"), password: try fields.optionalString("password"),
                             accountPassword: try fields.optionalString("account_password"))
        case "register":
            request = .register(password: try fields.string("password"))
        case "join":
            let room = try fields.string("room")
            let after = try fields.optionalInteger("after", minimum: 0)
            let history = try fields.optionalInteger("history", minimum: 0)
            switch (after, history) {
            case (.some, .some):
                throw ProtocolError(.badRequest, "a join takes 'after' or 'history', not both", re: fields.re)
            case (.some(let id), nil): request = .join(room: room, replay: .after(id))
            case (nil, .some(let count)): request = .join(room: room, replay: .latest(Int(clamping: count)))
            case (nil, nil): request = .join(room: room, replay: .missed)
            }
        case "leave":
            request = .leave(room: try fields.string("room"))
        case "say":
            let kind: MessageKind
            switch try fields.optionalString("kind") {
            case nil, "text": kind = .text
            case "action": kind = .action
            case .some(let other):
                throw ProtocolError(.badRequest, "field 'kind' must be \"text\" or \"action\", got \"\(other)\"", re: fields.re)
            }
            let nonce = try fields.optionalString("nonce")
            if let nonce, nonce.isEmpty || nonce.count > 64 {
                throw ProtocolError(.badRequest, "field 'nonce' must be 1 to 64 characters", re: fields.re)
            }
            request = .say(try fields.target(userKey: "to"), text: try fields.string("text"), kind: kind, nonce: nonce)
        case "history":
            let target = try fields.target(userKey: "with")
            let before = try fields.optionalInteger("before", minimum: 0)
            let after = try fields.optionalInteger("after", minimum: 0)
            let limit = try fields.optionalInteger("limit", minimum: 1)
            let page: HistoryPage
            switch (before, after) {
            case (.some, .some):
                throw ProtocolError(.badRequest, "a history request takes 'before' or 'after', not both", re: fields.re)
            case (.some(let id), nil): page = .before(id)
            case (nil, .some(let id)): page = .after(id)
            case (nil, nil): page = .before(.max)
            }
            request = .history(target, page: page, limit: limit.map { Int(clamping: $0) })
        case "conversations":
            request = .conversations
        case "search":
            let room = try fields.optionalString("room")
            let with = try fields.optionalString("with")
            if room != nil, with != nil {
                throw ProtocolError(.badRequest, "a search takes 'room' or 'with', not both", re: fields.re)
            }
            let limit = try fields.optionalInteger("limit", minimum: 1)
            request = .search(SearchRequest(query: try fields.string("query"), room: room, from: try fields.optionalString("from"),
                                            with: with, limit: limit.map { Int(clamping: $0) }))
        case "rooms":
            request = .rooms
        case "who":
            request = .who(room: try fields.string("room"))
        case "ping":
            request = .ping
        case "pong":
            request = .pong
        case "quit":
            request = .quit(reason: try fields.optionalString("reason"))
        default:
            throw ProtocolError(.unknownType, "unknown frame type \"\(type)\"", re: fields.re)
        }
        return ClientFrame(id: fields.re, request: request)
    }
}

/// Typed access to a frame's fields, each failure a `bad_request` naming the field.
private struct Fields {
    let object: [String: JSONValue]
    var re: RequestID?

    func requestID() throws(ProtocolError) -> RequestID? {
        switch object["id"] {
        case nil, .null?: return nil
        case .integer(let value)?: return .integer(value)
        case .string(let value)? where value.count <= RequestID.maximumStringLength: return .string(value)
        case .string?: throw ProtocolError(.badRequest, "field 'id' must be at most \(RequestID.maximumStringLength) characters")
        case .some(let other):
            throw ProtocolError(.badRequest, "field 'id' must be a string or an integer, got \(other.typeName)")
        }
    }

    func string(_ key: String) throws(ProtocolError) -> String {
        guard let value = object[key] else { throw ProtocolError(.badRequest, "missing field '\(key)'", re: re) }
        guard case .string(let text) = value else {
            throw ProtocolError(.badRequest, "field '\(key)' must be a string, got \(value.typeName)", re: re)
        }
        return text
    }

    /// `room` or the user field `userKey` (`to` in `say`, `with` in `history`), exactly one.
    func target(userKey: String) throws(ProtocolError) -> MessageTarget {
        let room = try optionalString("room")
        let user = try optionalString(userKey)
        switch (room, user) {
        case (let room?, nil): return .room(room)
        case (nil, let user?): return .user(user)
        case (.some, .some): throw ProtocolError(.badRequest, "'room' and '\(userKey)' together: a message goes to one of them", re: re)
        case (nil, nil): throw ProtocolError(.badRequest, "missing field 'room' (or '\(userKey)')", re: re)
        }
    }

    func optionalString(_ key: String) throws(ProtocolError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .some(let other):
            throw ProtocolError(.badRequest, "field '\(key)' must be a string, got \(other.typeName)", re: re)
        }
    }

    func optionalInteger(_ key: String, minimum: Int64) throws(ProtocolError) -> Int64? {
        switch object[key] {
        case nil, .null?: return nil
        case .some(let value):
            guard let number = value.integerValue else {
                throw ProtocolError(.badRequest, "field '\(key)' must be an integer, got \(value.typeName)", re: re)
            }
            guard number >= minimum else {
                throw ProtocolError(.badRequest, "field '\(key)' must be at least \(minimum)", re: re)
            }
            return number
        }
    }
}
