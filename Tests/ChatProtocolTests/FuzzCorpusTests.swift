import ChatConfiguration
import ChatProtocol
import Foundation
import Testing

/// Replays the fuzzers' checked-in inputs (Fuzz/corpus: seeds; Fuzz/regressions: inputs that once
/// crashed or hung a target) through the same entry points, in every plain `swift test` run, so a
/// crash that fuzzing found stays fixed without the fuzzing toolchain. docs/fuzzing.md.
@Suite struct FuzzCorpusTests {
    static let fuzzFolder = URL(filePath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appending(path: "Fuzz")

    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        var result: [(String, [UInt8])] = []
        for folder in ["corpus", "regressions"] {
            let directory = fuzzFolder.appending(path: folder).appending(path: target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            for name in names.sorted() where !name.hasPrefix(".") {
                result.append(("\(folder)/\(target)/\(name)", Array(try Data(contentsOf: directory.appending(path: name)))))
            }
        }
        return result
    }

    @Test func everyFrameInputDecodesOrIsRefusedWithAnError() throws {
        let inputs = try Self.inputs("frames")
        #expect(inputs.count >= 16, "the seed corpus is missing")
        var decoded = 0
        for input in inputs {
            let frame = input.bytes.withUnsafeBufferPointer { try? ClientFrame.decode(line: $0) }
            if frame != nil { decoded += 1 }
        }
        // The seeds are mostly valid frames: if none decodes, the decoder (or the corpus) broke.
        #expect(decoded >= 10)
    }

    @Test func everyConfigInputParsesOrIsRefusedWithAnError() throws {
        let inputs = try Self.inputs("config")
        #expect(inputs.count >= 3, "the seed corpus is missing")
        var parsed = 0
        for input in inputs where (try? ServerConfiguration.parse(input.bytes)) != nil { parsed += 1 }
        #expect(parsed >= 1)
    }
}
