import IRCProtocol

/// libFuzzer's entry: one IRC line, parsed; whatever parses must serialize and parse back to the
/// same message (a round trip an IRC client relies on). libFuzzer supplies `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIRC(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let message = try? IRCMessage.parse(bytes: bytes) else { return 0 }
    // Round trips are checked for what the listener hands the parser: a line split at LF (so
    // none inside), valid UTF-8 without NUL or CR.
    guard String(validating: bytes, as: UTF8.self) != nil,
          !bytes.contains(where: { $0 == 0 || $0 == 13 || $0 == 10 }) else { return 0 }
    // The text of any message, split for IRC lines: every piece fits and is not empty, and
    // every scalar but line breaks, NUL and the spaces broken at comes through, in order.
    if let text = message.parameters.last {
        let dropped: Set<Unicode.Scalar> = [" ", "\r", "\n", "\0"]
        let significant = { (text: String) -> [Unicode.Scalar] in text.unicodeScalars.filter { !dropped.contains($0) } }
        for limit in [4, 37, 400] {
            let pieces = IRCTextSplitter.split(text, maxBytes: limit)
            if pieces.contains(where: { $0.utf8.count > limit || $0.isEmpty }) || significant(pieces.joined()) != significant(text) {
                fatalError("split of \(text.debugDescription) at \(limit) gave \(pieces)")
            }
        }
    }
    let again = try? IRCMessage.parse(message.serialized())
    if again != message, message.parameters.allSatisfy({ !$0.isEmpty && !$0.hasPrefix(":") }) || message.parameters.isEmpty {
        // Middle parameters that are empty or start with ':' cannot be written back as
        // they came; everything else must round-trip.
        fatalError("round trip changed \(message) into \(String(describing: again))")
    }
    return 0
}
