import ChatConfiguration

/// libFuzzer's entry: one configuration file's bytes, parsed and validated as the server does.
/// Any input is a configuration or a `ConfigurationError`; nothing may crash or hang.
/// libFuzzer supplies `main`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? ServerConfiguration.parse(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
