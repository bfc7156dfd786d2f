import ArgumentParser

/// `chat-bench`: the benchmarks' command tree.
public struct ChatBench: AsyncParsableCommand {
    public init() {}

    /// Parses the command line and runs the chosen benchmark asynchronously (what
    /// `AsyncParsableCommand.main` does; called by name so no synchronous overload is picked).
    public static func runFromCommandLine() async {
        do {
            var command = try parseAsRoot(Array(CommandLine.arguments.dropFirst()))
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    public static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Benchmarks for the chat server and its storage. Build with -c release.",
        discussion: """
            Every run is bounded in count and time and talks only to 127.0.0.1.
            Each prints a human summary on stderr and one JSON line on stdout.
            """,
        subcommands: [FanoutBenchmark.self, IdleBenchmark.self, JoinBenchmark.self, StorageBenchmark.self,
                      AccountLoginBenchmark.self, DirectMessageBenchmark.self, SearchBenchmark.self,
                      OverloadBenchmark.self, PostgresAppendBenchmark.self]
    )
}
