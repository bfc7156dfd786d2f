import ChatTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

@Suite struct SpawnTests {
    /// The daemons the tests start (PostgreSQL, tmux) get none of the test process's descriptors:
    /// one holding an in-process server's accepted socket (NIO does not set close-on-exec) kept
    /// that connection open after the server closed it.
    @Test func aSpawnedCommandInheritsNoDescriptorButItsStandardOnes() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(fcntl(ends[0], F_GETFD) & FD_CLOEXEC == 0, "inheritable, as NIO's sockets are")
        let output = FileManager.default.temporaryDirectory.appending(path: "spawn-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        // ls lists its own descriptors: the three standard ones and the one it reads the folder with.
        #expect(try spawnAndWait(["ls", "/proc/self/fd"], outputPath: output) == 0)
        let listed = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
        #expect(!listed.contains(ends[0]) && !listed.contains(ends[1]))
        #expect(listed.count == 4, "\(listed)")
    }
}
