import NIOCore
import Synchronization

/// Slows down password guessing (docs/design.md, "Accounts"):
/// - per address: after `failuresPerAddress` wrong passwords (the server's or an account's)
///   within `window`, further logins needing a password from that address are refused without
///   checking until the window has passed;
/// - per account: after `failuresPerAccount` wrong passwords within `window` from anywhere, every
///   answer for that account waits `accountDelay`. Slower, never locked: an attacker elsewhere
///   cannot lock the owner out.
/// Touched once per account login, so a lock is simpler than an actor hop and costs nothing.
package final class LoginThrottle: Sendable {
    package static let window = TimeAmount.seconds(60)
    package static let failuresPerAddress = 5
    package static let failuresPerAccount = 10
    package static let accountDelay = TimeAmount.seconds(1)
    /// Entries kept before expired ones are swept, bounding what guessing can make us hold.
    package static let sweepThreshold = 10_000

    private struct Failures {
        var count: Int
        var windowStart: NIODeadline
    }

    private struct State {
        var byAddress: [String: Failures] = [:]
        var byAccount: [String: Failures] = [:]
    }

    private let state = Mutex(State())

    /// Seconds left before `address` may try again, or nil when it may try now.
    package func refusal(address: String, now: NIODeadline = .now()) -> Int? {
        state.withLock { state in
            guard let failures = state.byAddress[address], now - failures.windowStart < Self.window,
                  failures.count >= Self.failuresPerAddress else { return nil }
            return Int(((Self.window - (now - failures.windowStart)).nanoseconds + 999_999_999) / 1_000_000_000)
        }
    }

    /// How long to hold the answer to a login for `account`.
    package func delay(account: String, now: NIODeadline = .now()) -> TimeAmount {
        state.withLock { state in
            guard let failures = state.byAccount[account.lowercased()], now - failures.windowStart < Self.window,
                  failures.count >= Self.failuresPerAccount else { return .zero }
            return Self.accountDelay
        }
    }

    /// Counts a failed password (the server's, or an account's) from `address`; returns how many
    /// failures the address has in the current window, so callers can stop logging each one.
    @discardableResult
    package func recordFailure(address: String, account: String?, now: NIODeadline = .now()) -> Int {
        state.withLock { state in
            if let account { _ = Self.count(&state.byAccount, account.lowercased(), now: now) }
            return Self.count(&state.byAddress, address, now: now)
        }
    }

    private static func count(_ table: inout [String: Failures], _ key: String, now: NIODeadline) -> Int {
        if table.count >= sweepThreshold {
            table = table.filter { now - $0.value.windowStart < window }
        }
        if var failures = table[key], now - failures.windowStart < window {
            failures.count += 1
            table[key] = failures
            return failures.count
        }
        table[key] = Failures(count: 1, windowStart: now)
        return 1
    }
}
