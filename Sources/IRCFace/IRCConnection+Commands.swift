import ChatCore
import ChatProtocol
import IRCProtocol
import NIOCore
import Storage

/// What each IRC command does (SPEC.md, IRC).
package extension IRCConnection {
    /// Runs one command through the table: unknown (421), before registration (queued behind the
    /// login in flight, or 451), short of parameters, or waiting behind the answers the session
    /// still owes; then its handler.
    func handle(_ message: IRCMessage) {
        let command = message.command.uppercased()
        let label = message.tag("label").flatMap { $0.isEmpty || $0.utf8.count > 64 ? nil : $0 }
        let invocation = IRCInvocation(message: message, command: command, label: label)
        guard let entry = IRCCommand.table[command] else {
            guard isRegistered else { return reply("451", ["You have not registered"]) }
            return sendResponse([numeric("421", [message.command, "Unknown command"])], label: label)
        }
        if !isRegistered, !entry.beforeRegistration {
            // Clients send JOIN right behind NICK and USER: those wait for the login's answer.
            if hasUser, requestedNick != nil || saslAccount != nil, waitingForRegistration.count < Self.maxWaitingLines {
                waitingForRegistration.append(message)
                return
            }
            return reply("451", ["You have not registered"])
        }
        if isRegistered, !pending.isEmpty, !isReplayingBarrier, entry.answersHere(invocation.parameters) {
            // Answers keep the order of commands: this one waits behind the session's answers to
            // earlier ones (a ping through the session is the barrier), then runs.
            return submit(.ping, .barrier(message), label: nil)
        }
        guard invocation.parameters.count >= entry.minimumParameters else {
            let missing = entry.missing ?? ("461", "Not enough parameters")
            let parameters = missing.code == "461" ? [command, missing.text] : [missing.text]
            return sendResponse([numeric(missing.code, parameters)], label: isRegistered ? label : nil)
        }
        entry.run(self, invocation)
    }

    /// A single numeric as the whole answer to `command`.
    func answer(_ command: IRCInvocation, _ code: String, _ parameters: [String]) {
        sendResponse([numeric(code, parameters)], label: command.label)
    }

    func quit(_ command: IRCInvocation) {
        // Behind a login in flight, QUIT waits its turn like any command after NICK and USER.
        if !isRegistered, isLoggingIn, waitingForRegistration.count < Self.maxWaitingLines {
            waitingForRegistration.append(command.message)
            return
        }
        session?.quit(reason: command.parameters.first.map { String($0.prefix(200)) } ?? "Quit")
    }

    func away(_ parameters: [String], label: String?) {
        awayMessage = parameters.first.flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        let key = Names.userKey(nick)
        state.awayMessages.withLock { $0[key] = awayMessage }
        sendResponse([awayMessage == nil ? numeric("305", ["You are no longer marked as being away"])
                                         : numeric("306", ["You have been marked as being away"])], label: label)
    }

    func noChannelOperators(_ command: IRCInvocation) {
        let channel = command.parameters.first { $0.hasPrefix("#") } ?? command.parameters.first ?? "*"
        answer(command, "482", [channel, "Nobody is a channel operator on this server"])
    }
}
