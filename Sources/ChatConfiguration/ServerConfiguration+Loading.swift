import ChatProtocol
import Foundation

/// Why a configuration cannot be used; `description` names the file and the key.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }

    /// The exit status for a configuration error (`EX_CONFIG`).
    public static let exitStatus: Int32 = 78
}

extension ServerConfiguration {
    /// Loads and validates the file at `path`: relative paths inside it are resolved against
    /// its folder, and `CHAT_SERVER_PASSWORD` in `environment` overrides `server.password`.
    public static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> ServerConfiguration {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw ConfigurationError("\(path): \(exists ? "cannot read the configuration file" : "no such configuration file")")
        }
        var configuration: ServerConfiguration
        do {
            configuration = try parse(Array(data))
        } catch {
            throw ConfigurationError("\(path): \(error.description)")
        }
        let folder = url.deletingLastPathComponent()
        if !configuration.database.path.hasPrefix("/") {
            configuration.database.path = folder.appending(path: configuration.database.path).standardizedFileURL.path
        }
        for keyPath in [\ServerConfiguration.tls.certificate, \ServerConfiguration.tls.key] {
            if let file = configuration[keyPath: keyPath], !file.hasPrefix("/") {
                configuration[keyPath: keyPath] = folder.appending(path: file).standardizedFileURL.path
            }
        }
        configuration.applyEnvironment(environment)
        return configuration
    }

    /// `CHAT_SERVER_PASSWORD`, when set, replaces `server.password`.
    public mutating func applyEnvironment(_ environment: [String: String]) {
        if let url = environment["CHAT_DATABASE_URL"], !url.isEmpty {
            database.postgres = url
        }
        if let password = environment["CHAT_SERVER_PASSWORD"] {
            server.password = password
        }
    }

    /// Parses and validates a configuration document; paths are left as written.
    public static func parse(_ bytes: [UInt8]) throws(ConfigurationError) -> ServerConfiguration {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ConfigurationError("malformed JSON: \(error.reason) at line \(error.line), column \(error.column)")
        }
        var configuration = ServerConfiguration()
        let root = try Section(document, path: "")
        try root.allowOnly(["server", "database", "history", "rooms", "limits", "log", "irc", "accounts", "web", "metrics", "tls"])

        if let server = try root.section("server") {
            try server.allowOnly(["name", "host", "port", "password", "motd", "tls", "eventLoops", "directWrites"])
            configuration.server.eventLoops = try server.nullableInteger("eventLoops", in: 1...256, default: nil)
            if let direct = try server.bool("directWrites") { configuration.server.directWrites = direct }
            if let tls = try server.bool("tls") { configuration.server.tls = tls }
            if let name = try server.string("name") {
                guard !name.isEmpty else { throw server.invalid("name", "must not be empty") }
                configuration.server.name = name
            }
            if let host = try server.string("host") {
                guard !host.isEmpty else { throw server.invalid("host", "must not be empty") }
                configuration.server.host = host
            }
            if let port = try server.integer("port", in: 0...65_535) { configuration.server.port = port }
            configuration.server.password = try server.nullableString("password", default: nil)
            configuration.server.motd = try server.nullableString("motd", default: nil)
        }

        if let database = try root.section("database") {
            try database.allowOnly(["path", "durability", "postgres"])
            configuration.database.postgres = try database.nullableString("postgres", default: nil)
            if let path = try database.string("path") {
                guard !path.isEmpty else { throw database.invalid("path", "must not be empty") }
                configuration.database.path = path
            }
            if let durability = try database.string("durability") {
                guard let value = Durability(rawValue: durability) else {
                    throw database.invalid("durability", "must be \"normal\" or \"full\", got \"\(durability)\"")
                }
                configuration.database.durability = value
            }
        }

        if let history = try root.section("history") {
            try history.allowOnly(["onJoin", "maxReplay", "retentionDays"])
            if let onJoin = try history.integer("onJoin", in: 0...1_000_000) { configuration.history.onJoin = onJoin }
            if let maxReplay = try history.integer("maxReplay", in: 1...1_000_000) { configuration.history.maxReplay = maxReplay }
            configuration.history.retentionDays = try history.nullableInteger("retentionDays", in: 1...1_000_000, default: nil)
        }

        if let rooms = try root.section("rooms") {
            try rooms.allowOnly(["default", "autoCreate", "preset", "maxRooms", "createPerUserPerHour"])
            if let value = try rooms.integer("maxRooms", in: 1...10_000_000) { configuration.rooms.maxRooms = value }
            if let value = try rooms.integer("createPerUserPerHour", in: 0...10_000_000) { configuration.rooms.createPerUserPerHour = value }
            if let name = try rooms.string("default") {
                guard let room = Names.canonicalRoom(name) else {
                    throw rooms.invalid("default", "must be a room name (1 to 32 of a-z, 0-9, _ and -), got \"\(name)\"")
                }
                configuration.rooms.defaultRoom = room
            }
            if let autoCreate = try rooms.bool("autoCreate") { configuration.rooms.autoCreate = autoCreate }
            if let preset = try rooms.array("preset") {
                configuration.rooms.preset = try preset.enumerated().map { index, element throws(ConfigurationError) in
                    let key = rooms.keyPath("preset[\(index)]")
                    guard case .string(let name) = element else {
                        throw ConfigurationError("\(key) must be a string, got \(element.typeName)")
                    }
                    guard let room = Names.canonicalRoom(name) else {
                        throw ConfigurationError("\(key) must be a room name (1 to 32 of a-z, 0-9, _ and -), got \"\(name)\"")
                    }
                    return room
                }
            }
        }

        if let limits = try root.section("limits") {
            try limits.allowOnly([
                "maxClients", "maxLineBytes", "maxMessageBytes", "maxNameLength",
                "maxOutboundBytes", "idleTimeoutSeconds", "rate", "loginTimeoutSeconds", "maxConnectionsPerAddress",
                "maxPendingLoginsPerAddress", "maxPendingLogins", "newNamesPerAddressPerHour",
            ])
            if let value = try limits.integer("loginTimeoutSeconds", in: 0...86_400) { configuration.limits.loginTimeoutSeconds = value }
            if let value = try limits.integer("maxConnectionsPerAddress", in: 1...10_000_000) { configuration.limits.maxConnectionsPerAddress = value }
            if let value = try limits.integer("maxPendingLoginsPerAddress", in: 1...10_000_000) { configuration.limits.maxPendingLoginsPerAddress = value }
            if let value = try limits.integer("maxPendingLogins", in: 1...10_000_000) { configuration.limits.maxPendingLogins = value }
            if let value = try limits.integer("newNamesPerAddressPerHour", in: 1...10_000_000) { configuration.limits.newNamesPerAddressPerHour = value }
            if let value = try limits.integer("maxClients", in: 1...10_000_000) { configuration.limits.maxClients = value }
            if let value = try limits.integer("maxLineBytes", in: 256...(64 << 20)) { configuration.limits.maxLineBytes = value }
            if let value = try limits.integer("maxMessageBytes", in: 1...(64 << 20)) { configuration.limits.maxMessageBytes = value }
            if let value = try limits.integer("maxNameLength", in: 1...1024) { configuration.limits.maxNameLength = value }
            if let value = try limits.integer("maxOutboundBytes", in: 1024...(1 << 40)) { configuration.limits.maxOutboundBytes = value }
            if let value = try limits.integer("idleTimeoutSeconds", in: 0...31_536_000) { configuration.limits.idleTimeoutSeconds = value }
            if limits.has("rate") {
                if let rate = try limits.nullableSection("rate") {
                    try rate.allowOnly(["messagesPerSecond", "burst"])
                    var value = Rate()
                    if let perSecond = try rate.number("messagesPerSecond") {
                        guard perSecond > 0, perSecond <= 1_000_000 else {
                            throw rate.invalid("messagesPerSecond", "must be > 0 and <= 1000000")
                        }
                        value.messagesPerSecond = perSecond
                    }
                    if let burst = try rate.integer("burst", in: 1...1_000_000) { value.burst = burst }
                    configuration.limits.rate = value
                } else {
                    configuration.limits.rate = nil
                }
            }
            if configuration.limits.maxMessageBytes > configuration.limits.maxLineBytes {
                throw ConfigurationError("limits.maxMessageBytes must be <= limits.maxLineBytes (\(configuration.limits.maxLineBytes))")
            }
        }

        if let log = try root.section("log") {
            try log.allowOnly(["level", "messages"])
            if let level = try log.string("level") {
                guard let value = LogLevel(rawValue: level) else {
                    let allowed = LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
                    throw log.invalid("level", "must be one of \(allowed), got \"\(level)\"")
                }
                configuration.log.level = value
            }
            if let messages = try log.bool("messages") { configuration.log.messages = messages }
        }

        if let irc = try root.section("irc") {
            try irc.allowOnly(["enabled", "host", "port", "tls"])
            if let tls = try irc.bool("tls") { configuration.irc.tls = tls }
            if let enabled = try irc.bool("enabled") { configuration.irc.enabled = enabled }
            if let host = try irc.string("host") {
                guard !host.isEmpty else { throw irc.invalid("host", "must not be empty") }
                configuration.irc.host = host
            }
            if let port = try irc.integer("port", in: 0...65_535) { configuration.irc.port = port }
        }

        if let accounts = try root.section("accounts") {
            try accounts.allowOnly(["registration", "guests", "minPasswordLength", "scryptLogN"])
            if let registration = try accounts.string("registration") {
                guard let value = Accounts.Registration(rawValue: registration) else {
                    throw accounts.invalid("registration", "must be \"open\" or \"admin\", got \"\(registration)\"")
                }
                configuration.accounts.registration = value
            }
            if let guests = try accounts.bool("guests") { configuration.accounts.guests = guests }
            if let length = try accounts.integer("minPasswordLength", in: 1...256) { configuration.accounts.minPasswordLength = length }
            if let logN = try accounts.integer("scryptLogN", in: 10...20) { configuration.accounts.scryptLogN = logN }
        }

        for (key, isMetrics) in [("web", false), ("metrics", true)] {
            guard let section = try root.section(key) else { continue }
            try section.allowOnly(isMetrics ? ["enabled", "host", "port"] : ["enabled", "host", "port", "tls", "allowedOrigins"])
            var listener = isMetrics ? configuration.metrics : configuration.web
            if let enabled = try section.bool("enabled") { listener.enabled = enabled }
            if let host = try section.string("host") {
                guard !host.isEmpty else { throw section.invalid("host", "must not be empty") }
                listener.host = host
            }
            if let port = try section.integer("port", in: 0...65_535) { listener.port = port }
            if !isMetrics, let tls = try section.bool("tls") { listener.tls = tls }
            if !isMetrics, let origins = try section.array("allowedOrigins") {
                listener.allowedOrigins = try origins.enumerated().map { index, element throws(ConfigurationError) in
                    let key = section.keyPath("allowedOrigins[\(index)]")
                    guard case .string(let origin) = element else {
                        throw ConfigurationError("\(key) must be a string, got \(element.typeName)")
                    }
                    let lowered = origin.lowercased()
                    guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"), !lowered.hasSuffix("/"),
                          lowered.dropFirst(lowered.hasPrefix("https://") ? 8 : 7).allSatisfy({ $0 != "/" && $0 != " " }),
                          lowered.count > 8 else {
                        throw ConfigurationError("\(key) must be an origin such as \"https://chat.example.org\" (scheme, host and port only), got \"\(origin)\"")
                    }
                    return lowered
                }
            }
            if isMetrics { configuration.metrics = listener } else { configuration.web = listener }
        }

        if let tls = try root.section("tls") {
            try tls.allowOnly(["certificate", "key"])
            configuration.tls.certificate = try tls.nullableString("certificate", default: nil)
            configuration.tls.key = try tls.nullableString("key", default: nil)
        }
        let tlsListeners = [("server.tls", configuration.server.tls), ("irc.tls", configuration.irc.tls), ("web.tls", configuration.web.tls)]
        if let (key, _) = tlsListeners.first(where: { $0.1 }), configuration.tls.certificate == nil || configuration.tls.key == nil {
            throw ConfigurationError("\(key) is true but tls.certificate and tls.key are not both set")
        }
        return configuration
    }
}

