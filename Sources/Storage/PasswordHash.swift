import Crypto
import CryptoExtras
import Foundation

/// A password as it is kept: a scrypt hash with its own salt and the cost it was made with, so
/// the cost can be raised later without invalidating older hashes. The password itself is never
/// stored, logged or kept longer than the call that hashes or checks it.
public struct PasswordHash: Sendable, Equatable {
    public var salt: [UInt8]
    public var hash: [UInt8]
    /// scrypt's N (a power of two), r and p.
    public var cost: Int
    public var blockSize: Int
    public var parallelism: Int

    /// The default cost of new hashes, as log2 of scrypt's N (`accounts.scryptLogN`): N = 2^13,
    /// r = 8, p = 1 (8 MiB and ~17 ms per hash in a release build on this project's 2-core
    /// machines; 2^14 took 40 ms, and 20 logins/s then did not fit in the CPU a busy server
    /// leaves idle: docs/performance.md). OWASP advises N = 2^17 where the hardware allows;
    /// raise it where there are more cores or fewer logins: stored hashes are re-made at the new
    /// cost on their account's next successful login.
    public static let defaultLogN = 13
    /// The range `accounts.scryptLogN` accepts: 2^10 (1 MiB) to 2^20 (1 GiB per hash).
    public static let logNRange = 10...20
    static let blockSize = 8
    static let parallelism = 1
    static let saltBytes = 16
    static let hashBytes = 32

    public init(salt: [UInt8], hash: [UInt8], cost: Int, blockSize: Int, parallelism: Int) {
        self.salt = salt
        self.hash = hash
        self.cost = cost
        self.blockSize = blockSize
        self.parallelism = parallelism
    }

    /// Hashes `password` with a fresh random salt at N = 2^`logN`. CPU- and memory-heavy: never
    /// call it on an event loop.
    public static func make(password: String, logN: Int = defaultLogN) throws -> PasswordHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<saltBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let cost = 1 << logN
        let hash = try derive(password: password, salt: salt, cost: cost, blockSize: blockSize, parallelism: parallelism)
        return PasswordHash(salt: salt, hash: hash, cost: cost, blockSize: blockSize, parallelism: parallelism)
    }

    /// Whether `password` is the one hashed, compared in constant time. As heavy as `make`.
    public func verify(password: String) -> Bool {
        guard let derived = try? Self.derive(password: password, salt: salt, cost: cost, blockSize: blockSize, parallelism: parallelism) else {
            return false
        }
        return constantTimeEquals(derived, hash)
    }

    /// Whether this hash was made at a lower cost than new ones get at N = 2^`logN` (it is then
    /// re-made on the next successful login).
    public func isBelow(logN: Int) -> Bool {
        cost < 1 << logN || blockSize < Self.blockSize || parallelism < Self.parallelism
    }

    static func derive(password: String, salt: [UInt8], cost: Int, blockSize: Int, parallelism: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: hashBytes,
                                           rounds: cost, blockSize: blockSize, parallelism: parallelism)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
    for index in 0..<max(lhs.count, rhs.count) {
        difference |= (index < lhs.count ? lhs[index] : 0) ^ (index < rhs.count ? rhs[index] : 0)
    }
    return difference == 0
}
