import NIOCore

/// What every listener does when a connection opens and closes, whatever its wire protocol:
/// the client limits, per-address admission, the session and its registration on its loop.
package extension ServerContext {
    enum Admitted {
        case session(Session)
        /// Refused: say `reason` (in the connection's protocol) and close.
        case refused(reason: String)
    }

    /// Admits a connection that just became active on `context`, making its session.
    func admitConnection(on context: ChannelHandlerContext, output: any SessionOutput) -> Admitted {
        let peer = context.remoteAddress?.description ?? "?"
        guard registry.admitConnection(limit: configuration.limits.maxClients) else {
            logger.notice("refused \(peer): server full")
            return .refused(reason: "the server is full (\(configuration.limits.maxClients) clients); try again later")
        }
        let address = context.remoteAddress?.ipAddress ?? peer
        if let refusal = admission.admit(address) {
            registry.releaseConnection()
            logger.notice("refused \(peer): \(refusal.message)")
            return .refused(reason: refusal.message)
        }
        let loopIndex = loopIndex(of: context.eventLoop)
        let session = Session(id: registry.makeSessionID(), loopIndex: loopIndex, eventLoop: context.eventLoop,
                              server: self, output: output, peer: peer, address: address)
        shards[loopIndex].sessions[session.id] = session
        logger.info("connect \(peer)")
        return .session(session)
    }

    /// The connection of an admitted `session` closed: it leaves its rooms and frees its name.
    func connectionClosed(_ session: Session) {
        let wasPending = !session.hasLoggedIn
        session.detach()
        admission.release(session.address, wasPending: wasPending)
        shards[session.loopIndex].sessions[session.id] = nil
        registry.releaseConnection()
        logger.info("disconnect \(session.userName.isEmpty ? session.peer : session.userName)")
    }
}
