@testable import Storage
import Testing

/// How the single writer shares a transaction between lanes when more waits than one takes.
@Suite struct GroupCommitTests {
    static func job(_ lane: Int64) -> GroupCommitter.Job {
        GroupCommitter.Job(lane: lane, perform: { _, _ in }, finish: { _ in })
    }

    @Test func everythingGoesWhenItFits() {
        var pending = (0..<GroupCommitter.maximumBatch).map { Self.job(Int64($0 % 3)) }
        let batch = GroupCommitter.takeBatch(from: &pending)
        #expect(batch.count == GroupCommitter.maximumBatch)
        #expect(pending.isEmpty)
    }

    @Test func aFloodCannotPushAnotherLanesJobBackByMoreThanOneBatch() {
        // Ten flooding lanes with 1,000 jobs each, then one job of a quiet lane at the very end.
        var pending = (0..<10_000).map { Self.job(Int64(1 + $0 % 10)) } + [Self.job(99)]
        let total = pending.count
        let batch = GroupCommitter.takeBatch(from: &pending)
        #expect(batch.count == GroupCommitter.maximumBatch)
        #expect(batch.contains { $0.lane == 99 }, "the quiet lane's job is in the next transaction")
        #expect(batch.count + pending.count == total, "nothing is lost or taken twice")
        // The flooding lanes share the rest evenly.
        let perLane = Dictionary(grouping: batch.filter { $0.lane != 99 }, by: \.lane).mapValues(\.count)
        #expect(perLane.values.max()! - perLane.values.min()! <= 1, "\(perLane)")
    }

    @Test func eachLaneKeepsItsOrder() {
        // Each job's `finish` records its lane and its position in that lane; finishing the jobs
        // batch after batch, in batch order, must see every lane's positions in order.
        final class Seen: @unchecked Sendable { var positions: [Int64: [Int]] = [:] }
        let seen = Seen()
        var pending: [GroupCommitter.Job] = []
        var next: [Int64: Int] = [:]
        for index in 0..<1_000 {
            let lane = Int64(index % 7 == 0 ? 1 : 2 + index % 3)
            let position = next[lane, default: 0]
            next[lane] = position + 1
            pending.append(GroupCommitter.Job(lane: lane, perform: { _, _ in }, finish: { _ in seen.positions[lane, default: []].append(position) }))
        }
        var batches = 0
        while !pending.isEmpty {
            for job in GroupCommitter.takeBatch(from: &pending) { job.finish(nil) }
            batches += 1
        }
        #expect(batches == (1_000 + GroupCommitter.maximumBatch - 1) / GroupCommitter.maximumBatch)
        for (lane, count) in next {
            #expect(seen.positions[lane] == Array(0..<count), "lane \(lane)")
        }
    }
}
