import ChatProtocol
import NIOCore
import Storage

/// Login, account passwords and registration (PROTOCOL.md, Session and Accounts).
package extension Session {
    /// Wrong account passwords one connection may try: the third failure closes it.
    static let failedLoginsPerConnection = 3

    func login(name: String, password: String?, accountPassword: String?, re: RequestID?) {
        let configuration = server.configuration
        let settings = server.reloadable.withLock { $0 }
        if let required = settings.password {
            if let wait = server.loginThrottle.refusal(address: address) {
                // Not checked at all: guessing from this address gets nowhere until the window ends.
                output?.sendError(ProtocolError(.badPassword, "too many wrong passwords from your address; wait \(wait) s", re: re))
                close()
                return
            }
            guard let password, constantTimeEquals(password, required) else {
                let failures = server.loginThrottle.recordFailure(address: address, account: nil)
                server.metrics.authFailures.increment()
                // One line per failure until the address is throttled, then one saying so: a
                // guessing run cannot flood the log.
                if failures < LoginThrottle.failuresPerAddress {
                    server.logger.notice("bad password from \(peer)")
                } else if failures == LoginThrottle.failuresPerAddress {
                    server.logger.notice("bad password from \(peer): \(failures) in a row; logins from \(address) are refused for \(LoginThrottle.window.nanoseconds / 1_000_000_000) s and not logged")
                }
                output?.sendError(ProtocolError(.badPassword, password == nil ? "this server requires a password" : "wrong password", re: re))
                close()
                return
            }
        }
        guard Names.isValidUserName(name, maximumLength: configuration.limits.maxNameLength) else {
            output?.sendError(ProtocolError(.invalidName,
                "a name is 1 to \(configuration.limits.maxNameLength) ASCII letters, digits, '_' or '-', not starting with '-'", re: re))
            return
        }
        isBusy = true
        let database = server.database
        server.threadPool.runIfActive(eventLoop: eventLoop) { try database.loginLookup(name: name) }.whenComplete { [self] result in
            guard case .awaitingLogin = phase else { return }
            switch result {
            case .success((let isKnown, nil)):
                // Every new name is a permanent record: an address may make only so many an hour.
                guard isKnown || server.newNames.take(address, limit: server.configuration.limits.newNamesPerAddressPerHour) else {
                    output?.sendError(ProtocolError(.rateLimited, "too many new names from your address in the last hour; use one you had, or wait", re: re))
                    resume()
                    return
                }
                loginAsGuest(name: name, re: re)
            case .success((_, let account?)):
                loginToAccount(account, password: accountPassword, re: re)
            case .failure(let error):
                server.logger.error("looking up the account \(name) failed: \(error)")
                output?.sendError(ProtocolError(.internal, "the login could not be checked; try again", re: re))
                resume()
            }
        }
    }

    private func loginAsGuest(name: String, re: RequestID?) {
        guard server.configuration.accounts.guests else {
            output?.sendError(ProtocolError(.accountRequired, "this server admits accounts only: \(name) is not registered", re: re))
            resume()
            return
        }
        claimAndRecordLogin(name: name, asAccount: false, re: re)
    }

    private func loginToAccount(_ account: AccountRecord, password: String?, re: RequestID?) {
        let name = account.user.name
        guard let password else {
            // Not a failure: the client learns that the name needs its password.
            output?.sendError(ProtocolError(.accountRequired, "\(name) is a registered account: log in with its account_password", re: re))
            resume()
            return
        }
        if let wait = server.loginThrottle.refusal(address: address) {
            server.logger.notice("account login for \(name) from \(peer) refused: too many failures from that address")
            loginFailed(name: name, message: "too many failed logins from your address; wait \(wait) s", re: re)
            return
        }
        let logN = server.configuration.accounts.scryptLogN
        guard let check = server.passwordChecker.verify(password, against: account.password, upgradingTo: logN, on: eventLoop) else {
            output?.sendError(ProtocolError(.rateLimited, "the server is busy checking passwords; try again in a moment", re: re))
            resume()
            return
        }
        let delay = server.loginThrottle.delay(account: name)
        check.whenComplete { [self] result in
            let answer: @Sendable () -> Void = { [self] in
                guard case .awaitingLogin = phase else { return }
                if case .success(let verdict) = result, verdict.isCorrect {
                    if let upgraded = verdict.upgraded { upgradePassword(of: account, to: upgraded) }
                    claimAndRecordLogin(name: name, asAccount: true, re: re)
                } else {
                    server.loginThrottle.recordFailure(address: address, account: name)
                    server.metrics.authFailures.increment()
                    server.logger.notice("wrong account password for \(name) from \(peer)")
                    loginFailed(name: name, message: "wrong account password for \(name)", re: re)
                }
            }
            if delay > .zero { eventLoop.scheduleTask(in: delay, answer) } else { answer() }
        }
    }

    /// Stores the re-made hash of a good login below the configured cost; the login does not
    /// wait for it, and a password changed meanwhile is left alone.
    private func upgradePassword(of account: AccountRecord, to upgraded: PasswordHash) {
        let logger = server.logger
        let name = account.user.name
        server.database.upgradePassword(userID: account.user.id, replacing: account.password, with: upgraded) { result in
            switch result {
            case .success(true): logger.info("password hash of \(name) re-made at N = \(upgraded.cost)")
            case .success(false): break
            case .failure(let error): logger.warning("re-making the password hash of \(name) failed: \(error)")
            }
        }
    }

    private func loginFailed(name: String, message: String, re: RequestID?) {
        failedLogins += 1
        output?.sendError(ProtocolError(.authFailed, message, re: re))
        if failedLogins >= Self.failedLoginsPerConnection {
            server.logger.notice("closing \(peer) after \(failedLogins) failed logins")
            close()
            return
        }
        resume()
    }

    private func claimAndRecordLogin(name: String, asAccount: Bool, re: RequestID?) {
        fixWireFormat()
        guard server.registry.claim(name: name, session: self, asAccount: asAccount) else {
            output?.sendError(ProtocolError(.nameTaken, "\(name) is already online; pick another name", re: re))
            resume()
            return
        }
        leaseAcrossNodes(name: name, asAccount: asAccount) { [self] leased in
            guard case .awaitingLogin = phase else {
                releaseName(name)
                return resume()
            }
            switch leased {
            case .success(true):
                server.database.recordLogin(name: name) { result in
                    self.eventLoop.execute { self.loginRecorded(result, name: name, asAccount: asAccount, re: re) }
                }
            case .success(false):
                releaseName(name)
                output?.sendError(ProtocolError(.nameTaken, "\(name) is already online; pick another name", re: re))
                resume()
            case .failure(let error):
                releaseName(name)
                server.logger.error("leasing the name \(name) across nodes failed: \(error)")
                output?.sendError(ProtocolError(.internal, "the login could not be recorded; try again", re: re))
                resume()
            }
        }
    }

    /// On a shared store, holds `name` across nodes too (an account's sessions share it, a
    /// guest's is exclusive); `completion` runs on this session's loop. Alone, it is held already.
    private func leaseAcrossNodes(name: String, asAccount: Bool, _ completion: @escaping @Sendable (Result<Bool, any Error>) -> Void) {
        guard let shared = server.sharedStore else { return completion(.success(true)) }
        let key = Names.userKey(name)
        nameLease = asAccount ? .shared : .exclusive
        let eventLoop = self.eventLoop
        Task {
            let result: Result<Bool, any Error>
            do { result = .success(try await shared.leaseName(key, shared: asAccount)) } catch { result = .failure(error) }
            // A lease that was not granted is not held: nothing to give back for it.
            if case .success(true) = result {} else { eventLoop.execute { self.nameLease = nil } }
            eventLoop.execute { completion(result) }
        }
    }

    /// A guest that became an account holds its name as accounts do: shared, so its other
    /// sessions may log in on any node. The shared lease is taken before the exclusive one goes
    /// (one connection holds both), so the name is never free in between.
    private func shareLeaseAcrossNodes(name: String) {
        guard nameLease == .exclusive, let shared = server.sharedStore else { return }
        nameLease = .shared
        let key = Names.userKey(name)
        let logger = server.logger
        Task {
            do {
                if try await !shared.leaseName(key, shared: true) { logger.error("the account \(name) could not share its name across nodes") }
            } catch {
                logger.error("sharing the name of \(name) across nodes failed: \(error)")
            }
            await shared.releaseName(key, shared: false)
        }
    }

    /// Gives `name` back: here, and across nodes when leased there.
    func releaseName(_ name: String) {
        server.registry.release(name: name, sessionID: id)
        guard let lease = nameLease, let shared = server.sharedStore else { return }
        nameLease = nil
        let key = Names.userKey(name)
        Task { await shared.releaseName(key, shared: lease == .shared) }
    }

    private func loginRecorded(_ result: Result<UserRecord, any Error>, name: String, asAccount: Bool, re: RequestID?) {
        defer { resume() }
        switch result {
        case .success(let user):
            // The claim is keyed case-insensitively, so it already covers the stored spelling.
            guard case .awaitingLogin = phase else {
                releaseName(name)
                return
            }
            phase = .active(user)
            isAccount = asAccount
            loginDeadline?.cancel()
            loginDeadline = nil
            hasLoggedIn = true
            server.admission.loggedIn(address)
            server.logger.info("login \(user.name)\(asAccount ? " (account)" : "") from \(peer)")
            output?.sendWelcome(re: re, name: user.name, isAccount: asAccount, defaultRoom: server.configuration.rooms.defaultRoom,
                                motd: server.reloadable.withLock { $0.motd })
        case .failure(let error):
            releaseName(name)
            server.logger.error("recording the login of \(name) failed: \(error)")
            output?.sendError(ProtocolError(.internal, "the login could not be recorded; try again", re: re))
        }
    }

    /// `limits.loginTimeoutSeconds` passed without a login: the connection goes, whatever it
    /// sent meanwhile.
    func loginTimedOut() {
        guard case .awaitingLogin = phase else { return }
        server.logger.info("no login from \(peer) within \(server.configuration.limits.loginTimeoutSeconds) s: closing")
        output?.sendError(ProtocolError(.notLoggedIn, "no login within \(server.configuration.limits.loginTimeoutSeconds) seconds; closing"))
        close()
    }

    // MARK: Registration

    func register(password: String, user: UserRecord, re: RequestID?) {
        let accounts = server.configuration.accounts
        guard !isAccount else {
            output?.sendError(ProtocolError(.badRequest, "\(user.name) is an account already", re: re))
            return
        }
        guard accounts.registration == .open else {
            output?.sendError(ProtocolError(.registrationClosed, "accounts are created by the administrator here", re: re))
            return
        }
        guard password.count >= accounts.minPasswordLength, password.utf8.count <= 256 else {
            output?.sendError(ProtocolError(.weakPassword,
                "a password is at least \(accounts.minPasswordLength) characters and at most 256 bytes", re: re))
            return
        }
        guard let hashing = server.passwordChecker.hash(password, logN: accounts.scryptLogN, on: eventLoop) else {
            output?.sendError(ProtocolError(.rateLimited, "the server is busy checking passwords; try again in a moment", re: re))
            return
        }
        isBusy = true
        let database = server.database
        hashing.flatMap { [eventLoop] hash in
            let promise = eventLoop.makePromise(of: Void.self)
            database.registerAccount(userID: user.id, password: hash) { promise.completeWith($0) }
            return promise.futureResult
        }.whenComplete { [self] result in
            defer { resume() }
            guard case .active = phase else { return }
            switch result {
            case .success:
                isAccount = true
                server.registry.promoteToAccount(name: user.name, sessionID: id)
                shareLeaseAcrossNodes(name: user.name)
                server.logger.info("registered \(user.name)")
                output?.sendRegistered(re: re, name: user.name)
            case .failure(StorageError.accountExists):
                output?.sendError(ProtocolError(.badRequest, "\(user.name) is an account already", re: re))
            case .failure(let error):
                server.logger.error("registering \(user.name) failed: \(error)")
                output?.sendError(ProtocolError(.internal, "the account could not be created", re: re))
            }
        }
    }
}
