import ChatConfiguration
import NIOCore
import Synchronization

/// Limits on what an anonymous peer can make the server hold (docs/design.md, "Abuse limits"):
/// connections per IP address, connections still waiting to log in (per address and in all),
/// so that sockets that never log in cannot lock anyone else out.
package final class Admission: Sendable {
    package enum Refusal: Equatable {
        case addressFull(Int)
        case tooManyPendingFromAddress(Int)
        case tooManyPending

        package var message: String {
            switch self {
            case .addressFull(let limit): "too many connections from your address (\(limit)); try again later"
            case .tooManyPendingFromAddress(let limit): "too many connections from your address are not logged in (\(limit)); log in or close them"
            case .tooManyPending: "too many connections are waiting to log in; try again in a moment"
            }
        }
    }

    private struct Counts {
        var open = 0
        var pending = 0
    }

    private struct State {
        var byAddress: [String: Counts] = [:]
        var pending = 0
    }

    private let state = Mutex(State())
    private let limits: ServerConfiguration.Limits

    package init(limits: ServerConfiguration.Limits) {
        self.limits = limits
    }

    /// Counts a new connection from `address` as open and not logged in, or says why not.
    package func admit(_ address: String) -> Refusal? {
        state.withLock { state in
            var counts = state.byAddress[address] ?? Counts()
            if counts.open >= limits.maxConnectionsPerAddress { return .addressFull(limits.maxConnectionsPerAddress) }
            if counts.pending >= limits.maxPendingLoginsPerAddress { return .tooManyPendingFromAddress(limits.maxPendingLoginsPerAddress) }
            if state.pending >= limits.maxPendingLogins { return .tooManyPending }
            counts.open += 1
            counts.pending += 1
            state.pending += 1
            state.byAddress[address] = counts
            return nil
        }
    }

    /// The connection from `address` logged in: it no longer counts as waiting.
    package func loggedIn(_ address: String) {
        state.withLock { state in
            guard var counts = state.byAddress[address], counts.pending > 0 else { return }
            counts.pending -= 1
            state.pending -= 1
            state.byAddress[address] = counts
        }
    }

    /// The connection from `address` closed.
    package func release(_ address: String, wasPending: Bool) {
        state.withLock { state in
            guard var counts = state.byAddress[address] else { return }
            counts.open -= 1
            if wasPending, counts.pending > 0 {
                counts.pending -= 1
                state.pending -= 1
            }
            state.byAddress[address] = counts.open > 0 ? counts : nil
        }
    }
}

/// At most `limit` events per key in a fixed window (new names per address, rooms created per
/// user). Keys whose window has passed are swept once the table is large, so the table cannot
/// grow without bound.
package final class WindowedCounter: Sendable {
    private struct Window {
        var count: Int
        var start: NIODeadline
    }

    private let windows = Mutex<[String: Window]>([:])
    private let length: TimeAmount
    package static let sweepThreshold = 10_000

    package init(window length: TimeAmount) {
        self.length = length
    }

    /// Counts one event for `key`; false (and not counted) when `limit` were already counted in
    /// the current window.
    package func take(_ key: String, limit: Int, now: NIODeadline = .now()) -> Bool {
        windows.withLock { windows in
            if windows.count >= Self.sweepThreshold {
                windows = windows.filter { now - $0.value.start < length }
            }
            var window = windows[key].flatMap { now - $0.start < length ? $0 : nil } ?? Window(count: 0, start: now)
            guard window.count < limit else { return false }
            window.count += 1
            windows[key] = window
            return true
        }
    }
}
