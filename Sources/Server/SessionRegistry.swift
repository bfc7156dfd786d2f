import ChatProtocol
import Synchronization

/// Who is online: live names (unique case-insensitively) and the number of open connections.
/// Touched at connect, login and disconnect only, so a lock is cheaper than an actor hop.
final class SessionRegistry: Sendable {
    private let names = Mutex<[String: Int]>([:])
    private let connections = Atomic<Int>(0)
    private let nextSessionID = Atomic<Int>(1)

    /// A new process-unique session id.
    func makeSessionID() -> Int {
        nextSessionID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Counts a new connection; false (and not counted) when `limit` are already open.
    func admitConnection(limit: Int) -> Bool {
        while true {
            let current = connections.load(ordering: .relaxed)
            if current >= limit { return false }
            if connections.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    func releaseConnection() {
        connections.wrappingSubtract(1, ordering: .relaxed)
    }

    var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Reserves `name` for `sessionID`; false when another live session has it.
    func claim(name: String, sessionID: Int) -> Bool {
        let key = Names.userKey(name)
        return names.withLock { names in
            if let owner = names[key], owner != sessionID { return false }
            names[key] = sessionID
            return true
        }
    }

    /// Frees `name` if `sessionID` holds it.
    func release(name: String, sessionID: Int) {
        let key = Names.userKey(name)
        names.withLock { names in
            if names[key] == sessionID { names[key] = nil }
        }
    }
}

/// The rooms the database knows, by canonical name: rooms are never removed while the
/// server runs, so once looked up a record is kept.
final class RoomCatalog: Sendable {
    private let records = Mutex<[String: RoomRecord]>([:])

    func record(named name: String) -> RoomRecord? {
        records.withLock { $0[name] }
    }

    func insert(_ record: RoomRecord) {
        records.withLock { $0[record.name] = record }
    }
}

import Storage
