import ChatProtocol
import PostgresNIO
import Storage

/// Full-text search on PostgreSQL: the `search` column (`to_tsvector('simple', text)`, GIN
/// indexed). The query syntax is the SQLite store's (FTS5), translated (`PostgresSearchQuery`).
extension PostgresStore {
    public func search(_ query: String, filter: MessageFilter, limit: Int?) throws -> [SearchHit] {
        let tsquery = try PostgresSearchQuery.translate(query)
        return try blocking {
            // $1 is the query; the filter's conditions follow it.
            var binds = PostgresBindings()
            binds.append(tsquery)
            var (conditions, filterBinds) = try Self.filtered(filter, extra: ["m.search @@ q.query"], binds: binds)
            let limitClause: String
            if let limit {
                filterBinds.append(Int64(limit))
                limitClause = "LIMIT $\(filterBinds.count)"
            } else {
                limitClause = ""
            }
            let sql = """
                SELECT m.id, m.ts, r.name, u.name, m.kind, m.text,
                    \(Self.recipientColumn),
                    ts_headline('simple', m.text, q.query, 'StartSel=' || chr(1) || ', StopSel=' || chr(2) || ', HighlightAll=true')
                FROM (SELECT to_tsquery('simple', $1) AS query) q, messages m
                JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id\(conditions)
                ORDER BY m.id DESC \(limitClause)
                """
            let rows = try await self.client.query(PostgresQuery(unsafeSQL: sql, binds: filterBinds), logger: self.logger)
            var hits: [SearchHit] = []
            for try await (id, ts, room, from, kind, text, to, highlighted) in rows.decode(
                (Int64, Int64, String, String, Int16, String, String?, String).self) {
                hits.append(SearchHit(message: Self.message((id, ts, room, from, kind, text, to)), highlightedText: highlighted))
            }
            return hits
        }
    }
}

/// The SQLite store's search syntax (FTS5's: words, `"phrases"`, `prefix*`, `AND`, `OR`, `NOT`,
/// parentheses; juxtaposition is AND) as a PostgreSQL `tsquery`. Words are split and folded the
/// way `to_tsvector('simple', …)` splits the text; anything else is a clear error.
enum PostgresSearchQuery {
    static func translate(_ query: String) throws -> String {
        var parser = Parser(tokens: try tokenize(query), query: query)
        let expression = try parser.expression()
        guard parser.position == parser.tokens.count else { throw parser.error("unexpected \(parser.tokens[parser.position])") }
        return expression
    }

    enum Token: Equatable, CustomStringConvertible {
        case word(String, prefix: Bool)
        case phrase(String)
        case and, or, not, open, close

        var description: String {
            switch self {
            case .word(let word, let prefix): return "\"\(word)\(prefix ? "*" : "")\""
            case .phrase(let phrase): return "\"\(phrase)\""
            case .and: return "AND"
            case .or: return "OR"
            case .not: return "NOT"
            case .open: return "("
            case .close: return ")"
            }
        }
    }

    static func tokenize(_ query: String) throws -> [Token] {
        var tokens: [Token] = []
        var index = query.startIndex
        while index < query.endIndex {
            let character = query[index]
            if character.isWhitespace {
                index = query.index(after: index)
            } else if character == "(" || character == ")" {
                tokens.append(character == "(" ? .open : .close)
                index = query.index(after: index)
            } else if character == "\"" {
                let start = query.index(after: index)
                guard let end = query[start...].firstIndex(of: "\"") else {
                    throw StorageError.invalidSearchQuery(query: query, reason: "unterminated string")
                }
                tokens.append(.phrase(String(query[start..<end])))
                index = query.index(after: end)
            } else {
                var end = index
                while end < query.endIndex, !query[end].isWhitespace, !"()\"".contains(query[end]) { end = query.index(after: end) }
                var word = String(query[index..<end])
                index = end
                switch word {
                case "AND": tokens.append(.and)
                case "OR": tokens.append(.or)
                case "NOT": tokens.append(.not)
                default:
                    let prefix = word.hasSuffix("*")
                    if prefix { word.removeLast() }
                    guard !word.isEmpty, !word.contains("*") else {
                        throw StorageError.invalidSearchQuery(query: query, reason: "syntax error near \"*\"")
                    }
                    tokens.append(.word(word, prefix: prefix))
                }
            }
        }
        guard !tokens.isEmpty else { throw StorageError.invalidSearchQuery(query: query, reason: "empty query") }
        return tokens
    }

    struct Parser {
        let tokens: [Token]
        let query: String
        var position = 0

        func error(_ reason: String) -> StorageError { .invalidSearchQuery(query: query, reason: reason) }

        // or := and (OR and)*
        mutating func expression() throws -> String {
            var terms = [try conjunction()]
            while position < tokens.count, tokens[position] == .or {
                position += 1
                terms.append(try conjunction())
            }
            return terms.count == 1 ? terms[0] : "(" + terms.joined(separator: " | ") + ")"
        }

        // and := not ((AND)? not)*, where "a NOT b" is a & !b
        mutating func conjunction() throws -> String {
            var result = try primary()
            while position < tokens.count {
                switch tokens[position] {
                case .and:
                    position += 1
                    result = "(\(result) & \(try primary()))"
                case .not:
                    position += 1
                    result = "(\(result) & !\(try primary()))"
                case .or, .close:
                    return result
                default:
                    result = "(\(result) & \(try primary()))"
                }
            }
            return result
        }

        mutating func primary() throws -> String {
            guard position < tokens.count else { throw error("syntax error at the end") }
            let token = tokens[position]
            position += 1
            switch token {
            case .open:
                let inner = try expression()
                guard position < tokens.count, tokens[position] == .close else { throw error("missing )") }
                position += 1
                return inner
            case .word(let word, let prefix):
                return try lexemes(word, prefix: prefix)
            case .phrase(let phrase):
                return try lexemes(phrase, prefix: false)
            default:
                throw error("syntax error near \(token)")
            }
        }

        /// The words of `text` as `simple` folds them (lower case, split at what is not a letter
        /// or digit), quoted for `to_tsquery`, one after the other (`<->`).
        func lexemes(_ text: String, prefix: Bool) throws -> String {
            let words = text.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init)
            guard !words.isEmpty else { throw error("\"\(text)\" has no word to search for") }
            var quoted = words.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }
            if prefix { quoted[quoted.count - 1] += ":*" }
            return quoted.count == 1 ? quoted[0] : "(" + quoted.joined(separator: " <-> ") + ")"
        }
    }
}
