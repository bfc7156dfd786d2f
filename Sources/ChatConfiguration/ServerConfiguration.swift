import ChatProtocol

/// A deployment's settings: `config.json` as SPEC.md defines it. Every key has a default.
public struct ServerConfiguration: Sendable, Equatable {
    public struct Server: Sendable, Equatable {
        public var name = "chat"
        public var host = "127.0.0.1"
        public var port = 9999
        public var password: String?
        public var motd: String?
        public var tls = false
        /// Event loop threads for the connections; nil: one fewer than the cores, at least one,
        /// so the database writer and the kernel's network work keep a core (docs/performance.md).
        public var eventLoops: Int?
        /// Plain TCP connections write straight to their sockets (`ConnectionWriter`); false: every
        /// write goes through NIO's pipeline (the fallback, should the direct path misbehave).
        public var directWrites = true

        /// The event loops to run on a machine with `cores` cores.
        public func eventLoopCount(cores: Int) -> Int {
            eventLoops ?? max(1, cores - 1)
        }
    }

    public enum Durability: String, Sendable, Equatable {
        /// WAL with `synchronous=NORMAL`: survives a crash of the process.
        case normal
        /// WAL with `synchronous=FULL`: also survives a crash of the machine.
        case full
    }

    public struct Database: Sendable, Equatable {
        /// Resolved against the configuration file's folder when loaded from a file.
        public var path = "chat.sqlite"
        public var durability = Durability.normal
        /// A PostgreSQL URL (`database.postgres`, or `CHAT_DATABASE_URL`); not served yet.
        public var postgres: String?
    }

    public struct History: Sendable, Equatable {
        public var onJoin = 50
        public var maxReplay = 500
        public var retentionDays: Int?
    }

    public struct Rooms: Sendable, Equatable {
        public var defaultRoom = "lobby"
        public var autoCreate = true
        public var preset = ["lobby"]
        /// Rooms the server holds at most (joins creating more are refused).
        public var maxRooms = 10_000
        /// Rooms one user may create in an hour.
        public var createPerUserPerHour = 100
    }

    public struct Rate: Sendable, Equatable {
        public var messagesPerSecond: Double = 10
        public var burst: Int = 20

        public init(messagesPerSecond: Double = 10, burst: Int = 20) {
            self.messagesPerSecond = messagesPerSecond
            self.burst = burst
        }
    }

    public struct Limits: Sendable, Equatable {
        public var maxClients = 10_000
        public var maxLineBytes = 16_384
        public var maxMessageBytes = 2_000
        public var maxNameLength = 32
        public var maxOutboundBytes = 4_194_304
        /// 0 turns the idle timeout off.
        public var idleTimeoutSeconds = 300
        /// nil: no rate limit.
        public var rate: Rate? = Rate()
        /// A connection that has not logged in after this many seconds is closed (0: never).
        /// Anything it sends before logging in does not extend it.
        public var loginTimeoutSeconds = 30
        /// Open connections from one IP address.
        public var maxConnectionsPerAddress = 1_000
        /// Connections from one IP address that have not logged in yet.
        public var maxPendingLoginsPerAddress = 128
        /// Connections that have not logged in yet, from anywhere: what is left of `maxClients`
        /// stays for people who log in.
        public var maxPendingLogins = 2_000
        /// Names never seen before that one IP address may log in with in an hour (each one is a
        /// permanent user record).
        public var newNamesPerAddressPerHour = 1_000
    }

    public enum LogLevel: String, Sendable, Equatable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    public struct Log: Sendable, Equatable {
        public var level = LogLevel.info
        public var messages = true
    }

    public struct IRC: Sendable, Equatable {
        public var enabled = false
        public var host = "127.0.0.1"
        public var port = 6667
        public var tls = false
    }

    /// Who may hold a name (PROTOCOL.md, Accounts).
    public struct Accounts: Sendable, Equatable {
        public enum Registration: String, Sendable, Equatable {
            /// Any guest may `register` its name.
            case open
            /// Only `chat-admin account add` creates accounts.
            case admin
        }
        public var registration = Registration.open
        /// False: only accounts may log in.
        public var guests = true
        public var minPasswordLength = 8
        /// log2 of scrypt's N for new password hashes; a stored hash below it is re-made on its
        /// account's next successful login (`PasswordHash.defaultLogN` says why 13).
        public var scryptLogN = 13
    }

    /// An HTTP listener (web, metrics).
    public struct Listener: Sendable, Equatable {
        public var enabled = false
        public var host = "127.0.0.1"
        public var port: Int
        public var tls = false
        /// web: pages of other origins (`https://host[:port]`, lower case) whose browsers may open
        /// the WebSocket, besides the server's own page (a web IRC client hosted elsewhere).
        public var allowedOrigins: [String] = []
    }

    /// PEM files for the listeners with `tls` true.
    public struct TLS: Sendable, Equatable {
        public var certificate: String?
        public var key: String?
    }

    public var server = Server()
    public var database = Database()
    public var history = History()
    public var rooms = Rooms()
    public var limits = Limits()
    public var log = Log()
    public var irc = IRC()
    public var accounts = Accounts()
    public var web = Listener(port: 8080)
    public var metrics = Listener(port: 9100)
    public var tls = TLS()

    /// The defaults of SPEC.md.
    public init() {}
}
