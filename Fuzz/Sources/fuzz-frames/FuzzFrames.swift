import ChatProtocol

/// libFuzzer's entry: one client line (without its newline), decoded as the server decodes it,
/// then the checks the server applies to the fields. Anything may be thrown as a
/// `ProtocolError`; nothing may crash, hang or leak. libFuzzer supplies `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = UnsafeBufferPointer(start: data, count: size)
    if let frame = try? ClientFrame.decode(line: line) {
        switch frame.request {
        case .login(let name, _, _): _ = Names.isValidUserName(name, maximumLength: 32)
        case .join(let room, _), .leave(let room), .who(let room): _ = Names.canonicalRoom(room)
        case .say(_, let text, _, _, _): _ = Names.problem(withText: text, maximumBytes: 2000)
        default: break
        }
    }
    return 0
}
