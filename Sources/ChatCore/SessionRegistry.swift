import ChatProtocol
import Storage
import Synchronization

/// Who is online: live names (unique case-insensitively, except that an account may hold
/// several sessions), their sessions (for direct messages) and the number of open connections.
/// Touched at connect, login, disconnect and per direct message, so a lock is cheaper than an
/// actor hop.
package final class SessionRegistry: Sendable {
    /// The sessions holding one name: a guest name has one, an account any number.
    private struct Holder {
        /// The name as its first session spelled it.
        var name: String
        var isAccount: Bool
        var sessions: [Int: Session]
    }

    private let names = Mutex<[String: Holder]>([:])
    private let connections = Atomic<Int>(0)
    private let nextSessionID = Atomic<Int>(1)

    /// A new process-unique session id.
    package func makeSessionID() -> Int {
        nextSessionID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Counts a new connection; false (and not counted) when `limit` are already open.
    package func admitConnection(limit: Int) -> Bool {
        while true {
            let current = connections.load(ordering: .relaxed)
            if current >= limit { return false }
            if connections.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    package func releaseConnection() {
        connections.wrappingSubtract(1, ordering: .relaxed)
    }

    package var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Reserves `name` for `session`. A guest name is refused while any other session holds the
    /// name; an account's sessions share it, but never with a guest.
    package func claim(name: String, session: Session, asAccount: Bool) -> Bool {
        let key = Names.userKey(name)
        return names.withLock { names in
            if var holder = names[key] {
                let others = holder.sessions.keys.contains { $0 != session.id }
                guard !others || (holder.isAccount && asAccount) else { return false }
                holder.isAccount = holder.isAccount || asAccount
                holder.sessions[session.id] = session
                names[key] = holder
            } else {
                names[key] = Holder(name: name, isAccount: asAccount, sessions: [session.id: session])
            }
            return true
        }
    }

    /// The guest name `name` held by session `sessionID` has become an account.
    package func promoteToAccount(name: String, sessionID: Int) {
        let key = Names.userKey(name)
        names.withLock { names in
            if names[key]?.sessions[sessionID] != nil { names[key]?.isAccount = true }
        }
    }

    /// Frees `name` for `sessionID` (the name itself once no session holds it).
    package func release(name: String, sessionID: Int) {
        let key = Names.userKey(name)
        names.withLock { names in
            guard var holder = names[key] else { return }
            holder.sessions[sessionID] = nil
            names[key] = holder.sessions.isEmpty ? nil : holder
        }
    }

    /// Logged-in sessions (for metrics).
    package var sessionCount: Int {
        names.withLock { names in names.values.reduce(0) { $0 + $1.sessions.count } }
    }

    /// Who holds `name` now, as they spell it, and whether it is an account.
    package func holder(of name: String) -> (name: String, isAccount: Bool)? {
        let key = Names.userKey(name)
        return names.withLock { names in names[key].map { ($0.name, $0.isAccount) } }
    }

    /// Every session holding one of `names`, each once.
    package func sessions(holding users: [String]) -> [Session] {
        let keys = Set(users.map(Names.userKey))
        return names.withLock { names in keys.flatMap { names[$0].map { Array($0.sessions.values) } ?? [] } }
    }
}

/// The rooms the database knows, by canonical name: rooms are never removed while the
/// server runs, so once looked up a record is kept.
package final class RoomCatalog: Sendable {
    private let records = Mutex<[String: RoomRecord]>([:])

    package func record(named name: String) -> RoomRecord? {
        records.withLock { $0[name] }
    }

    package func insert(_ record: RoomRecord) {
        records.withLock { $0[record.name] = record }
    }
}
