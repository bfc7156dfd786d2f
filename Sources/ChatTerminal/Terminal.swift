#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The controlling terminal: raw mode on and, on every way out, off again.
public enum Terminal {
    /// The terminal settings before raw mode, restored at exit (also from signal handlers).
    nonisolated(unsafe) private static var saved = termios()
    private static let isRaw = Atomic(false)

    public static func isTerminal(_ descriptor: Int32) -> Bool {
        isatty(descriptor) == 1
    }

    /// Columns and rows (80×24 when unknown).
    public static func size() -> (columns: Int, rows: Int) {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return (80, 24) }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    /// Raw input: no echo, no line buffering, no signals from keys (Ctrl+C arrives as a byte),
    /// output processing kept so `\n` still moves to the next line's start.
    public static func enableRawMode() {
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { return }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        raw.c_cc.6 = 1 // VMIN
        raw.c_cc.5 = 0 // VTIME
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
        isRaw.store(true, ordering: .sequentiallyConsistent)
        atexit { Terminal.restore() }
        for signal in [SIGTERM, SIGHUP, SIGQUIT] {
            Glibc.signal(signal) { number in
                Terminal.restore()
                Glibc.signal(number, SIG_DFL)
                raise(number)
            }
        }
    }

    /// Puts the terminal back as it was. Safe to call more than once, and from a signal handler.
    public static func restore() {
        guard isRaw.exchange(false, ordering: .sequentiallyConsistent) else { return }
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
        let reset = "\u{1B}[0m\r\n"
        _ = reset.withCString { Glibc.write(STDOUT_FILENO, $0, strlen($0)) }
    }

    /// Reads a line with echo off (for passwords).
    public static func readSecret(prompt: String) -> String? {
        write(prompt)
        var settings = termios()
        let hasTerminal = tcgetattr(STDIN_FILENO, &settings) == 0
        if hasTerminal {
            var quiet = settings
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        }
        defer {
            if hasTerminal { tcsetattr(STDIN_FILENO, TCSAFLUSH, &settings) }
            write("\n")
        }
        return readLine(strippingNewline: true)
    }

    public static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