/// One JSON object of the configuration, read with errors that name the key path.
private struct Section {
    let members: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String) throws(ConfigurationError) {
        guard case .object(let members) = value else {
            throw ConfigurationError("\(path.isEmpty ? "the configuration" : path) must be an object, got \(value.typeName)")
        }
        self.members = members
        self.path = path
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func invalid(_ key: String, _ problem: String) -> ConfigurationError {
        ConfigurationError("\(keyPath(key)) \(problem)")
    }

    func has(_ key: String) -> Bool { members[key] != nil }

    func allowOnly(_ keys: Set<String>) throws(ConfigurationError) {
        if let unknown = members.keys.sorted().first(where: { !keys.contains($0) }) {
            let allowed = keys.sorted().joined(separator: ", ")
            throw ConfigurationError("unknown key \(keyPath(unknown)) (allowed\(path.isEmpty ? "" : " in \(path)"): \(allowed))")
        }
    }

    private func typeError(_ key: String, _ expected: String, _ value: JSONValue) -> ConfigurationError {
        invalid(key, "must be \(expected), got \(value.typeName)")
    }

    func section(_ key: String) throws(ConfigurationError) -> Section? {
        guard let value = members[key] else { return nil }
        return try Section(value, path: keyPath(key))
    }

    func nullableSection(_ key: String) throws(ConfigurationError) -> Section? {
        guard let value = members[key], value != .null else { return nil }
        return try Section(value, path: keyPath(key))
    }

    func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = members[key] else { return nil }
        guard case .string(let text) = value else { throw typeError(key, "a string", value) }
        return text
    }

    func nullableString(_ key: String, default defaultValue: String?) throws(ConfigurationError) -> String? {
        guard let value = members[key] else { return defaultValue }
        switch value {
        case .null: return nil
        case .string(let text): return text
        default: throw typeError(key, "a string or null", value)
        }
    }

    func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = members[key] else { return nil }
        guard case .bool(let flag) = value else { throw typeError(key, "true or false", value) }
        return flag
    }

    func array(_ key: String) throws(ConfigurationError) -> [JSONValue]? {
        guard let value = members[key] else { return nil }
        guard case .array(let elements) = value else { throw typeError(key, "an array", value) }
        return elements
    }

    func number(_ key: String) throws(ConfigurationError) -> Double? {
        guard let value = members[key] else { return nil }
        switch value {
        case .integer(let number): return Double(number)
        case .double(let number): return number
        default: throw typeError(key, "a number", value)
        }
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = members[key] else { return nil }
        guard let number = value.integerValue else { throw typeError(key, "an integer", value) }
        guard number >= range.lowerBound else { throw invalid(key, "must be >= \(range.lowerBound)") }
        guard number <= range.upperBound else { throw invalid(key, "must be <= \(range.upperBound)") }
        return Int(number)
    }

    func nullableInteger(_ key: String, in range: ClosedRange<Int>, default defaultValue: Int?) throws(ConfigurationError) -> Int? {
        guard let value = members[key] else { return defaultValue }
        if value == .null { return nil }
        guard value.integerValue != nil else { throw typeError(key, "an integer or null", value) }
        return try integer(key, in: range)
    }
}
