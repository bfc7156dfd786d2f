import NIOCore

/// UTC times as the protocol writes them: RFC 3339 with milliseconds, `2026-11-21T09:30:00.125Z`.
/// Storage keeps milliseconds since the Unix epoch; these convert without Foundation.
public enum Timestamp {
    /// Milliseconds since the Unix epoch, now.
    public static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }

    /// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    @usableFromInline
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Days since 1970-01-01 of a civil date.
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let adjustedYear = month <= 2 ? year - 1 : year
        let era = (adjustedYear >= 0 ? adjustedYear : adjustedYear - 399) / 400
        let yearOfEra = adjustedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Writes `milliseconds` as RFC 3339 UTC with milliseconds.
    @inlinable
    public static func write(_ milliseconds: Int64, into buffer: inout ByteBuffer) {
        let (days, millisecondOfDay) = floorDivide(milliseconds, 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let secondOfDay = millisecondOfDay / 1000
        writeDigits(year, count: 4, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(month, count: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(day, count: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "T"))
        writeDigits(secondOfDay / 3600, count: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(secondOfDay / 60 % 60, count: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(secondOfDay % 60, count: 2, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeDigits(millisecondOfDay % 1000, count: 3, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "Z"))
    }

    /// `milliseconds` as RFC 3339 UTC with milliseconds.
    public static func string(_ milliseconds: Int64) -> String {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(24)
        write(milliseconds, into: &buffer)
        return String(buffer: buffer)
    }

    @usableFromInline
    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    @usableFromInline
    static func writeDigits(_ value: Int64, count: Int, into buffer: inout ByteBuffer) {
        var divisor: Int64 = 1
        for _ in 1..<count { divisor *= 10 }
        var remaining = value
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(remaining / divisor % 10))
            remaining %= divisor
            divisor /= 10
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Timestamp {
    /// Milliseconds since the epoch of an RFC 3339 UTC time as the server writes it
    /// (`2026-11-21T09:30:00.125Z`), or nil.
    public static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count == 24, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "."),
              bytes[23] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19), let millisecond = number(20..<23) else { return nil }
        return days(year: year, month: month, day: day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millisecond
    }
}
