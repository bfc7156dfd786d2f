import ChatProtocol

/// Everything the server asks of its storage, whichever it is: SQLite (`ChatDatabase`, one
/// process) or PostgreSQL (`PostgresStore`, any number of nodes on one database).
///
/// Writes complete through a callback, on the store's own thread: hand work elsewhere quickly.
/// Reads block their caller and belong on a thread pool, never on an event loop.
public protocol ChatStore: AnyObject, Sendable {
    // MARK: Writes

    /// Stores a room message (`completion` runs once it is committed). A draft whose nonce the
    /// author used in the last 24 hours stores nothing and completes with that message
    /// (`CommittedMessage.original`); in another room it fails with `StorageError.nonceReused`.
    /// `StorageError.unknownOutcome` when the database did not say whether it committed.
    func appendMessage(_ draft: MessageDraft, completion: @escaping @Sendable (Result<CommittedMessage, any Error>) -> Void)
    /// Stores a direct message; fails with `StorageError.noSuchUser` for an unknown recipient.
    /// `nonce` as for room messages.
    func appendDirectMessage(from sender: UserRecord, to recipientName: String, kind: MessageKind, text: String, nonce: String?,
                             completion: @escaping @Sendable (Result<CommittedDirectMessage, any Error>) -> Void)
    /// Records a login by `name` (creating the user on first sight) and returns it as first spelled.
    func recordLogin(name: String, completion: @escaping @Sendable (Result<UserRecord, any Error>) -> Void)
    /// Records that the user was last seen now.
    func recordLogout(userID: Int64, completion: @escaping @Sendable (Result<Void, any Error>) -> Void)
    /// Makes the existing user an account; `StorageError.accountExists` when it is one already.
    func registerAccount(userID: Int64, password: PasswordHash, completion: @escaping @Sendable (Result<Void, any Error>) -> Void)
    /// Replaces the account's password hash `old` by `new` (the same password re-made at a higher
    /// cost after a good login); false, changing nothing, when the hash is no longer `old` (the
    /// password was changed meanwhile).
    func upgradePassword(userID: Int64, replacing old: PasswordHash, with new: PasswordHash,
                         completion: @escaping @Sendable (Result<Bool, any Error>) -> Void)
    /// The room named `name`, created when missing.
    func ensureRoom(named name: String, completion: @escaping @Sendable (Result<RoomRecord, any Error>) -> Void)
    /// Moves the read marker forward (never back).
    func setReadMarker(userID: Int64, roomID: Int64, lastID: Int64, completion: @escaping @Sendable (Result<Void, any Error>) -> Void)
    /// Deletes the messages older than `before` (of one room, or all); returns how many.
    func prune(before: Int64, room: String?, dryRun: Bool) throws -> Int
    /// Returns once everything handed to the writer before this call is committed.
    func waitForPendingWrites() async throws
    /// Finishes the queued writes, then stops accepting new ones.
    func close()

    // MARK: Reads

    /// The newest message id there is (0 when none).
    func newestMessageID() throws -> Int64
    func user(named name: String) throws -> UserRecord?
    func room(named name: String) throws -> RoomRecord?
    /// How many rooms exist (direct conversations not counted).
    func roomCount() throws -> Int
    /// Every room with its message count, by name.
    func roomsWithMessageCounts() throws -> [(room: RoomRecord, messages: Int)]
    /// Whether a user with this name exists, and its account if it is one.
    func loginLookup(name: String) throws -> (isKnown: Bool, account: AccountRecord?)
    func readMarker(userID: Int64, roomID: Int64) throws -> Int64?
    /// The time of the newest message the read marker covers (IRC's `MARKREAD`).
    func readMarkerTime(userID: Int64, roomID: Int64) throws -> Int64?
    /// The newest `limit` messages of a room with an id in `(after, upTo]`, oldest first.
    func newestMessages(room: RoomRecord, after: Int64, upTo: Int64, limit: Int) throws -> HistorySlice
    /// The oldest `limit` messages of a room with an id in `(after, upTo]`, oldest first.
    func oldestMessages(room: RoomRecord, after: Int64, upTo: Int64, limit: Int) throws -> HistorySlice
    /// The id of the first message at or after the point (one past the newest when none is).
    func firstID(atOrAfter point: HistoryPoint) throws -> Int64
    /// The conversation between two users, if either ever wrote to the other.
    func conversation(between first: Int64, and second: Int64) throws -> RoomRecord?
    /// The users `userID` has direct messages with, and the newest message id of each, newest first.
    func conversations(of userID: Int64) throws -> [(with: String, lastID: Int64, lastTimestamp: Int64)]
    /// Full-text search, newest first; a query the store cannot parse is `StorageError.invalidSearchQuery`.
    func search(_ query: String, filter: MessageFilter, limit: Int?) throws -> [SearchHit]

