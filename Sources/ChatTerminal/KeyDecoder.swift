/// A key press, decoded from what a terminal sends in raw mode.
public enum Key: Equatable, Sendable {
    case character(Character)
    case enter, backspace, delete, tab, escape
    case left, right, up, down, home, end
    /// Ctrl plus a letter (`a` for Ctrl+A); Ctrl+C is `.control("c")`.
    case control(Character)
}

/// Turns raw bytes into keys: UTF-8 characters, control keys and the common escape sequences
/// (VT100/xterm arrows, Home/End in both spellings, Delete). Keeps partial input between calls.
public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    public mutating func decode(_ bytes: [UInt8]) -> [Key] {
        pending += bytes
        var keys: [Key] = []
        var index = 0
        while index < pending.count {
            let byte = pending[index]
            switch byte {
            case 0x1B:
                guard let (key, length) = escapeSequence(at: index) else {
                    // An incomplete sequence waits for more bytes, unless it can never complete.
                    if pending.count - index < 6 { pending.removeFirst(index); return keys }
                    keys.append(.escape)
                    index += 1
                    continue
                }
                if let key { keys.append(key) }
                index += length
            case 0x0D, 0x0A:
                keys.append(.enter)
                // A CR LF pair is one Enter.
                if byte == 0x0D, index + 1 < pending.count, pending[index + 1] == 0x0A { index += 1 }
                index += 1
            case 0x7F, 0x08:
                keys.append(.backspace)
                index += 1
            case 0x09:
                keys.append(.tab)
                index += 1
            case 0x01...0x1A:
                keys.append(.control(Character(UnicodeScalar(byte + 0x60))))
                index += 1
            case 0x00, 0x1C...0x1F:
                index += 1
            default:
                let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                if index + length > pending.count {
                    pending.removeFirst(index)
                    return keys
                }
                let text = String(decoding: pending[index..<(index + length)], as: UTF8.self)
                keys.append(contentsOf: text.map(Key.character))
                index += length
            }
        }
        pending.removeAll()
        return keys
    }

    /// The key for an escape sequence at `start` and its length; nil when incomplete.
    /// A complete but unknown sequence is swallowed (key nil, its length).
    private func escapeSequence(at start: Int) -> (Key?, Int)? {
        guard start + 1 < pending.count else { return nil }
        let second = pending[start + 1]
        guard second == UInt8(ascii: "[") || second == UInt8(ascii: "O") else {
            return (.escape, 1)
        }
        var index = start + 2
        var parameter = 0
        while index < pending.count {
            let byte = pending[index]
            if byte >= 0x30 && byte <= 0x39 {
                parameter = parameter * 10 + Int(byte - 0x30)
                index += 1
                continue
            }
            if byte == UInt8(ascii: ";") {
                index += 1
                continue
            }
            let length = index - start + 1
            switch byte {
            case UInt8(ascii: "A"): return (.up, length)
            case UInt8(ascii: "B"): return (.down, length)
            case UInt8(ascii: "C"): return (.right, length)
            case UInt8(ascii: "D"): return (.left, length)
            case UInt8(ascii: "H"): return (.home, length)
            case UInt8(ascii: "F"): return (.end, length)
            case UInt8(ascii: "~"):
                switch parameter {
                case 1, 7: return (.home, length)
                case 4, 8: return (.end, length)
                case 3: return (.delete, length)
                default: return (nil, length)
                }
            default:
                return (nil, length)
            }
        }
        return nil
    }
}
