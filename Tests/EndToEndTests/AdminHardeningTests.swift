import ChatProtocol
import Foundation
import Storage
import Testing

/// What an attacker or an unlucky operator tries against chat-admin (issue 9's findings).
@Suite struct AdminHardeningTests {
    @Test func csvCellsThatWouldRunAsFormulasAreNeutralised() async throws {
        let scratch = try Scratch()
        let path = scratch.file("chat.sqlite")
        do {
            let database = try ChatDatabase.open(path: path)
            let user = try await database.recordLogin(name: "mallory")
            let room = try await database.ensureRoom(named: "lobby")
            for text in ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "\tx", "plain = fine"] {
                _ = try await database.appendMessage(MessageDraft(roomID: room.id, userID: user.id, kind: .text, text: text))
            }
            database.close()
        }
        let csv = try admin(["--database", path, "export", "--format", "csv"]).out
        let texts = csv.split(separator: "\r\n").dropFirst().map { line in
            line.split(separator: ",", maxSplits: 5, omittingEmptySubsequences: false).last.map(String.init) ?? ""
        }
        #expect(texts == ["'=cmd|' /C calc'!A0", "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "plain = fine"], "\(csv)")
    }

    @Test func commandsFailWhenTheirOutputCannotBeWritten() async throws {
        let fixture = try await AdminFixture()
        for command in [["stats"], ["users"], ["rooms"], ["search", "deploy"], ["export"], ["account", "list"]] {
            let child = try ChildProcess(executable("chat-admin"), ["--database", fixture.path] + command, stdoutPath: "/dev/full")
            #expect(child.waitForExit(timeout: 60) == 1, "\(command)")
        }
    }

    @Test func checkReportsAFileThatIsNotAChatDatabaseAndChangesNothing() async throws {
        let scratch = try Scratch()
        try scratch.write("empty.sqlite", "")
        let result = try admin(["--database", scratch.file("empty.sqlite"), "check"])
        #expect(result.status == 1)
        #expect(result.err.contains("not a chat database"))
        let size = try FileManager.default.attributesOfItem(atPath: scratch.file("empty.sqlite"))[.size] as? Int
        #expect(size == 0, "no schema was written into it")
    }

    @Test func backupRefusesLinksAndExistingFiles() async throws {
        let fixture = try await AdminFixture()
        let target = fixture.scratch.file("elsewhere/secret.sqlite")
        try FileManager.default.createSymbolicLink(atPath: fixture.scratch.file("dangling"), withDestinationPath: target)
        let result = try admin(["--database", fixture.path, "backup", fixture.scratch.file("dangling")])
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: target), "the link was not followed")
        #expect(try admin(["--database", fixture.path, "backup", fixture.path]).status == 1)
        let good = try admin(["--database", fixture.path, "backup", fixture.scratch.file("copy.sqlite")])
        #expect(good.status == 0, "\(good.err)")
    }

    @Test func readOnlyCommandsReadAWALDatabaseInAFolderThatCannotBeWritten() async throws {
        let scratch = try Scratch()
        let folder = scratch.file("archive")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/chat.sqlite"
        do {
            let database = try ChatDatabase.open(path: path)
            let user = try await database.recordLogin(name: "alice")
            let room = try await database.ensureRoom(named: "lobby")
            _ = try await database.appendMessage(MessageDraft(roomID: room.id, userID: user.id, kind: .text, text: "archived deploy notes"))
            database.close()
        }
        // SQLite cannot create the `-shm` index beside it there. Root writes through permission
        // bits, so root gets a read-only bind mount in a mount namespace of its own instead.
        let readOnlyRun: ([String]) throws -> (status: Int32, out: String, err: String)
        if getuid() == 0 {
            readOnlyRun = { arguments in
                let command = ([executable("chat-admin")] + arguments).map { "'\($0)'" }.joined(separator: " ")
                let script = "mount --bind '\(folder)' '\(folder)' && mount -o remount,bind,ro '\(folder)' && touch '\(folder)/probe' 2>/dev/null && exit 99; exec \(command)"
                let child = try ChildProcess("/usr/bin/unshare", ["-m", "/bin/sh", "-c", script])
                let status = child.waitForExit(timeout: 60) ?? -1
                _ = child.stdout.waitForEnd()
                _ = child.stderr.waitForEnd()
                return (status, child.stdout.text, child.stderr.text)
            }
        } else {
            #expect(chmod(folder, 0o555) == 0)
            readOnlyRun = { try admin($0) }
        }
        defer { _ = chmod(folder, 0o755) }
        let stats = try readOnlyRun(["--database", path, "stats"])
        #expect(stats.status == 0, "\(stats.err)")
        #expect(stats.out.contains("messages  1"), "\(stats.out)")
        let search = try readOnlyRun(["--database", path, "search", "deploy"])
        #expect(search.status == 0, "\(search.err)")
        #expect(search.out.contains("archived deploy notes"), "\(search.out)")
        let export = try readOnlyRun(["--database", path, "export", "--format", "json"])
        #expect(export.status == 0 && export.out.contains("archived deploy notes"), "\(export.err)")
        #expect(!FileManager.default.fileExists(atPath: path + "-shm"), "nothing was created beside it")
    }
}
