import ArgumentParser
import ChatProtocol

/// A time on the command line: an ISO 8601 date (`2026-11-21`, midnight UTC) or date-time
/// (`2026-11-21T09:30`, `...:00`, `...:00.125`, UTC unless it ends in `Z` or `±HH:MM`), or an
/// age such as `90m`, `36h`, `7d` (also `s` and `w`) counted back from now.
struct TimeArgument: ExpressibleByArgument, Sendable {
    /// Milliseconds since the Unix epoch.
    let milliseconds: Int64

    init?(argument: String) {
        guard let value = Self.parse(argument, now: Timestamp.now()) else { return nil }
        milliseconds = value
    }

    static let defaultCompletionKind = CompletionKind.default

    static func parse(_ text: String, now: Int64) -> Int64? {
        if let age = relativeAge(text) { return now - age }
        return absolute(Array(text.utf8))
    }

    private static func relativeAge(_ text: String) -> Int64? {
        guard let unit = text.last, let count = Int64(text.dropLast()), count >= 0, !text.dropLast().isEmpty,
              text.dropLast().allSatisfy(\.isNumber) else { return nil }
        let factor: Int64
        switch unit {
        case "s": factor = 1000
        case "m": factor = 60_000
        case "h": factor = 3_600_000
        case "d": factor = 86_400_000
        case "w": factor = 604_800_000
        default: return nil
        }
        let (product, overflow) = count.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }

    private static func absolute(_ bytes: [UInt8]) -> Int64? {
        var index = 0
        func number(_ digits: Int) -> Int64? {
            guard index + digits <= bytes.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<digits {
                let byte = bytes[index]
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
                index += 1
            }
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else { return nil }
        var milliseconds = Timestamp.days(year: year, month: month, day: day) * 86_400_000
        if index == bytes.count { return milliseconds }
        guard expect("T") || expect(" ") || expect("t"), let hour = number(2), expect(":"), let minute = number(2),
              hour < 24, minute < 60 else { return nil }
        milliseconds += (hour * 60 + minute) * 60_000
        if expect(":") {
            guard let second = number(2), second < 60 else { return nil }
            milliseconds += second * 1000
            if expect(".") {
                var scale: Int64 = 100
                var digits = 0
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                    milliseconds += Int64(bytes[index] - 0x30) * scale
                    scale /= 10
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { return nil }
            }
        }
        if index == bytes.count || expect("Z") || expect("z") {
            return index == bytes.count ? milliseconds : nil
        }
        let sign: Int64
        if expect("+") { sign = 1 } else if expect("-") { sign = -1 } else { return nil }
        guard let offsetHours = number(2), offsetHours < 24 else { return nil }
        _ = expect(":")
        guard let offsetMinutes = number(2), offsetMinutes < 60, index == bytes.count else { return nil }
        return milliseconds - sign * (offsetHours * 60 + offsetMinutes) * 60_000
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
