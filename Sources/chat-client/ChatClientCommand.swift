import ArgumentParser
import ChatClient
import ChatProtocol
import ChatTerminal
import Foundation

@main
struct ChatClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-client",
        abstract: "Chat from a terminal, or pipe lines into a room.",
        discussion: """
            On a terminal: history first, then live chat; type /help for commands.
            With standard input not a terminal, each input line is sent as one message and each
            event is printed as one plain line; at the end of input it exits 0 once every message
            was acknowledged, else 1 naming the ones that were not.
            The password comes from CHAT_PASSWORD, or is asked for when the server requires one;
            an account's password from CHAT_ACCOUNT_PASSWORD, or is asked for on a terminal.
            """
    )

    @Argument(help: "Your name (asked for when not given on a terminal).")
    var name: String?

    @Option(name: .long, help: "The server's address.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "The server's port.")
    var port = 9999

    @Option(name: .long, help: "The room to join (default: the server's default room).")
    var room: String?

    @Option(name: .long, help: "Pipe mode: send each line as a direct message to this user (no room is joined).")
    var to: String?

    @Flag(name: .long, help: "Pipe mode: print each event as its raw JSON frame.")
    var json = false

    @Flag(name: .long, help: "Connect with TLS (the server has server.tls).")
    var tls = false

    @Flag(name: .long, help: "With --tls: accept any certificate (self-signed test setups only).")
    var insecure = false

    @Option(name: .long, help: ArgumentHelp("With --tls: also trust the certificates in this PEM file.", valueName: "file"))
    var caFile: String?

    var clientTLS: ClientTLS? {
        tls ? ClientTLS(verifiesCertificate: !insecure, trustedCertificates: caFile) : nil
    }

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be between 1 and 65535") }
        if let name, !Names.isValidUserName(name, maximumLength: 1024) {
            throw ValidationError("a name is ASCII letters, digits, '_' or '-', not starting with '-'")
        }
        if (insecure || caFile != nil) && !tls { throw ValidationError("--insecure and --ca-file go with --tls") }
        if let to, !Names.isValidUserName(to, maximumLength: 1024) {
            throw ValidationError("--to takes a user name")
        }
        if let room, Names.canonicalRoom(room) == nil {
            throw ValidationError("a room name is 1 to 32 of a-z, 0-9, '_' or '-'")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        if Terminal.isTerminal(STDIN_FILENO) && Terminal.isTerminal(STDOUT_FILENO) && !json {
            let colors = environment["NO_COLOR"].map(\.isEmpty) ?? true
            let code = await TerminalMode(host: host, port: port, tls: clientTLS, name: name, room: room,
                                          password: environment["CHAT_PASSWORD"], accountPassword: environment["CHAT_ACCOUNT_PASSWORD"],
                                          style: Style(colors: colors)).run()
            throw ExitCode(code)
        } else {
            guard let name else {
                FileHandle.standardError.write(Data("chat-client: give a NAME when standard input is not a terminal\n".utf8))
                throw ExitCode(64)
            }
            let code = await PipeMode(host: host, port: port, tls: clientTLS, name: name, room: room, to: to,
                                      password: environment["CHAT_PASSWORD"], accountPassword: environment["CHAT_ACCOUNT_PASSWORD"],
                                      json: json).run()
            throw ExitCode(code)
        }
    }
}
