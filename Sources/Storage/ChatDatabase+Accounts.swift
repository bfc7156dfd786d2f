import ChatProtocol
import Foundation
import GRDB

/// A registered name and its password hash.
public struct AccountRecord: Sendable, Equatable {
    public var user: UserRecord
    public var password: PasswordHash

    public init(user: UserRecord, password: PasswordHash) {
        self.user = user
        self.password = password
    }
}

/// An account as `chat-admin account list` shows it. Times are milliseconds since the epoch.
public struct AccountSummary: Sendable, Equatable {
    public var name: String
    public var createdAt: Int64
    public var lastSeen: Int64

    public init(name: String, createdAt: Int64, lastSeen: Int64) {
        self.name = name
        self.createdAt = createdAt
        self.lastSeen = lastSeen
    }
}

extension ChatDatabase {
    /// The account registered under `name` (case-insensitive), if there is one.
    public func account(named name: String) throws -> AccountRecord? {
        try reader.read { db in try Self.fetchAccount(named: name, db) }
    }

    static func fetchAccount(named name: String, _ db: Database) throws -> AccountRecord? {
        try Row.fetchOne(db, sql: """
            SELECT u.id, u.name, a.salt, a.hash, a.cost, a.block_size, a.parallelism
            FROM users u JOIN accounts a ON a.user_id = u.id WHERE u.name = ?
            """, arguments: [name]).map { row in
            AccountRecord(
                user: UserRecord(id: row[0], name: row[1]),
                password: PasswordHash(salt: [UInt8](row[2] as Data), hash: [UInt8](row[3] as Data),
                                       cost: row[4], blockSize: row[5], parallelism: row[6]))
        }
    }

    /// Makes the existing user `userID` an account (the protocol's `register`) in the next group
    /// commit; fails with `StorageError.accountExists` when it already is one.
    public func registerAccount(userID: Int64, password: PasswordHash, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        committer.submit({ db, timestamp in
            try Self.insertAccount(userID: userID, password: password, timestamp: timestamp, db)
        }, completion: completion)
    }

    public func upgradePassword(userID: Int64, replacing old: PasswordHash, with new: PasswordHash,
                                completion: @escaping @Sendable (Result<Bool, any Error>) -> Void) {
        committer.submit({ db, timestamp in
            try db.execute(sql: """
                UPDATE accounts SET salt = ?, hash = ?, cost = ?, block_size = ?, parallelism = ?, updated_at = ?
                WHERE user_id = ? AND salt = ? AND hash = ?
                """, arguments: [Data(new.salt), Data(new.hash), new.cost, new.blockSize, new.parallelism, timestamp,
                                 userID, Data(old.salt), Data(old.hash)])
            return db.changesCount > 0
        }, completion: completion)
    }

    /// Creates the account `name` (and the user, when the name was never seen). Fails with
    /// `StorageError.accountExists` when the name is an account already.
    @discardableResult
    public func addAccount(name: String, password: PasswordHash) throws -> UserRecord {
        try writer.write { db in
            let timestamp = Timestamp.now()
            let user = try Row.fetchOne(db, sql: "SELECT id, name FROM users WHERE name = ?", arguments: [name])
                .map { UserRecord(id: $0[0], name: $0[1]) }
                ?? {
                    try db.execute(sql: "INSERT INTO users (name, first_seen, last_seen) VALUES (?, ?, ?)",
                                   arguments: [name, timestamp, timestamp])
                    return UserRecord(id: db.lastInsertedRowID, name: name)
                }()
            try Self.insertAccount(userID: user.id, password: password, timestamp: timestamp, db)
            return user
        }
    }

    /// Sets a new password for the account `name`; false when `name` is not an account.
    public func changePassword(name: String, password: PasswordHash) throws -> Bool {
        try writer.write { db in
            guard let account = try Self.fetchAccount(named: name, db) else { return false }
            try Self.updateAccount(userID: account.user.id, password: password, timestamp: Timestamp.now(), db)
            return true
        }
    }

    /// Makes `name` a guest name again (its messages stay); false when it was not an account.
    public func removeAccount(name: String) throws -> Bool {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM accounts WHERE user_id = (SELECT id FROM users WHERE name = ?)", arguments: [name])
            return db.changesCount > 0
        }
    }

    /// Every account, by name.
    public func accounts() throws -> [AccountSummary] {
        try reader.read { db in
            try Row.fetchAll(db, sql: """
                SELECT u.name, a.created_at, u.last_seen FROM accounts a JOIN users u ON u.id = a.user_id
                ORDER BY u.name COLLATE NOCASE
                """).map { AccountSummary(name: $0[0], createdAt: $0[1], lastSeen: $0[2]) }
        }
    }

    private static func insertAccount(userID: Int64, password: PasswordHash, timestamp: Int64, _ db: Database) throws {
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM accounts WHERE user_id = ?)", arguments: [userID]) == true {
            let name = try String.fetchOne(db, sql: "SELECT name FROM users WHERE id = ?", arguments: [userID]) ?? "?"
            throw StorageError.accountExists(name: name)
        }
        try db.execute(sql: """
            INSERT INTO accounts (user_id, algorithm, salt, hash, cost, block_size, parallelism, created_at, updated_at)
            VALUES (?, 'scrypt', ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [userID, Data(password.salt), Data(password.hash), password.cost, password.blockSize,
                             password.parallelism, timestamp, timestamp])
    }

    private static func updateAccount(userID: Int64, password: PasswordHash, timestamp: Int64, _ db: Database) throws {
        try db.execute(sql: """
            UPDATE accounts SET salt = ?, hash = ?, cost = ?, block_size = ?, parallelism = ?, updated_at = ?
            WHERE user_id = ?
            """, arguments: [Data(password.salt), Data(password.hash), password.cost, password.blockSize,
                             password.parallelism, timestamp, userID])
    }
}
