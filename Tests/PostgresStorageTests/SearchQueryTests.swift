@testable import PostgresStorage
import Storage
import Testing

/// The SQLite store's search syntax (FTS5's) as a PostgreSQL `tsquery`: no database needed.
@Suite struct SearchQueryTests {
    @Test(arguments: [
        ("deploy", "'deploy'"),
        ("Deploy friday", "('deploy' & 'friday')"),
        ("deploy AND friday", "('deploy' & 'friday')"),
        ("deploy OR ship", "('deploy' | 'ship')"),
        ("depl*", "'depl':*"),
        ("deploy NOT lunch", "('deploy' & !'lunch')"),
        ("\"on friday\"", "('on' <-> 'friday')"),
        ("(deploy OR ship) friday", "(('deploy' | 'ship') & 'friday')"),
        ("don't", "('don' <-> 't')"),
        ("o'brien*", "('o' <-> 'brien':*)"),
    ])
    func translates(query: String, tsquery: String) throws {
        #expect(try PostgresSearchQuery.translate(query) == tsquery)
    }

    @Test(arguments: ["", "   ", "(deploy", "\"deploy", "deploy AND", "AND deploy", "*", "de*ploy", "deploy AND NOT lunch", "\"!!\"", ")"])
    func refusesWhatFTS5Refuses(query: String) {
        #expect(throws: StorageError.self) { try PostgresSearchQuery.translate(query) }
    }
}
