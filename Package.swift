// swift-tools-version:6.1
import PackageDescription

let strictSwift6: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "swift-chat",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chat-server", targets: ["chat-server"]),
        .executable(name: "chat-client", targets: ["chat-client"]),
        .executable(name: "chat-admin", targets: ["chat-admin"]),
        .executable(name: "chat-bench", targets: ["chat-bench"]),
        .library(name: "ChatProtocol", targets: ["ChatProtocol"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "Server", targets: ["Server"]),
        .library(name: "ChatClient", targets: ["ChatClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Frames, the JSON codec, names, times: shared by everything that speaks the protocol.
        .target(
            name: "ChatProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift6
        ),
        // IRC lines: parsing and serializing messages with IRCv3 tags (no I/O).
        .target(
            name: "IRCProtocol",
            swiftSettings: strictSwift6
        ),
        // config.json: loading, defaults, validation.
        .target(
            name: "ChatConfiguration",
            dependencies: ["ChatProtocol"],
            swiftSettings: strictSwift6
        ),
        // glibc's mallopt, which Swift does not import (chat-server pins the mmap threshold).
        .target(name: "CMallocTuning"),
        // __builtin_prefetch, which Swift does not have (the fan-out warms the next members).
        .target(name: "CServerSupport"),
        // One SQLite setting Swift cannot reach (sqlite3_config is variadic).
        .target(
            name: "CSQLiteTuning",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        // SQLite: users, rooms, messages, read markers, search, maintenance.
        .target(
            name: "Storage",
            dependencies: [
                "ChatProtocol", "CSQLiteTuning",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSwift6,
            plugins: ["EmbedFiles"]
        ),
        // PostgreSQL storage (database.postgres): several chat-server nodes on one database.
        .target(
            name: "PostgresStorage",
            dependencies: [
                "ChatProtocol", "Storage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift6,
            plugins: ["EmbedFiles"]
        ),
        // Transcript formats (text, JSON, NDJSON, CSV, Markdown, HTML), streamed.
        .target(
            name: "Transcripts",
            dependencies: ["ChatProtocol", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift6
        ),
        // The protocol-neutral core: rooms, sessions, fan-out, admission, the commit path, the
        // line-connection shell and the direct write path. It knows no wire format: each face
        // registers its own (WireFormat) and plugs its connections in (LineFace).
        .target(
            name: "ChatCore",
            dependencies: [
                "ChatProtocol", "ChatConfiguration", "Storage", "CServerSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSwift6
        ),
        // The native face: PROTOCOL.md's JSON lines.
        .target(
            name: "NativeFace",
            dependencies: ["ChatCore", "ChatProtocol", "Storage", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift6
        ),
        // The IRC face: RFC 1459/2812 with IRCv3 (SPEC.md, IRC).
        .target(
            name: "IRCFace",
            dependencies: ["ChatCore", "ChatProtocol", "IRCProtocol", "Storage", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift6
        ),
        // The web face: the page (web/, embedded), HTTP and the WebSocket carrying either
        // line protocol.
        .target(
            name: "WebFace",
            dependencies: [
                "ChatCore", "NativeFace", "IRCFace",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSwift6,
            plugins: ["EmbedFiles"]
        ),
        // The server as one piece: the listeners of every face, metrics, TLS, shutdown.
        .target(
            name: "Server",
            dependencies: [
                "ChatCore", "NativeFace", "IRCFace", "WebFace",
                "ChatProtocol", "ChatConfiguration", "Storage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift6
        ),
        // A client library speaking the native protocol: used by chat-client, chat-bench and tests.
        .target(
            name: "ChatClient",
            dependencies: [
                "ChatProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSwift6
        ),
        .executableTarget(
            name: "chat-server",
            dependencies: [
                "CMallocTuning",
                "Server", "ChatConfiguration", "Storage", "PostgresStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift6
        ),
        // Terminal input and output for chat-client: keys, line editing, raw mode, styles.
        .target(
            name: "ChatTerminal",
            dependencies: ["ChatProtocol"],
            swiftSettings: strictSwift6
        ),
        .executableTarget(
            name: "chat-client",
            dependencies: [
                "ChatClient", "ChatProtocol", "ChatTerminal", "Transcripts",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift6
        ),
        .executableTarget(
            name: "chat-admin",
            dependencies: [
                "PostgresStorage",
                "Storage", "ChatConfiguration", "ChatProtocol", "ChatTerminal", "Transcripts",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift6
        ),
        // The benchmarks behind chat-bench, as a library so their argument handling is tested.
        .target(
            name: "BenchKit",
            dependencies: [
                "ChatProtocol", "Storage", "ChatClient", "PostgresStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictSwift6
        ),
        .executableTarget(
            name: "chat-bench",
            dependencies: ["BenchKit"],
            swiftSettings: strictSwift6
        ),
        // Build-time tool: turns files into Swift source (migrations/*.sql into Storage, web/ into Server).
        .executableTarget(
            name: "embed-files",
            path: "Plugins/EmbedFilesTool",
            swiftSettings: strictSwift6
        ),
        .plugin(
            name: "EmbedFiles",
            capability: .buildTool(),
            dependencies: ["embed-files"]
        ),
        .testTarget(
            name: "ChatProtocolTests",
            dependencies: ["ChatProtocol", "ChatConfiguration"],
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "IRCProtocolTests",
            dependencies: ["IRCProtocol"],
            exclude: ["Vectors"],
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "ChatProtocol"],
            swiftSettings: strictSwift6
        ),
        // A plain line client and frame helpers shared by the test targets.
        .target(
            name: "ChatTestSupport",
            dependencies: ["ChatProtocol", "IRCProtocol"],
            path: "Tests/ChatTestSupport",
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "ChatCore", "NativeFace", "IRCFace", "WebFace",
                "Storage", "ChatProtocol", "ChatConfiguration", "ChatClient", "ChatTestSupport", "IRCProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift6
        ),
        // Against a real PostgreSQL cluster each test run starts itself (Scripts/postgres.sh).
        .testTarget(
            name: "PostgresStorageTests",
            dependencies: [
                "PostgresStorage", "Storage", "ChatProtocol", "ChatTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "BenchKitTests",
            dependencies: ["BenchKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "ChatTerminalTests",
            dependencies: ["ChatTerminal"],
            swiftSettings: strictSwift6
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["Storage", "ChatProtocol", "ChatClient", "ChatTestSupport", "IRCProtocol", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSwift6
        ),
    ]
)
