import ArgumentParser

@main
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Benchmarks for the chat server and its storage. Build with -c release.",
        discussion: """
            Every run is bounded in count and time and talks only to 127.0.0.1.
            Each prints a human summary on stderr and one JSON line on stdout.
            """,
        subcommands: [StorageBenchmark.self]
    )
}
