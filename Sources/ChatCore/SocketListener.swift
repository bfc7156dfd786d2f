import CServerSupport
import Foundation
import Logging
import NIOCore
import Synchronization

/// A TCP listener whose connections the server accepts itself, on a thread of its own, and then
/// hands to NIO (`ClientBootstrap.withConnectedSocket`): unlike a `ServerBootstrap`'s, each
/// connection's socket is known to its handlers, so plain TCP connections can be written
/// straight to their sockets (`ConnectionWriter`). Accepted sockets are close-on-exec.
package final class SocketListener: Sendable {
    /// The port it listens on (the real one when asked for port 0).
    package let port: Int
    private let descriptor: CInt
    /// Succeeded when the accepting thread returns (at once when it never started).
    private let stopped: EventLoopPromise<Void>
    private let started = Mutex(false)

    /// Binds `host:port` (port 0: any free port) and listens; `start` begins accepting.
    package init(host: String, port: Int, backlog: CInt, loop: any EventLoop) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family = address.protocol.rawValue
        let descriptor = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        do {
            var on: CInt = 1
            guard setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
                throw IOError(errnoCode: errno, reason: "setsockopt(SO_REUSEADDR)")
            }
            let bound = address.withSockAddr { pointer, length in Glibc.bind(descriptor, pointer, socklen_t(length)) }
            guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind(\(host):\(port))") }
            guard listen(descriptor, backlog) == 0 else { throw IOError(errnoCode: errno, reason: "listen") }
            self.port = try Self.boundPort(of: descriptor)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        self.descriptor = descriptor
        self.stopped = loop.makePromise()
    }

    private static func boundPort(of descriptor: CInt) throws -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        let family = CInt(storage.ss_family)
        let port: UInt16 = withUnsafePointer(to: &storage) { pointer in
            switch family {
            case AF_INET6: pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }
            default: pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }
            }
        }
        return Int(UInt16(bigEndian: port))
    }

    /// Accepts connections until `close`, handing each socket to `accepted` (on the accepting
    /// thread), which owns it from then on.
    package func start(logger: Logger, _ accepted: @escaping @Sendable (CInt) -> Void) {
        started.withLock { $0 = true }
        let descriptor = self.descriptor
        let stopped = self.stopped
        let thread = Thread {
            while true {
                let socket = chat_accept_cloexec(descriptor)
                if socket >= 0 {
                    accepted(socket)
                    continue
                }
                switch errno {
                case EINTR, ECONNABORTED, EPROTO, EPERM:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors or memory: connections wait in the backlog until some
                    // close; try again shortly rather than spin.
                    logger.warning("accept: \(String(cString: strerror(errno))); retrying in 100 ms")
                    usleep(100_000)
                default:
                    // Shut down by `close` (EINVAL), or a listener that can no longer accept.
                    stopped.succeed(())
                    return
                }
            }
        }
        thread.name = "chat-accept-\(port)"
        thread.start()
    }

    /// Stops accepting (the thread returns) and closes the listening socket.
    package func close() async {
        Glibc.shutdown(descriptor, CInt(SHUT_RDWR))
        if !started.withLock({ $0 }) { stopped.succeed(()) }
        try? await stopped.futureResult.get()
        Glibc.close(descriptor)
    }
}
