import NIOCore

/// Acknowledgements this session owes its client: says handed to the writer whose own copy (or
/// refusal) has not been written back yet. Until they are, requests other than `say` wait: every
/// answer leaves after the acknowledgements of the says sent before it, while says themselves
/// still go to the writer back to back.
extension Session {
    /// A say went to the writer.
    package func owesAck() {
        acksOwed += 1
    }

    /// An acknowledgement was written (or the say refused); the requests waiting for the last one
    /// go on in a task of their own (this may be called in the middle of a fan-out).
    package func settleAck() {
        guard acksOwed > 0 else { return }
        acksOwed -= 1
        if acksOwed == 0, hasQueuedRequests {
            eventLoop.execute { [weak self] in
                guard let self, !isBusy else { return }
                drainInbox()
            }
        }
    }

    /// Counts the acknowledgements in a run written to this session.
    package func wroteOwnEvents(of broadcast: Broadcast) {
        guard acksOwed > 0 else { return }
        for index in broadcast.personalEvents(of: id) {
            if case .message = broadcast.events[index] { settleAck() }
        }
    }
}
