import NIOCore

/// Acknowledgements this session owes its client: says handed to the writer whose own copy (or
/// refusal) has not been written back yet, by room ("" for direct messages). Until they are,
/// requests other than `say` wait: every answer leaves after the acknowledgements of the says
/// sent before it, while says themselves still go to the writer back to back.
extension Session {
    /// A say to `place` (a room's name, "" for a direct message) went to the writer.
    package func owesAck(in place: String) {
        acksOwed.byPlace[place, default: 0] += 1
        acksOwed.total += 1
    }

    /// `count` acknowledgements for `place` were written (or refused); the requests waiting for
    /// them go on in a task of their own (this may be called in the middle of a fan-out).
    package func settleAcks(in place: String, count: Int = 1) {
        guard let owed = acksOwed.byPlace[place], owed > 0 else { return }
        let settled = min(owed, count)
        acksOwed.byPlace[place] = owed == settled ? nil : owed - settled
        acksOwed.total -= settled
        if acksOwed.total == 0, hasQueuedRequests {
            eventLoop.execute { [weak self] in
                guard let self, !isBusy else { return }
                drainInbox()
            }
        }
    }

    /// A subscription the server ended (not a request of the client's, which waits for its acks):
    /// the acknowledgements owed for its room will not come.
    package func forgetAcks(in place: String) {
        settleAcks(in: place, count: .max)
    }

    /// Counts the acknowledgements in a run written to this session.
    package func wroteOwnEvents(of broadcast: Broadcast) {
        guard acksOwed.total > 0 else { return }
        for index in broadcast.personalEvents(of: id) {
            if case .message(let message, _) = broadcast.events[index] {
                settleAcks(in: message.to == nil ? message.room : "")
            }
        }
    }
}

/// What `Session.acksOwed` counts.
struct AcksOwed {
    var byPlace: [String: Int] = [:]
    var total = 0
}
