/// Fits chat text into IRC lines: one message per line of the text, each at most a given number
/// of UTF-8 bytes, cut between words where it can, never inside a character (a grapheme cluster
/// longer than the limit on its own, which only a hostile text has, is cut between its scalars).
public enum IRCTextSplitter {
    /// RFC 1459's limit for a whole line, `\r\n` included (tags not counted: IRCv3 gives them
    /// their own 8,191 bytes).
    public static let maximumLineBytes = 512

    /// The bytes left for the text of `command target :text` sent from `source`.
    public static func textBudget(source: String, command: String, target: String) -> Int {
        let overhead = 1 + source.utf8.count + 1 + command.utf8.count + 1 + target.utf8.count + 2 + 2
        return max(maximumLineBytes - overhead, 1)
    }

    /// `text` split into pieces of at most `maxBytes` UTF-8 bytes: first at line breaks (`\n`,
    /// `\r\n`, `\r`; empty lines dropped, since IRC cannot send an empty message), then each line
    /// between words (at the last space that leaves the piece at least half full), else between
    /// characters. NUL is dropped: no IRC line may carry it.
    public static func split(_ text: String, maxBytes: Int) -> [String] {
        precondition(maxBytes >= 4, "a piece must hold any one scalar")
        var pieces: [String] = []
        for line in lines(of: text) where !line.isEmpty {
            split(line: line, maxBytes: maxBytes, into: &pieces)
        }
        return pieces
    }

    private static func lines(of text: String) -> [String] {
        var result: [String] = []
        var current = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\r":
                result.append(String(current)); current = String.UnicodeScalarView(); previousWasCR = true
            case "\n":
                if !previousWasCR { result.append(String(current)); current = String.UnicodeScalarView() }
                previousWasCR = false
            case "\0":
                previousWasCR = false
            default:
                current.append(scalar); previousWasCR = false
            }
        }
        result.append(String(current))
        return result
    }

    private static func split(line: String, maxBytes: Int, into pieces: inout [String]) {
        var piece = ""
        var pieceBytes = 0
        for character in line {
            let size = character.utf8.count
            if pieceBytes + size <= maxBytes {
                piece.append(character)
                pieceBytes += size
                continue
            }
            if size > maxBytes {
                // One character longer than a whole piece: flush, then cut it between scalars.
                if !piece.isEmpty { pieces.append(piece); piece = ""; pieceBytes = 0 }
                for scalar in character.unicodeScalars {
                    let scalarSize = String(scalar).utf8.count
                    if pieceBytes + scalarSize > maxBytes { pieces.append(piece); piece = ""; pieceBytes = 0 }
                    piece.unicodeScalars.append(scalar)
                    pieceBytes += scalarSize
                }
                continue
            }
            // Full: break at the last space if that keeps the piece at least half full.
            if let space = piece.lastIndex(of: " "), piece.utf8.distance(from: piece.utf8.startIndex, to: space.samePosition(in: piece.utf8)!) >= maxBytes / 2 {
                let head = String(piece[..<space])
                let tail = String(piece[piece.index(after: space)...])
                pieces.append(head)
                piece = tail
                pieceBytes = tail.utf8.count
            } else {
                pieces.append(piece)
                piece = ""
                pieceBytes = 0
            }
            if pieceBytes + size > maxBytes { pieces.append(piece); piece = ""; pieceBytes = 0 }
            piece.append(character)
            pieceBytes += size
        }
        if !piece.isEmpty { pieces.append(piece) }
    }
}
