import ChatProtocol
import NIOCore
import Storage

/// What a session says to its client, in protocol-neutral terms. A wire adapter (the native
/// JSON-lines protocol, IRC) implements it; every call happens on the session's loop.
package protocol SessionOutput: AnyObject {
    /// The format rooms encode runs in for this client.
    var wireFormat: WireFormat { get }
    func sendWelcome(re: RequestID?, name: String, isAccount: Bool, defaultRoom: String, motd: String?)
    func sendRegistered(re: RequestID?, name: String)
    func sendJoined(re: RequestID?, room: String, members: [String])
    func sendHistory(re: RequestID?, subject: ServerFrame.HistorySubject, slice: HistorySlice)
    func sendConversations(re: RequestID?, _ conversations: [ServerFrame.ConversationSummary])
    func sendSearch(re: RequestID?, messages: [ChatMessage], more: Bool)
    func sendLeft(re: RequestID?, room: String)
    func sendRooms(re: RequestID?, rooms: [ServerFrame.RoomSummary])
    func sendWho(re: RequestID?, room: String, members: [String])
    func sendPong(re: RequestID?)
    func sendPing()
    func sendBye()
    func sendShutdown(reason: String)
    func sendError(_ error: ProtocolError)
    /// Writes a run of room events (or a direct message): its shared encoding in `wireFormat`,
    /// with this session's own events (acknowledgements, its join) its own way; flushes too when
    /// `flush` (one pass down the pipeline instead of two, for the common single run).
    func write(_ run: Broadcast, sessionID: Int, flush: Bool)
    /// Where a run's shared encoding in this connection's format (framing included) is written,
    /// for a session with nothing of its own in the run: the fan-out's per-member path. A
    /// subscription keeps it, so a delivery touches one object fewer than through this adapter.
    var sharedWriter: ConnectionWriter? { get }
    func flush()
    /// Flushes what is written, then closes the connection.
    func close()
    /// Stops reading, writes `error` after everything already queued, and closes once it has
    /// reached the client or after `allowance`: a merely slow client still reads why it goes.
    func sendFinalError(_ error: ProtocolError, within allowance: TimeAmount)
    /// Pauses or resumes reading from the client (flow control while requests are queued).
    func setReading(_ isReading: Bool)
    /// Whether the client keeps read markers itself (IRC `draft/read-marker`): it is told a room's
    /// marker on joining and whenever one of its user's sessions moves it.
    var wantsReadMarkers: Bool { get }
    /// A room's read marker: the time of the newest message read, or nil for none.
    func sendReadMarker(re: RequestID?, room: String, time: Int64?)
}

package extension SessionOutput {
    var wantsReadMarkers: Bool { false }
    func sendReadMarker(re: RequestID?, room: String, time: Int64?) {}

    func sendHistory(re: RequestID?, room: String, slice: HistorySlice) {
        sendHistory(re: re, subject: .room(room), slice: slice)
    }
}
