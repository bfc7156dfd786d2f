import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic time in seconds.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// A small deterministic generator (SplitMix64): benchmarks repeat exactly.
struct SplitMix: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Words with a Zipf-like frequency, so searches see realistic posting-list sizes.
struct Vocabulary {
    let words: [String]
    private let cumulative: [Double]

    init(size: Int, seed: UInt64) {
        var generator = SplitMix(seed: seed)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var seen = Set<String>()
        var words: [String] = []
        while words.count < size {
            let length = Int.random(in: 3...9, using: &generator)
            let word = String((0..<length).map { _ in letters[Int.random(in: 0..<26, using: &generator)] })
            if seen.insert(word).inserted { words.append(word) }
        }
        self.words = words
        var total = 0.0
        cumulative = (1...size).map { rank in
            total += 1.0 / Double(rank)
            return total
        }
    }

    func word(using generator: inout SplitMix) -> String {
        let target = Double.random(in: 0..<cumulative.last!, using: &generator)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return words[low]
    }

    func sentence(using generator: inout SplitMix) -> String {
        (0..<Int.random(in: 5...20, using: &generator)).map { _ in word(using: &generator) }.joined(separator: " ")
    }
}

/// Percentiles of a sample, in the sample's unit.
struct Summary {
    let sorted: [Double]

    init(_ values: [Double]) { sorted = values.sorted() }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let index = Swift.min(sorted.count - 1, Swift.max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[index]
    }

    var median: Double { percentile(50) }
    var max: Double { sorted.last ?? 0 }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// `1234567.8` as `1,234,568`.
func grouped(_ value: Double) -> String {
    let digits = String(Int(value.rounded()))
    var result = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 && digit != "-" { result.append(",") }
        result.append(digit)
    }
    return result
}

func milliseconds(_ seconds: Double) -> String {
    String(format: "%.2f ms", seconds * 1000)
}

/// The folder of this executable (where `chat-admin` and `chat-server` sit after a build).
var productsFolder: String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
}

/// Runs a child process to completion; returns wall seconds, exit status and peak RSS (KiB).
func measureProcess(_ path: String, _ arguments: [String]) throws -> (seconds: Double, status: Int32, maxRSSKiB: Int) {
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    defer { posix_spawn_file_actions_destroy(&actions) }
    let start = now()
    let result = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    let elapsed = now() - start
    return (elapsed, (status >> 8) & 0xFF, usage.ru_maxrss)
}

/// The one JSON line every benchmark prints on stdout.
func printReport(_ report: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
}
