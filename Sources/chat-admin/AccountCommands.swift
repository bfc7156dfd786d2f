import ArgumentParser
import ChatProtocol
import ChatTerminal
import Foundation
import Storage

/// `chat-admin account add|passwd|remove|list` (SPEC.md).
struct Account: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, reset and remove accounts.",
        discussion: """
            Passwords are read from standard input (one line), or asked twice without echo on a
            terminal; they are stored only as salted scrypt hashes.
            """,
        subcommands: [Add.self, Passwd.self, Remove.self, List.self])

    struct Add: AsyncParsableCommand, DatabaseCommand {
        static let configuration = CommandConfiguration(abstract: "Make NAME an account (the user is created if new).")
        @ParentCommand var chatAdmin: ChatAdmin
        @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
        @Argument(help: "The account's name.") var name: String

        func validate() throws {
            guard Names.isValidUserName(name, maximumLength: 1024) else {
                throw ValidationError("\(name) is not a user name (ASCII letters, digits, '_' and '-', not starting with '-')")
            }
        }

        func run() async throws {
            try reporting {
                let rules = try database.accountRules()
                let password = try readNewPassword(minimumLength: rules.minPasswordLength)
                let store = try database.openForWriting()
                do {
                    let user = try store.addAccount(name: name, password: try PasswordHash.make(password: password, logN: rules.scryptLogN))
                    print("account \(user.name) created")
                } catch StorageError.accountExists(let name) {
                    throw Failure("\(name) is an account already (use `account passwd` to change its password)")
                }
            }
        }
    }

    struct Passwd: AsyncParsableCommand, DatabaseCommand {
        static let configuration = CommandConfiguration(abstract: "Set a new password for the account NAME.")
        @ParentCommand var chatAdmin: ChatAdmin
        @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
        @Argument(help: "The account's name.") var name: String

        func run() async throws {
            try reporting {
                let store = try database.openForWriting()
                guard try store.account(named: name) != nil else { throw Failure("\(name) is not an account") }
                let rules = try database.accountRules()
                let password = try readNewPassword(minimumLength: rules.minPasswordLength)
                guard try store.changePassword(name: name, password: try PasswordHash.make(password: password, logN: rules.scryptLogN)) else {
                    throw Failure("\(name) is not an account")
                }
                print("password of \(name) changed")
            }
        }
    }

    struct Remove: AsyncParsableCommand, DatabaseCommand {
        static let configuration = CommandConfiguration(abstract: "Make NAME a guest name again; its messages stay.")
        @ParentCommand var chatAdmin: ChatAdmin
        @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
        @Argument(help: "The account's name.") var name: String

        func run() async throws {
            try reporting {
                guard try database.openForWriting().removeAccount(name: name) else { throw Failure("\(name) is not an account") }
                print("account \(name) removed (the name is a guest name again)")
            }
        }
    }

    struct List: AsyncParsableCommand, DatabaseCommand {
        static let configuration = CommandConfiguration(abstract: "Every account: created and last seen.")
        @ParentCommand var chatAdmin: ChatAdmin
        @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
        @Option(help: "text or json.") var format: ListFormat = .text

        func run() async throws {
            try reporting {
                let accounts = try database.openReadOnly().accounts()
                switch format {
                case .json:
                    try printJSON(.array(accounts.map { .object([
                        "name": .string($0.name), "created": jsonTime($0.createdAt), "lastSeen": jsonTime($0.lastSeen),
                    ]) }))
                case .text:
                    let width = max(4, accounts.map(\.name.count).max() ?? 0)
                    print("\("name".rightPadded(width))  created                   last seen")
                    for account in accounts {
                        print("\(account.name.rightPadded(width))  \(timeText(account.createdAt))  \(timeText(account.lastSeen))")
                    }
                }
            }
        }
    }
}

/// A new password: asked twice without echo on a terminal, else the first line of standard input.
private func readNewPassword(minimumLength: Int) throws -> String {
    let password: String
    if isTerminal(STDIN_FILENO) {
        guard let first = Terminal.readSecret(prompt: "new password: "),
              let second = Terminal.readSecret(prompt: "again: ") else { throw Failure("no password given") }
        guard first == second else { throw Failure("the passwords differ") }
        password = first
    } else {
        guard let line = readLine(strippingNewline: true) else { throw Failure("no password on standard input") }
        password = line.hasSuffix("\r") ? String(line.dropLast()) : line
    }
    guard password.count >= minimumLength, password.utf8.count <= 256 else {
        throw UsageFailure("a password is at least \(minimumLength) characters and at most 256 bytes")
    }
    return password
}
