import ChatTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The folder holding this build's executables (beside the test bundle).
let productsFolder: URL = {
    let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return testBinary.deletingLastPathComponent()
}()

func executable(_ name: String) -> String {
    productsFolder.appending(path: name).path
}

/// A fresh temporary folder, removed at deinit.
final class Scratch: @unchecked Sendable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appending(path: "chat-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Output collected from a pipe on a thread of its own.
final class PipeReader: @unchecked Sendable {
    private let lock = NSCondition()
    private var data = Data()
    private var isFinished = false

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            while true {
                let chunk = handle.availableData
                lock.lock()
                if chunk.isEmpty { isFinished = true } else { data.append(chunk) }
                lock.broadcast()
                lock.unlock()
                if chunk.isEmpty { return }
            }
        }.start()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits until the output contains `needle` (or the pipe closes, or time runs out).
    func wait(for needle: String, timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while !String(decoding: data, as: UTF8.self).contains(needle) {
            if isFinished || !lock.wait(until: deadline) { return String(decoding: data, as: UTF8.self).contains(needle) }
        }
        return true
    }

    /// Waits until the pipe is closed (the process ended).
    func waitForEnd(timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while !isFinished {
            if !lock.wait(until: deadline) { return isFinished }
        }
        return true
    }
}

/// A process of ours, with its output captured; killed at deinit if still running.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let stdout: PipeReader
    let stderr: PipeReader

    /// `captureOutput: false` sends output to /dev/null: for commands that leave a daemon
    /// behind (tmux), which would hold the pipes open.
    init(_ executablePath: String, _ arguments: [String], directory: String? = nil, environment: [String: String] = [:],
         stdin: Pipe? = nil, captureOutput: Bool = true, stdoutPath: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executablePath)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = captureOutput ? out : FileHandle.nullDevice
        if let stdoutPath, let file = FileHandle(forWritingAtPath: stdoutPath) { process.standardOutput = file }
        process.standardError = captureOutput ? err : FileHandle.nullDevice
        process.standardInput = stdin ?? FileHandle.nullDevice
        stdout = PipeReader(out)
        stderr = PipeReader(err)
        if !captureOutput {
            try? out.fileHandleForWriting.close()
            try? err.fileHandleForWriting.close()
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the exit and returns its status.
    func waitForExit(timeout: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            usleep(10_000)
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A `chat-server` process on a free port.
final class ServerProcess: @unchecked Sendable {
    let child: ChildProcess
    let port: Int

    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    init(config: String, extraArguments: [String] = ["--port", "0"], directory: String? = nil, environment: [String: String] = [:]) throws {
        child = try ChildProcess(executable("chat-server"), ["--config", config] + extraArguments, directory: directory, environment: environment)
        guard child.stdout.wait(for: "\n") else {
            throw StartFailure(description: "chat-server did not start: \(child.stderr.text)")
        }
        let line = child.stdout.text.split(separator: "\n").first.map(String.init) ?? ""
        guard line.hasPrefix("listening on "), let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw StartFailure(description: "unexpected first line \(line.debugDescription); stderr: \(child.stderr.text)")
        }
        self.port = port
    }

    /// The port of the `listener` (`irc`, `web`, `metrics`) from its `LISTENER listening on
    /// HOST:PORT` line, once printed.
    func announcedPort(of listener: String) throws -> Int {
        let prefix = "\(listener) listening on 127.0.0.1:"
        guard child.stdout.wait(for: prefix),
              let line = child.stdout.text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
              let port = Int(line.dropFirst(prefix.count)) else {
            throw StartFailure(description: "no \(prefix)PORT line; stdout: \(child.stdout.text)")
        }
        return port
    }

    func client() throws -> LineClient {
        try LineClient(port: port)
    }

    func user(_ name: String) throws -> LineClient {
        let client = try client()
        try client.login(name)
        return client
    }
}

/// Runs one of our executables to completion, with `input` (if any) on its standard input;
/// returns its exit status and what it printed.
func runToCompletion(_ name: String, _ arguments: [String], input: String? = nil, directory: String? = nil,
                     environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let stdin = input.map { _ in Pipe() }
    let child = try ChildProcess(executable(name), arguments, directory: directory, environment: environment, stdin: stdin)
    if let stdin, let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    let status = child.waitForExit(timeout: 60) ?? -1
    _ = child.stdout.waitForEnd()
    _ = child.stderr.waitForEnd()
    return (status, child.stdout.text, child.stderr.text)
}
