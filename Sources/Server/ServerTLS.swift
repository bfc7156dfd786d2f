import ChatConfiguration
import NIOSSL
import Synchronization

/// The server's certificate chain and key (`tls.certificate`, `tls.key`), as a TLS context for
/// new connections. A reload (SIGHUP) reads the files again; connections already open keep the
/// context they started with, so nobody is dropped.
public final class ServerTLS: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let context: Mutex<NIOSSLContext>

    /// Loads the PEM files; throws a message naming the file that cannot be used.
    public init(certificate: String, key: String) throws {
        certificatePath = certificate
        keyPath = key
        context = Mutex(try Self.load(certificate: certificate, key: key))
    }

    /// The TLS settings of `configuration`, or nil when no listener asks for TLS.
    public convenience init?(_ configuration: ServerConfiguration) throws {
        guard configuration.server.tls || configuration.irc.tls || configuration.web.tls, let certificate = configuration.tls.certificate, let key = configuration.tls.key else { return nil }
        try self.init(certificate: certificate, key: key)
    }

    /// The context new connections get.
    var current: NIOSSLContext { context.withLock { $0 } }

    /// Reads the files again; on failure the old certificate stays in use.
    public func reload() throws {
        let fresh = try Self.load(certificate: certificatePath, key: keyPath)
        context.withLock { $0 = fresh }
    }

    private static func load(certificate: String, key: String) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw TLSFileError("tls.certificate \(certificate): not a readable PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw TLSFileError("tls.certificate \(certificate): no certificate in the file") }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw TLSFileError("tls.key \(key): not a readable PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSFileError("tls.certificate and tls.key do not make a usable pair: \(error)")
        }
    }
}

/// A certificate or key file that cannot be used.
public struct TLSFileError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
