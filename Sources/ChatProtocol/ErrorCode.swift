/// The `code` of an `error` frame (PROTOCOL.md, "Error codes").
public enum ErrorCode: String, Sendable, Equatable, CaseIterable {
    case badRequest = "bad_request"
    case unknownType = "unknown_type"
    case tooLong = "too_long"
    case notLoggedIn = "not_logged_in"
    case badPassword = "bad_password"
    case invalidName = "invalid_name"
    case nameTaken = "name_taken"
    case invalidRoom = "invalid_room"
    case noSuchRoom = "no_such_room"
    case notInRoom = "not_in_room"
    case rateLimited = "rate_limited"
    case serverFull = "server_full"
    case slowConsumer = "slow_consumer"
    case `internal` = "internal"
    case accountRequired = "account_required"
    case authFailed = "auth_failed"
    case registrationClosed = "registration_closed"
    case weakPassword = "weak_password"
    case noSuchUser = "no_such_user"
    /// The database did not confirm whether the message was stored: resend it with its nonce.
    case unknownOutcome = "unknown_outcome"

    /// Whether the server closes the connection after sending this error.
    public var closesConnection: Bool {
        switch self {
        case .badPassword, .serverFull, .slowConsumer: true
        default: false
        }
    }
}

/// A request refused with an error code and a message a person can act on.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// The `id` of the request being answered, when it had one.
    public var re: RequestID?

    public init(_ code: ErrorCode, _ message: String, re: RequestID? = nil) {
        self.code = code
        self.message = message
        self.re = re
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// A client's request `id`: a string of at most 64 characters, or an integer.
public enum RequestID: Sendable, Hashable {
    case integer(Int64)
    case string(String)

    public static let maximumStringLength = 64
}
