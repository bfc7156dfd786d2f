import ArgumentParser
import Foundation

/// A time on the command line: an ISO 8601 date (`2026-11-21`, midnight UTC) or date-time
/// (`2026-11-21T09:30`, `...:00`, `...:00.125`, UTC unless it ends in `Z` or `±HH:MM`), or an
/// age such as `90m`, `36h`, `7d` (also `s` and `w`) counted back from now.
struct TimeArgument: ExpressibleByArgument, Sendable {
    /// Milliseconds since the Unix epoch.
    let milliseconds: Int64

    init?(argument: String) {
        guard let value = Self.parse(argument, now: Date()) else { return nil }
        milliseconds = value
    }

    static let defaultCompletionKind = CompletionKind.default

    static func parse(_ text: String, now: Date) -> Int64? {
        if let age = relativeAge(text) { return Int64((now.timeIntervalSince1970 * 1000).rounded(.down)) - age }
        return absolute(text)
    }

    private static func relativeAge(_ text: String) -> Int64? {
        guard let match = text.wholeMatch(of: /([0-9]{1,15})([smhdw])/) else { return nil }
        let factors: [Substring: Int64] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000]
        guard let count = Int64(match.1), let factor = factors[match.2] else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }

    /// The shape is checked here (Foundation's parser is lenient: it takes `2026-02-30` as March
    /// 2nd and ignores what follows a date); the instant is Foundation's `ISO8601FormatStyle`'s.
    private static func absolute(_ text: String) -> Int64? {
        let shape = /([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?/
        guard let match = text.wholeMatch(of: shape),
              let year = Int(match.1), let month = Int(match.2), let day = Int(match.3),
              DateComponents(calendar: Calendar(identifier: .gregorian), timeZone: .gmt, year: year, month: month, day: day).isValidDate
        else { return nil }
        var normalized = "\(match.1)-\(match.2)-\(match.3)T"
        if let hour = match.4, let minute = match.5 {
            guard let hours = Int(hour), hours < 24, let minutes = Int(minute), minutes < 60,
                  (match.6.flatMap { Int($0) } ?? 0) < 60 else { return nil }
            if let zone = match.8, zone.count > 1 {
                let digits = zone.dropFirst().filter(\.isNumber)
                guard let offsetHours = Int(digits.prefix(2)), offsetHours < 24, let offsetMinutes = Int(digits.suffix(2)), offsetMinutes < 60 else { return nil }
            }
            normalized += "\(hour):\(minute):\(match.6 ?? "00")\(match.7 ?? "")\(match.8.map { $0 == "z" ? "Z" : String($0) } ?? "Z")"
        } else {
            normalized += "00:00:00Z"
        }
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: match.7 != nil, timeZone: .gmt)
        guard let date = try? style.parse(normalized) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
