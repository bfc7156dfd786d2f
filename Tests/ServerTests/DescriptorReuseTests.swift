import ChatTestSupport
import Foundation
import NIOCore
import NIOPosix
import ChatCore
import Server
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The direct write path never writes to a descriptor that NIO has closed, whatever the kernel
/// has given its number to since (ConnectionWriter's comment has NIO's close order).
@Suite struct DescriptorReuseTests {
    /// Keeps the handler context of the connection it is added to.
    final class ContextKeeper: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var context: ChannelHandlerContext?
        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    }

    /// What the closed connection's writer sent to the socket that took its number, if one did
    /// (filled in on the event loop).
    final class Outcome: @unchecked Sendable {
        var reusedNumber = false
        var leaked: [UInt8] = []
    }

    /// A connection over one end of a socket pair, its writer writing straight to that end. The
    /// channel is closed; in the close promise's callback (after NIO closed the descriptor, before
    /// `channelInactive`), a new socket pair takes the freed number and the old writer writes.
    func writeAfterClose(on loop: any EventLoop) async throws -> Outcome {
        var ends: [CInt] = [0, 0]
        guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &ends) == 0 else { throw IOError(errnoCode: errno, reason: "socketpair") }
        defer { close(ends[1]) }
        let keeper = ContextKeeper()
        _ = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(keeper) } }
            .withConnectedSocket(ends[0]).get()
        let descriptor = ends[0]
        return try await loop.submit {
            let context = try #require(keeper.context)
            let writer = ConnectionWriter(context: context, socket: descriptor)
            writer.write(writer.allocator.buffer(string: "before\n"), flush: true)
            let outcome = Outcome()
            let closed = loop.makePromise(of: Void.self)
            closed.futureResult.whenComplete { _ in
                // The descriptor is closed and the channel not yet inactive to its handlers: take
                // the lowest free numbers until the old one comes back (or give up: another test's
                // thread took it), then write through the old writer.
                var extra: [CInt] = []
                var taker: [CInt] = [-1, -1]
                for _ in 0..<32 {
                    var pair: [CInt] = [0, 0]
                    guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0, &pair) == 0 else { break }
                    if pair.contains(descriptor) { taker = pair; break }
                    extra += pair
                }
                extra.forEach { close($0) }
                guard taker[0] >= 0 else { return }
                outcome.reusedNumber = true
                writer.write(writer.allocator.buffer(string: "LEAK\n"), flush: true)
                writer.flush()
                let other = taker[0] == descriptor ? taker[1] : taker[0]
                var bytes = [UInt8](repeating: 0, count: 64)
                let count = recv(other, &bytes, bytes.count, CInt(MSG_DONTWAIT))
                if count > 0 { outcome.leaked = Array(bytes.prefix(count)) }
                close(taker[0])
                close(taker[1])
            }
            context.channel.close(promise: closed)
            return outcome
        }.get()
    }

    @Test func aWriteAfterNIOClosedTheSocketNeverReachesTheSocketThatTookItsNumber() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var reused = 0
        for _ in 0..<20 where reused < 5 {
            let outcome = try await writeAfterClose(on: group.next())
            if outcome.reusedNumber { reused += 1 }
            #expect(outcome.leaked.isEmpty, "the closed connection's bytes reached another socket: \(String(decoding: outcome.leaked, as: UTF8.self))")
        }
        #expect(reused > 0, "the freed number was never taken again, so nothing was tested")
        try await group.shutdownGracefully()
    }

    /// Under churn (members of a busy room that vanish, newcomers who take their descriptor
    /// numbers), no newcomer ever receives a byte of a room it did not join, and every line it
    /// gets is a whole frame.
    @Test(arguments: [true, false]) func churnNeverSendsARoomsBytesToANewcomer(directWrites: Bool) async throws {
        try await withServer(inMemory: true, { $0.server.directWrites = directWrites; $0.limits.rate = nil }) { server in
            let sender = try server.user("sender")
            try sender.join("lobby")
            let stop = Atomic(false)
            let talking = BackgroundThread {
                var said = 0
                while !stop.load(ordering: .relaxed) && said < 20_000 {
                    sender.send(["type": "say", "room": "lobby", "text": "busy \(said) " + String(repeating: "x", count: 200)])
                    said += 1
                    if said % 50 == 0 { _ = try sender.request(["type": "ping"]) }
                }
                return said
            }
            for round in 0..<8 {
                // Members who join the busy room and vanish without a word, mid-stream.
                for index in 0..<12 {
                    let member = try LineClient(port: server.port, receiveBuffer: 4096)
                    try member.login("member\(round)x\(index)")
                    try member.join("lobby")
                }
                // Newcomers take the freed numbers; they join nothing.
                for index in 0..<12 {
                    let newcomer = try LineClient(port: server.port)
                    try newcomer.login("new\(round)x\(index)")
                    newcomer.send(["type": "ping", "id": "p"])
                    var frames: [Frame] = []
                    while true {
                        let frame = try newcomer.next()
                        frames.append(frame)
                        if frame.type == "pong" { break }
                    }
                    #expect(frames.allSatisfy { $0.room == nil && $0.type != "message" },
                            "a newcomer got another connection's bytes: \(frames.map(\.line))")
                }
            }
            stop.store(true, ordering: .relaxed)
            #expect(try await talking.value > 0)
        }
    }
}
