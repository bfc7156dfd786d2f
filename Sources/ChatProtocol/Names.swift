/// The naming rules of the protocol, shared by every adapter and tool.
public enum Names {
    /// The longest room name.
    public static let maximumRoomLength = 32

    /// Whether `name` is a valid user name of at most `maximumLength` characters: ASCII letters,
    /// digits, `_` and `-`, not starting with `-`.
    public static func isValidUserName(_ name: String, maximumLength: Int) -> Bool {
        let utf8 = name.utf8
        guard !utf8.isEmpty, utf8.count <= maximumLength, utf8.first != UInt8(ascii: "-") else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"): true
            default: false
            }
        }
    }

    /// The key under which a user name is unique: names are case-insensitive.
    public static func userKey(_ name: String) -> String {
        name.lowercased()
    }

    /// The canonical form of a room name (leading `#` dropped, upper case folded), or nil when
    /// it is not a valid room name.
    public static func canonicalRoom(_ name: String) -> String? {
        var utf8 = Substring(name).utf8
        if utf8.first == UInt8(ascii: "#") { utf8 = utf8.dropFirst() }
        guard !utf8.isEmpty, utf8.count <= maximumRoomLength else { return nil }
        var canonical: [UInt8] = []
        canonical.reserveCapacity(utf8.count)
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "-"):
                canonical.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                canonical.append(byte + 32)
            default:
                return nil
            }
        }
        return String(decoding: canonical, as: UTF8.self)
    }
}

/// Why a message text is refused.
public enum TextProblem: Sendable, Equatable {
    /// Empty or whitespace only.
    case blank
    /// A control character other than `\n` and `\t` (Unicode category Cc).
    case controlCharacter
    /// More bytes of UTF-8 than the limit.
    case tooLong(limit: Int)

    public var errorCode: ErrorCode {
        switch self {
        case .blank, .controlCharacter: .badRequest
        case .tooLong: .tooLong
        }
    }

    public var message: String {
        switch self {
        case .blank: "text must have at least one non-whitespace character"
        case .controlCharacter: "text must not contain control characters other than newline and tab"
        case .tooLong(let limit): "text is longer than \(limit) bytes"
        }
    }
}

extension Names {
    /// The problem with a message text, or nil when it may be stored.
    public static func problem(withText text: String, maximumBytes: Int) -> TextProblem? {
        if text.utf8.count > maximumBytes { return .tooLong(limit: maximumBytes) }
        var hasVisible = false
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value == 0x0A || value == 0x09 { continue }
            if value < 0x20 || (0x7F...0x9F).contains(value) { return .controlCharacter }
            if !scalar.properties.isWhitespace { hasVisible = true }
        }
        return hasVisible ? nil : .blank
    }
}
