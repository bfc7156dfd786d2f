import ChatClient
import ChatProtocol
import ChatTestSupport
import Foundation
import Testing

/// Runs a shell command line to completion; returns its status and standard output.
func shell(_ command: String) throws -> (status: Int32, out: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", command]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A self-signed certificate for 127.0.0.1 made by openssl, its key beside it.
func makeCertificate(in scratch: Scratch, name: String, commonName: String) throws {
    let result = try shell("""
        cd '\(scratch.path)' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
          -subj '/CN=\(commonName)' -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
          -keyout '\(name)-key.pem' -out '\(name).pem'
        """)
    guard result.status == 0 else { throw POSIXError(.EIO) }
}

/// The subject of the certificate a TLS server on 127.0.0.1:`port` presents.
func servedSubject(port: Int) throws -> String {
    try shell("openssl s_client -connect 127.0.0.1:\(port) </dev/null 2>/dev/null | openssl x509 -noout -subject").out
}

@Suite struct TLSTests {
    @Test func clientsTalkOverTLSAndTheCertificateIsCheckedUnlessToldOtherwise() async throws {
        let scratch = try Scratch()
        try makeCertificate(in: scratch, name: "server", commonName: "first")
        try scratch.write("config.json", #"""
            {"server":{"tls":true},"tls":{"certificate":"server.pem","key":"server-key.pem"},"limits":{"loginTimeoutSeconds":0},"log":{"messages":false}}
            """#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let port = String(server.port)

        let insecure = try pipeClient(["bot", "--port", port, "--tls", "--insecure"], input: "over tls\n")
        #expect(insecure.status == 0, "\(insecure.err)")
        #expect(insecure.out.contains("<bot> over tls"))
        let untrusted = try pipeClient(["bot", "--port", port, "--tls"], input: "x\n")
        #expect(untrusted.status == 1, "a self-signed certificate is not trusted by default")
        let trusted = try pipeClient(["bot", "--port", port, "--tls", "--ca-file", scratch.file("server.pem")], input: "trusted\n")
        #expect(trusted.status == 0, "\(trusted.err)")
        let plain = try pipeClient(["bot", "--port", port], input: "x\n")
        #expect(plain.status == 1, "no plain text on a TLS listener")

        // The library: a TLS session and its messages.
        let connection = try await ChatConnection.connect(host: "127.0.0.1", port: server.port, tls: ClientTLS(verifiesCertificate: false))
        _ = try await connection.login(name: "library", password: nil)
        _ = try await connection.join(room: "lobby", history: 5)
        #expect(try await connection.say(room: "lobby", text: "from the library").text == "from the library")
        await connection.quit()
    }

    @Test func sighupLoadsANewCertificateWithoutDroppingConnections() async throws {
        let scratch = try Scratch()
        try makeCertificate(in: scratch, name: "server", commonName: "first")
        try scratch.write("config.json", #"""
            {"server":{"tls":true},"tls":{"certificate":"server.pem","key":"server-key.pem"},"limits":{"loginTimeoutSeconds":0},"log":{"messages":false}}
            """#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        #expect(try servedSubject(port: server.port).contains("first"))
        let connection = try await ChatConnection.connect(host: "127.0.0.1", port: server.port, tls: ClientTLS(verifiesCertificate: false))
        _ = try await connection.login(name: "staying", password: nil)

        try makeCertificate(in: scratch, name: "server", commonName: "second")
        server.child.signal(SIGHUP)
        #expect(server.child.stderr.wait(for: "certificate and key re-read"))
        #expect(try servedSubject(port: server.port).contains("second"))
        try await connection.ping()

        // A broken file is reported; the certificate in use stays.
        try scratch.write("server.pem", "not a certificate")
        server.child.signal(SIGHUP)
        #expect(server.child.stderr.wait(for: "the old one stays in use"))
        #expect(try servedSubject(port: server.port).contains("second"))
        try await connection.ping()
        await connection.quit()
    }

    @Test func unusableCertificatesStopTheServerAtStart() async throws {
        let scratch = try Scratch()
        try scratch.write("missing.json", #"{"server":{"tls":true,"port":0},"tls":{"certificate":"none.pem","key":"none-key.pem"}}"#)
        let missing = try runToCompletion("chat-server", ["--config", scratch.file("missing.json")])
        #expect(missing.status == 78)
        #expect(missing.err.contains("none.pem"))
        try scratch.write("unset.json", #"{"server":{"tls":true,"port":0}}"#)
        let unset = try runToCompletion("chat-server", ["--config", scratch.file("unset.json")])
        #expect(unset.status == 78)
        #expect(unset.err.contains("tls.certificate"))
    }

    @Test func theIRCListenerSpeaksTLSWhenAsked() async throws {
        let scratch = try Scratch()
        try makeCertificate(in: scratch, name: "server", commonName: "irc")
        try scratch.write("config.json", #"""
            {"irc":{"enabled":true,"port":0,"tls":true},"tls":{"certificate":"server.pem","key":"server-key.pem"},
             "limits":{"loginTimeoutSeconds":0},"log":{"messages":false}}
            """#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let ircPort = try server.announcedPort(of: "irc")
        #expect(try servedSubject(port: ircPort).contains("CN = irc"))
        // QUIT waits behind the login, so the session ends by itself after its welcome.
        let session = try shell("""
            printf 'NICK tlsuser\\r\\nUSER t 0 * :t\\r\\nQUIT :done\\r\\n' \
              | timeout 30 openssl s_client -quiet -ign_eof -connect 127.0.0.1:\(ircPort) 2>/dev/null
            """)
        #expect(session.out.contains(" 001 tlsuser "), "\(session.out)")
        #expect(session.out.contains("ERROR :Closing link"))
        // The native listener stays plain text.
        let plain = try pipeClient(["bot", "--port", String(server.port)], input: "plain\n")
        #expect(plain.status == 0, "\(plain.err)")
    }

    @Test func theWebListenerServesHTTPSWhenAsked() async throws {
        let scratch = try Scratch()
        try makeCertificate(in: scratch, name: "server", commonName: "web")
        try scratch.write("config.json", #"""
            {"web":{"enabled":true,"port":0,"tls":true},"tls":{"certificate":"server.pem","key":"server-key.pem"},
             "log":{"messages":false}}
            """#)
        let server = try ServerProcess(config: scratch.file("config.json"))
        let webPort = try server.announcedPort(of: "web")
        #expect(try servedSubject(port: webPort).contains("CN = web"))
        let health = try shell("""
            printf 'GET /healthz HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' \
              | timeout 30 openssl s_client -quiet -ign_eof -connect 127.0.0.1:\(webPort) 2>/dev/null
            """)
        #expect(health.out.contains("HTTP/1.1 200 OK"), "\(health.out)")
        #expect(health.out.contains(#""status":"ok""#))
    }
}
