import ArgumentParser
import ChatProtocol
import Foundation
import NIOCore
import Storage
import Transcripts

struct Search: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Full-text search (SQLite FTS5 query syntax), newest first.",
        discussion: """
            Examples: chat-admin search 'deploy AND friday' --room ops --since 7d
                      chat-admin search '"exact phrase"' --format json
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, ndjson, csv
    }

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Argument(help: "The FTS5 query: words, \"phrases\", AND, OR, NOT, prefix*.")
    var query: String
    @OptionGroup var filters: FilterOptions
    @Option(help: "At most this many matches (default: all).")
    var limit: Int?
    @Option(help: "text, json, ndjson or csv.")
    var format: Format = .text

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        try reporting {
            let store = try database.openReadOnly()
            let hits: [SearchHit]
            do {
                hits = try store.search(query, filter: filters.filter, limit: limit)
            } catch let error as StorageError {
                throw UsageFailure("\(error)")
            }
            let output = BufferedOutput()
            switch format {
            case .text:
                let writer = TextWriter(output: output, highlight: colorsEnabled ? .terminal : nil)
                for hit in hits {
                    try writer.write(hit.message, markedText: hit.highlightedText, start: SearchHit.highlightStart, end: SearchHit.highlightEnd)
                }
            case .json, .ndjson, .csv:
                let writer = TranscriptFormat(rawValue: format.rawValue)!.writer(to: output)
                try writer.begin()
                for hit in hits { try writer.write(hit.message) }
                try writer.end()
            }
            try output.close()
        }
    }
}

struct Export: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "The transcript in id order, streamed (grouped by room and day for markdown and html).",
        discussion: "Example: chat-admin export --room lobby --since 2026-11-01 --format html --output lobby.html")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @OptionGroup var filters: FilterOptions
    @Option(help: "text, json, ndjson, csv, markdown or html.")
    var format: TranscriptFormat = .text
    @Option(help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    func run() async throws {
        try reporting {
            let store = try database.openReadOnly()
            let filter = filters.filter
            let destination = try output.map(BufferedOutput.file) ?? BufferedOutput()
            let progress = output != nil && isTerminal(STDERR_FILENO)
                ? ProgressBar(total: try store.countMessages(matching: filter)) : nil
            let title = "Chat transcript" + (filter.room.map { " of #\($0)" } ?? "")
            let writer = format.writer(to: destination, title: title)
            try writer.begin()
            var count = 0
            let body: (ChatMessage) throws -> Void = { message in
                try writer.write(message)
                count += 1
                progress?.update(count)
            }
            if format.groupsByRoom, filter.room == nil {
                // Each room, then each direct conversation, under a heading of its own.
                for room in try store.roomsWithMessageCounts().map(\.room.name) + store.conversationRoomNames() {
                    var roomFilter = filter
                    roomFilter.room = room
                    try store.forEachMessage(matching: roomFilter, body)
                }
            } else {
                try store.forEachMessage(matching: filter, body)
            }
            try writer.end()
            try destination.close()
            progress?.finish(count)
            if let output { printError("exported \(grouped(count)) messages to \(output)") }
        }
    }
}

/// A progress bar on standard error: `[#####.....]  50%  500,000 / 1,000,000`.
final class ProgressBar {
    private let total: Int
    private var lastShown = -1

    init(total: Int) {
        self.total = total
    }

    func update(_ count: Int) {
        guard total > 0 else { return }
        let percent = count * 100 / total
        guard percent != lastShown else { return }
        lastShown = percent
        let filled = percent * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(String(percent).leftPadded(3))%  \(grouped(count)) / \(grouped(total))".utf8))
    }

    func finish(_ count: Int) {
        if lastShown >= 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    func rightPadded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

enum ListFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `2026-11-21T09:30:00.125Z`, or `-` for none.
func timeText(_ milliseconds: Int64?) -> String {
    milliseconds.map(Timestamp.string) ?? "-"
}

func jsonTime(_ milliseconds: Int64?) -> JSONValue {
    milliseconds.map { .string(Timestamp.string($0)) } ?? .null
}

func printJSON(_ value: JSONValue) throws {
    var buffer = ByteBuffer()
    buffer.writeJSON(value)
    buffer.writeString("\n")
    let output = BufferedOutput()
    output.buffer.writeImmutableBuffer(buffer)
    try output.close()
}

struct Stats: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(abstract: "Totals, activity per room and per user, and messages per day as a chart.")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Option(help: "text or json.")
    var format: ListFormat = .text

    func run() async throws {
        try reporting {
            let stats = try database.openReadOnly().statistics()
            switch format {
            case .json:
                func activity(_ rows: [ActivitySummary]) -> JSONValue {
                    .array(rows.map { .object(["name": .string($0.name), "messages": .integer(Int64($0.messages)),
                                               "first": jsonTime($0.firstMessage), "last": jsonTime($0.lastMessage)]) })
                }
                try printJSON(.object([
                    "messages": .integer(Int64(stats.messages)), "users": .integer(Int64(stats.users)),
                    "rooms": .integer(Int64(stats.rooms)), "first": jsonTime(stats.firstMessage), "last": jsonTime(stats.lastMessage),
                    "perRoom": activity(stats.perRoom), "perUser": activity(stats.perUser),
                    "perDay": .array(stats.perDay.map { .object(["day": .string(String(Timestamp.string($0.day * 86_400_000).prefix(10))),
                                                                 "messages": .integer(Int64($0.messages))]) }),
                ]))
            case .text:
                var lines = [
                    "messages  \(grouped(stats.messages))    users  \(grouped(stats.users))    rooms  \(grouped(stats.rooms))",
                    "first     \(timeText(stats.firstMessage))",
                    "last      \(timeText(stats.lastMessage))",
                ]
                func table(_ title: String, _ rows: [ActivitySummary]) {
                    lines.append("")
                    lines.append(title)
                    let width = max(8, rows.map(\.name.count).max() ?? 0)
                    for row in rows {
                        lines.append("  \(row.name.rightPadded(width))  \(grouped(row.messages).leftPadded(11))  \(timeText(row.firstMessage))  \(timeText(row.lastMessage))")
                    }
                }
                table("rooms (messages, first, last)", stats.perRoom)
                table("users (messages, first, last)", stats.perUser)
                lines.append("")
                lines.append("messages per day")
                let peak = max(1, stats.perDay.map(\.messages).max() ?? 1)
                for day in stats.perDay {
                    let bar = String(repeating: "█", count: max(day.messages > 0 ? 1 : 0, day.messages * 40 / peak))
                    lines.append("  \(String(Timestamp.string(day.day * 86_400_000).prefix(10)))  \(bar.rightPadded(40))  \(grouped(day.messages))")
                }
                print(lines.joined(separator: "\n"))
            }
        }
    }
}

struct Users: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(abstract: "Every user: first and last seen, messages.")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Option(help: "text or json.")
    var format: ListFormat = .text

    func run() async throws {
        try reporting {
            let users = try database.openReadOnly().users()
            switch format {
            case .json:
                try printJSON(.array(users.map { .object([
                    "name": .string($0.name), "firstSeen": jsonTime($0.firstSeen), "lastSeen": jsonTime($0.lastSeen),
                    "messages": .integer(Int64($0.messages)),
                ]) }))
            case .text:
                let width = max(4, users.map(\.name.count).max() ?? 0)
                print("\("name".rightPadded(width))  \("messages".leftPadded(11))  first seen                last seen")
                for user in users {
                    print("\(user.name.rightPadded(width))  \(grouped(user.messages).leftPadded(11))  \(timeText(user.firstSeen))  \(timeText(user.lastSeen))")
                }
            }
        }
    }
}

struct Rooms: AsyncParsableCommand, DatabaseCommand {
    static let configuration = CommandConfiguration(abstract: "Every room: messages, first and last activity.")

    @ParentCommand var chatAdmin: ChatAdmin
    @OptionGroup(visibility: .hidden) var ownDatabaseOptions: DatabaseOptions
    @Option(help: "text or json.")
    var format: ListFormat = .text

    func run() async throws {
        try reporting {
            let rooms = try database.openReadOnly().statistics().perRoom.sorted { $0.name < $1.name }
            switch format {
            case .json:
                try printJSON(.array(rooms.map { .object([
                    "name": .string($0.name), "messages": .integer(Int64($0.messages)),
                    "first": jsonTime($0.firstMessage), "last": jsonTime($0.lastMessage),
                ]) }))
            case .text:
                let width = max(4, rooms.map(\.name.count).max() ?? 0)
                print("\("room".rightPadded(width))  \("messages".leftPadded(11))  first                     last")
                for room in rooms {
                    print("\(room.name.rightPadded(width))  \(grouped(room.messages).leftPadded(11))  \(timeText(room.firstMessage))  \(timeText(room.lastMessage))")
                }
            }
        }
    }
}
