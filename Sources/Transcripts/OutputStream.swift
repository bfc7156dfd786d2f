import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Buffered output to a file descriptor: formats append bytes here and it writes in large
/// chunks, so exporting millions of messages costs a few thousand system calls.
public final class BufferedOutput {
    public var buffer: ByteBuffer
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let chunkSize: Int
    public private(set) var bytesWritten = 0

    public struct WriteError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Standard output.
    public convenience init() {
        self.init(descriptor: STDOUT_FILENO, ownsDescriptor: false)
    }

    public init(descriptor: Int32, ownsDescriptor: Bool, chunkSize: Int = 1 << 16) {
        self.descriptor = descriptor
        self.ownsDescriptor = ownsDescriptor
        self.chunkSize = chunkSize
        self.buffer = ByteBufferAllocator().buffer(capacity: chunkSize + 4096)
    }

    /// Creates (or truncates) the file at `path`.
    public static func file(_ path: String) throws -> BufferedOutput {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw WriteError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return BufferedOutput(descriptor: descriptor, ownsDescriptor: true)
    }

    /// Writes the buffer out once it holds a chunk.
    @inlinable
    public func flushIfFull() throws {
        if buffer.readableBytes >= (1 << 16) { try flush() }
    }

    public func write(_ text: String) throws {
        buffer.writeString(text)
        try flushIfFull()
    }

    public func flush() throws {
        while buffer.readableBytes > 0 {
            let written = buffer.withUnsafeReadableBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw WriteError(description: "write failed: \(String(cString: strerror(errno)))")
            }
            buffer.moveReaderIndex(forwardBy: written)
            bytesWritten += written
        }
        buffer.clear()
    }

    public func close() throws {
        try flush()
        if ownsDescriptor { Glibc.close(descriptor) }
    }
}
