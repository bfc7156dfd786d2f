import ArgumentParser
import ChatConfiguration
import Foundation
import Logging
import PostgresStorage
import Server
import ServiceLifecycle
import Storage
import CMallocTuning

@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "A chat server that remembers: rooms, history replay on join, everything stored (SQLite, or PostgreSQL shared by several nodes).",
        discussion: """
            Reads its settings from a JSON configuration file (see config.json); the flags override it.
            Prints "listening on HOST:PORT" on standard output once it accepts connections.
            SIGINT or SIGTERM shut it down cleanly (exit status 0). SIGHUP reloads server.password and
            server.motd from the file. A bad configuration exits with 78.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The configuration file.", valueName: "file"))
    var config = "config.json"

    @Option(name: .long, help: ArgumentHelp("The address to listen on (overrides server.host).", valueName: "host"))
    var host: String?

    @Option(name: .long, help: ArgumentHelp("The port to listen on, 0 for any free port (overrides server.port).", valueName: "port"))
    var port: Int?

    @Option(name: .long, help: ArgumentHelp("The SQLite file (overrides database.path).", valueName: "path"))
    var database: String?

    func validate() throws {
        if let port, !(0...65_535).contains(port) {
            throw ValidationError("--port must be between 0 and 65535, got \(port)")
        }
        if let host, host.isEmpty { throw ValidationError("--host must not be empty") }
        if let database, database.isEmpty { throw ValidationError("--database must not be empty") }
    }

    func run() async throws {
        // glibc raises its mmap threshold each time a large block is freed, so after a join storm
        // the big transient buffers (names lists, presence runs of a large room) stay in the heap
        // and fragment it. Pinned at its initial 128 KiB they go back to the system when freed:
        // 10,000 idle joined connections cost ~6 KiB each instead of ~8.5, and the burst figure
        // is unchanged (docs/performance.md, IRC).
        _ = chat_pin_mmap_threshold(128 * 1024)
        var settings: ServerConfiguration
        do {
            settings = try ServerConfiguration.load(path: config)
        } catch {
            printError("chat-server: \(error)")
            throw ExitCode(ConfigurationError.exitStatus)
        }
        if let host { settings.server.host = host }
        if let port { settings.server.port = port }
        if let database { settings.database.path = URL(fileURLWithPath: database).standardizedFileURL.path }

        let level = Logger.Level(rawValue: settings.log.level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chat-server")

        let tls: ServerTLS?
        do {
            tls = try ServerTLS(settings)
        } catch {
            printError("chat-server: \(config): \(error)")
            throw ExitCode(ConfigurationError.exitStatus)
        }

        let store: any ChatStore
        if let url = settings.database.postgres {
            do {
                store = try await PostgresStore.open(url: url)
            } catch {
                printError("chat-server: cannot open the PostgreSQL database \(PostgresStore.redacted(url)): \(String(reflecting: error))")
                throw ExitCode.failure
            }
        } else {
            do {
                store = try ChatDatabase.open(path: settings.database.path,
                                              durability: settings.database.durability == .full ? .full : .normal,
                                              checkpointsInBackground: true)
            } catch {
                printError("chat-server: cannot open the database \(settings.database.path): \(error)")
                throw ExitCode.failure
            }
        }
        let server: ChatServer
        do {
            let loops = settings.server.eventLoopCount(cores: ProcessInfo.processInfo.activeProcessorCount)
            server = try await ChatServer.start(configuration: settings, database: store, logger: logger, tls: tls, threads: loops)
        } catch {
            store.close()
            printError("chat-server: cannot listen on \(settings.server.host):\(settings.server.port): \(error)")
            throw ExitCode.failure
        }
        logger.info("history in \(store.location)")
        if tls != nil { logger.info("TLS on \(server.host):\(server.port) with \(settings.tls.certificate ?? "")") }
        var listening = "listening on \(server.host):\(server.port)\n"
        if let ircPort = server.ircPort { listening += "irc listening on \(settings.irc.host):\(ircPort)\n" }
        if let webPort = server.webPort { listening += "web listening on \(settings.web.host):\(webPort)\n" }
        if let metricsPort = server.metricsPort { listening += "metrics listening on \(settings.metrics.host):\(metricsPort)\n" }
        FileHandle.standardOutput.write(Data(listening.utf8))
        let reload = handleReloadSignals(server: server, configuration: config, logger: logger)
        defer { reload.forEach { $0.cancel() } }

        let group = ServiceGroup(
            services: server.services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        try await group.run()
    }

    /// SIGHUP re-reads the configuration file and applies what can change while running
    /// (`ChatServer.reload`); a file that no longer loads is logged and changes nothing. SIGUSR1
    /// and SIGUSR2 are ignored: no signal but SIGINT and SIGTERM stops the server, and closing
    /// the terminal it runs in (SIGHUP) does not either.
    private func handleReloadSignals(server: ChatServer, configuration path: String, logger: Logger) -> [any DispatchSourceSignal] {
        for number in [SIGHUP, SIGUSR1, SIGUSR2] { signal(number, SIG_IGN) }
        let hangUp = DispatchSource.makeSignalSource(signal: SIGHUP)
        hangUp.setEventHandler {
            do {
                server.reload(try ServerConfiguration.load(path: path))
            } catch {
                logger.error("SIGHUP: the configuration was not reloaded: \(error)")
            }
        }
        hangUp.resume()
        let ignored = [SIGUSR1, SIGUSR2].map { number in
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { logger.notice("signal \(number) ignored (SIGHUP reloads; SIGINT or SIGTERM stop)") }
            source.resume()
            return source
        }
        return [hangUp] + ignored
    }

    private func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