    // MARK: Operations

    /// Calls `observe` with the number of jobs and the seconds of every group commit (metrics).
    func observeCommits(_ observe: @escaping @Sendable (_ jobs: Int, _ seconds: Double) -> Void)
    /// Writes waiting for the next group commit.
    var writerQueueDepth: Int { get }
    /// What the server logs about where the history is kept.
    var location: String { get }
}

/// A store that several server processes share (PostgreSQL): each node hears every commit of
/// every node, in id order, and live user names are leased across nodes.
public protocol SharedChatStore: ChatStore {
    /// Calls `deliver` with every message committed after `after`, by any node, in id order and
    /// without gaps, until the task is cancelled; reconnects by itself. An `appendMessage` or
    /// `appendDirectMessage` completion of this process runs before its message is delivered
    /// here, so the server can recognize its own sender's message (to acknowledge it).
    func followCommits(after: Int64, onListening: @escaping @Sendable () -> Void,
                       _ deliver: @escaping @Sendable ([FeedMessage]) -> Void) async
    /// Leases a live name across nodes: `shared` for an account (its sessions on several nodes
    /// may hold it), exclusive for a guest. False when another node holds it incompatibly.
    func leaseName(_ key: String, shared: Bool) async throws -> Bool
    /// Gives back one lease taken with the same `shared` (leases are counted per node).
    func releaseName(_ key: String, shared: Bool) async

    /// Tells the other nodes that a user arrived in a room on this node (its first session
    /// there) or left it (its last). Announcements go out in the order made.
    func announcePresence(_ change: PresenceChange)
    /// Calls `deliver` with who is in which room on the other nodes: first everything (a
    /// snapshot, again after every reconnection), then each change, until cancelled.
    func followPresence(onListening: @escaping @Sendable () -> Void, _ deliver: @escaping @Sendable (PresenceEvent) -> Void) async
}

/// A user's arrival in a room or departure from it, on one node.
public struct PresenceChange: Sendable, Equatable {
    public var node: Int
    public var room: String
    public var name: String
    public var joined: Bool
    /// A departure because the connection ended (IRC `QUIT`), with its reason.
    public var isQuit: Bool
    public var reason: String?

    public init(node: Int = 0, room: String, name: String, joined: Bool, isQuit: Bool = false, reason: String? = nil) {
        self.node = node
        self.room = room
        self.name = name
        self.joined = joined
        self.isQuit = isQuit
        self.reason = reason
    }
}

/// What `followPresence` reports.
public enum PresenceEvent: Sendable, Equatable {
    /// Every user in every room on the other nodes, replacing what was known.
    case snapshot([PresenceChange])
    case change(PresenceChange)
}

/// A committed message as every node hears it.
public struct FeedMessage: Sendable, Equatable {
    /// A room message (`room` set), or a direct one (`to` set, `room` empty).
    public var message: ChatMessage
    /// Whether its author is an account (IRC's `account` tag).
    public var fromAccount: Bool

    public init(message: ChatMessage, fromAccount: Bool) {
        self.message = message
        self.fromAccount = fromAccount
    }
}

extension ChatStore {
    /// Stores a direct message without a nonce.
    public func appendDirectMessage(from sender: UserRecord, to recipientName: String, kind: MessageKind, text: String,
                                    completion: @escaping @Sendable (Result<CommittedDirectMessage, any Error>) -> Void) {
        appendDirectMessage(from: sender, to: recipientName, kind: kind, text: text, nonce: nil, completion: completion)
    }

    /// Returns the room named `name`, creating it when missing.
    public func ensureRoom(named name: String) async throws -> RoomRecord {
        try await withCheckedThrowingContinuation { continuation in
            ensureRoom(named: name) { continuation.resume(with: $0) }
        }
    }

    public func newestMessages(room: RoomRecord, after: Int64 = 0, upTo: Int64 = .max, limit: Int) throws -> HistorySlice {
        try newestMessages(room: room, after: after, upTo: upTo, limit: limit)
    }

    public func prune(before: Int64) throws -> Int {
        try prune(before: before, room: nil, dryRun: false)
    }

