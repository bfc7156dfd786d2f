import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore
import Storage

/// The IRCv3 capabilities the listener offers.
package enum IRCCapability: String, CaseIterable {
    case accountTag = "account-tag"
    case batch
    case capNotify = "cap-notify"
    case chathistory = "draft/chathistory"
    case echoMessage = "echo-message"
    case labeledResponse = "labeled-response"
    case messageTags = "message-tags"
    case readMarker = "draft/read-marker"
    case sasl
    case search = "soju.im/search"
    case serverTime = "server-time"

    /// The value shown by `CAP LS 302`.
    package var value: String? {
        switch self {
        case .sasl: "PLAIN"
        default: nil
        }
    }
}

/// A command as the dispatcher sees it (`IRCCommand.table`).
package struct IRCInvocation {
    package let message: IRCMessage
    /// Upper-cased.
    package let command: String
    package var parameters: [String] { message.parameters }
    /// The IRCv3 `label` to answer with, when usable.
    package let label: String?
}

/// One IRC command, as a row of the dispatch table (the shape of Ergo's `irc/commands.go`): what
/// it needs before its handler runs, and the handler. A new command is one entry.
package struct IRCCommand: Sendable {
    /// Where a command's answer comes from, which decides how it keeps its place in the order of
    /// answers (docs/design.md, "Answers in order").
    package enum Answer: Sendable {
        /// The session answers it: handed to the session in order, answered in order.
        case bySession
        /// This adapter answers it: while the session still owes answers to earlier commands, it
        /// waits behind them (a barrier through the session), then runs.
        case local
        /// `WHO #channel` asks the session; `WHO nick` is answered here.
        case bySessionForChannels
        /// Nothing is answered (PONG), or the command orders itself (QUIT ends the session
        /// behind what it owes).
        case none
    }

    /// Whether it may come before registration ends (the rest wait for it, or get 451).
    package var beforeRegistration = false
    /// Fewer parameters are answered `missing` (by default 461 "Not enough parameters").
    package var minimumParameters = 0
    package var missing: (code: String, text: String)?
    package var answer = Answer.local
    package let run: @Sendable (IRCConnection, IRCInvocation) -> Void

    package init(beforeRegistration: Bool = false, minimumParameters: Int = 0, missing: (code: String, text: String)? = nil,
         answer: Answer = .local, _ run: @escaping @Sendable (IRCConnection, IRCInvocation) -> Void) {
        self.beforeRegistration = beforeRegistration
        self.minimumParameters = minimumParameters
        self.missing = missing
        self.answer = answer
        self.run = run
    }

    /// Every command the listener knows (SPEC.md, IRC); anything else is 421.
    package static let table: [String: IRCCommand] = {
        var table: [String: IRCCommand] = [
            // Registration.
            "CAP": IRCCommand(beforeRegistration: true, minimumParameters: 1, answer: .none) { $0.capability($1.parameters) },
            "PASS": IRCCommand(beforeRegistration: true, minimumParameters: 1, answer: .none) { $0.pass($1.parameters) },
            "NICK": IRCCommand(beforeRegistration: true, minimumParameters: 1, missing: ("431", "No nickname given"), answer: .none) {
                $0.nickCommand($1.parameters)
            },
            "USER": IRCCommand(beforeRegistration: true, minimumParameters: 4, answer: .none) { $0.user($1.parameters) },
            "AUTHENTICATE": IRCCommand(beforeRegistration: true, minimumParameters: 1, answer: .none) { $0.authenticate($1.parameters) },
            "PING": IRCCommand(beforeRegistration: true, minimumParameters: 1, missing: ("409", "No origin specified")) { connection, command in
                connection.sendResponse([IRCMessage(source: connection.serverName, command: "PONG",
                                                    parameters: [connection.serverName, command.parameters[0]])], label: command.label)
            },
            "PONG": IRCCommand(beforeRegistration: true, answer: .none) { _, _ in },
            "QUIT": IRCCommand(beforeRegistration: true, answer: .none) { $0.quit($1) },
            // Chat, through the session.
            "JOIN": IRCCommand(minimumParameters: 1, answer: .bySession) { $0.join($1.parameters, label: $1.label) },
            "PART": IRCCommand(minimumParameters: 1, answer: .bySession) { $0.part($1.parameters, label: $1.label) },
            "PRIVMSG": IRCCommand(answer: .bySession) { $0.privmsg($1.command, $1.parameters, label: $1.label, clientTags: $0.clientTags(of: $1.message)) },
            "NOTICE": IRCCommand(answer: .bySession) { $0.privmsg($1.command, $1.parameters, label: $1.label, clientTags: $0.clientTags(of: $1.message)) },
            "TAGMSG": IRCCommand { $0.tagmsg($1.parameters, label: $1.label, clientTags: $0.clientTags(of: $1.message)) },
            "NAMES": IRCCommand(answer: .bySession) { $0.names($1.parameters, label: $1.label) },
            "WHO": IRCCommand(answer: .bySessionForChannels) { $0.who($1.parameters, label: $1.label) },
            "LIST": IRCCommand(answer: .bySession) { $0.submit(.rooms, .list, label: $1.label) },
            "CHATHISTORY": IRCCommand(answer: .bySession) { $0.chathistory($1.parameters, label: $1.label) },
            "SEARCH": IRCCommand(answer: .bySession) { $0.search($1.parameters, label: $1.label) },
            "MARKREAD": IRCCommand(answer: .bySession) { $0.markRead($1.parameters, label: $1.label) },
            // Answered here.
            "WHOIS": IRCCommand(minimumParameters: 1, missing: ("431", "No nickname given")) { $0.whois($1.parameters, label: $1.label) },
            "TOPIC": IRCCommand(minimumParameters: 1) { $0.topic($1.parameters, label: $1.label) },
            "MODE": IRCCommand(minimumParameters: 1) { $0.mode($1.parameters, label: $1.label) },
            "AWAY": IRCCommand { $0.away($1.parameters, label: $1.label) },
            "ISON": IRCCommand(minimumParameters: 1) { $0.ison($1.parameters, label: $1.label) },
            "USERHOST": IRCCommand(minimumParameters: 1) { $0.userhost($1.parameters, label: $1.label) },
            "MOTD": IRCCommand { $0.sendResponse($0.motdLines(), label: $1.label) },
            "LUSERS": IRCCommand { $0.sendResponse($0.lusersLines(), label: $1.label) },
            "VERSION": IRCCommand { $0.answer($1, "351", ["chat-server", $0.serverName, "stores every message"]) },
            "TIME": IRCCommand { $0.answer($1, "391", [$0.serverName, Timestamp.string(Timestamp.now())]) },
            "ADMIN": IRCCommand { $0.answer($1, "423", [$0.serverName, "No administrative info available"]) },
            "INFO": IRCCommand { connection, command in
                connection.sendResponse([connection.numeric("371", ["chat-server: a chat server that remembers"]),
                                         connection.numeric("374", ["End of INFO list"])], label: command.label)
            },
            "LINKS": IRCCommand { connection, command in
                connection.sendResponse([connection.numeric("364", ["*", connection.serverName, "0 \(connection.serverName)"]),
                                         connection.numeric("365", ["*", "End of /LINKS list"])], label: command.label)
            },
            "STATS": IRCCommand { $0.answer($1, "219", [$1.parameters.first ?? "*", "End of /STATS report"]) },
            "HELP": IRCCommand { $0.answer($1, "524", [$1.parameters.first ?? "*", "No help available on this topic"]) },
            "OPER": IRCCommand { $0.answer($1, "491", ["No O-lines for your host"]) },
            "KICK": IRCCommand { $0.noChannelOperators($1) },
            "INVITE": IRCCommand { $0.noChannelOperators($1) },
        ]
        for disabled in ["USERS", "SUMMON"] {
            table[disabled] = IRCCommand { $0.answer($1, "446", [$1.command, "Disabled"]) }
        }
        for operatorOnly in ["KILL", "WALLOPS", "REHASH", "RESTART", "DIE", "SQUIT", "CONNECT"] {
            table[operatorOnly] = IRCCommand { $0.answer($1, "481", ["Permission Denied- You're not an IRC operator"]) }
        }
        return table
    }()
}

package extension IRCCommand {
    /// Whether this adapter answers the command (so it must wait behind the session's answers).
    func answersHere(_ parameters: [String]) -> Bool {
        switch answer {
        case .local: true
        case .bySession, .none: false
        case .bySessionForChannels: parameters.first.map { !$0.hasPrefix("#") } ?? true
        }
    }
}
