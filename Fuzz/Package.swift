// swift-tools-version:6.1
// libFuzzer targets for what strangers send, run by Scripts/fuzz.sh (docs/fuzzing.md).
// A package of its own, whose ChatProtocol, ChatConfiguration and IRCProtocol are symbolic links to the
// project's sources: `--sanitize=fuzzer` then instruments exactly these modules, and nothing
// else of the project (its build-tool plugin, its executables) is planned or built.
import PackageDescription

let package = Package(
    name: "swift-chat-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "ChatProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(name: "ChatConfiguration", dependencies: ["ChatProtocol"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .target(name: "IRCProtocol", swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(name: "fuzz-irc", dependencies: ["IRCProtocol"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(name: "fuzz-frames", dependencies: ["ChatProtocol"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(name: "fuzz-config", dependencies: ["ChatConfiguration"], swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