    /// The id of the last message at or before the point (0 when none is).
    public func lastID(atOrBefore point: HistoryPoint) throws -> Int64 {
        switch point {
        case .id(let id): return id
        case .time(let time): return try firstID(atOrAfter: .time(time + 1)) - 1
        }
    }

    /// A page of the `history` request: before or after an id or a point, in stored history as
    /// a whole (PROTOCOL.md: an `after` page does not stop where the member's live delivery began).
    public func historyPage(room: RoomRecord, page: HistoryPage, limit: Int) throws -> HistorySlice {
        let afterLimit = Int64.max
        switch page {
        case .before(let id):
            return try newestMessages(room: room, after: 0, upTo: id == .max ? .max : id - 1, limit: limit)
        case .after(let id):
            return try oldestMessages(room: room, after: id, upTo: afterLimit, limit: limit)
        case .beforePoint(let point):
            return try newestMessages(room: room, after: 0, upTo: try firstID(atOrAfter: point) - 1, limit: limit)
        case .afterPoint(let point):
            return try oldestMessages(room: room, after: try lastID(atOrBefore: point), upTo: afterLimit, limit: limit)
        case .latestAfter(let point):
            return try newestMessages(room: room, after: try lastID(atOrBefore: point), upTo: afterLimit, limit: limit)
        case .around(let point):
            let pivot = try firstID(atOrAfter: point)
            let older = try newestMessages(room: room, after: 0, upTo: pivot - 1, limit: limit / 2)
            let newer = try oldestMessages(room: room, after: pivot - 1, upTo: afterLimit, limit: limit - older.messages.count)
            return HistorySlice(messages: older.messages + newer.messages, more: older.more || newer.more)
        case .between(let first, let second):
            // Counted from the first point towards the second, either way in time (IRCv3
            // chathistory); oldest first either way.
            let low = try lastID(atOrBefore: first), high = try firstID(atOrAfter: second)
            if low < high {
                return try oldestMessages(room: room, after: low, upTo: min(high - 1, afterLimit), limit: limit)
            }
            let newer = try firstID(atOrAfter: first), older = try lastID(atOrBefore: second)
            return try newestMessages(room: room, after: older, upTo: min(newer - 1, afterLimit), limit: limit)
        }
    }

    /// A page of the direct messages between `user` and `other` (`history` with `with`).
    public func directHistoryPage(between user: UserRecord, and other: UserRecord, page: HistoryPage, limit: Int) throws -> HistorySlice {
        guard let room = try conversation(between: user.id, and: other.id) else { return HistorySlice(messages: [], more: false) }
        var slice = try historyPage(room: room, page: page, limit: limit)
        let userKey = Names.userKey(user.name)
        for index in slice.messages.indices {
            let fromUser = Names.userKey(slice.messages[index].from) == userKey
            slice.messages[index].to = fromUser ? other.name : user.name
            slice.messages[index].room = ""
        }
        return slice
    }
}

/// What `chat-admin` asks of a store besides the server's reads: transcripts, statistics,
/// accounts and maintenance. SQLite and PostgreSQL both answer it.
public protocol AdminStore: ChatStore {
    /// Calls `body` with every message matching `filter`, in id order, with flat memory.
    func forEachMessage(matching filter: MessageFilter, _ body: (ChatMessage) throws -> Void) throws
    func countMessages(matching filter: MessageFilter) throws -> Int
    /// The hidden room names of every conversation, oldest first (for grouped exports).
    func conversationRoomNames() throws -> [String]
    func statistics() throws -> Statistics
    func users() throws -> [UserSummary]
    func account(named name: String) throws -> AccountRecord?
    func addAccount(name: String, password: PasswordHash) throws -> UserRecord
    func changePassword(name: String, password: PasswordHash) throws -> Bool
    func removeAccount(name: String) throws -> Bool
    func accounts() throws -> [AccountSummary]
    /// A consistent copy at `path` (which must not exist), taken while the server runs.
    func backup(to path: String) throws
    func deleteMessages(ids: [Int64], dryRun: Bool) throws -> [Int64]
    func forgetUser(named name: String, dryRun: Bool) throws -> ForgetResult
    /// Problems found by the store's own checks; empty when sound.
    func integrityProblems() throws -> [String]
    /// The migrations recorded in the store, in order.
    func appliedMigrations() throws -> [String]
}

extension ChatDatabase: AdminStore {}
