-- Users, rooms, messages, read markers and the full-text index.
-- Times are milliseconds since the Unix epoch, UTC.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL COLLATE NOCASE UNIQUE, -- spelled as at first login
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);

CREATE TABLE rooms (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- AUTOINCREMENT: ids are never reused, even after the newest message is deleted.
CREATE TABLE messages (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id  INTEGER NOT NULL REFERENCES rooms(id),
    user_id  INTEGER NOT NULL REFERENCES users(id),
    kind     TEXT    NOT NULL CHECK (kind IN ('text', 'action')),
    ts       INTEGER NOT NULL,
    text     TEXT    NOT NULL
);
-- Replay reads a room by id; prune and time filters use ts. There is deliberately no index on
-- user_id: every commit would scatter its rows over as many leaf pages as there are writers
-- (32,000 appends/s with it, 45,000 without); per-user work (forget, filters, stats) scans.
CREATE INDEX messages_by_room ON messages(room_id, id);
CREATE INDEX messages_by_time ON messages(ts);

-- The newest message id of a room that a user had been sent when it last left the room.
CREATE TABLE read_markers (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id  INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    last_id  INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;

-- External-content FTS5 index over messages.text, kept in step by triggers. No column sizes
-- (results are ordered by id, never by bm25) and fewer, larger merges: both cheapen appends.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    text,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    columnsize = 0
);
INSERT INTO messages_fts(messages_fts, rank) VALUES ('automerge', 16);

CREATE TRIGGER messages_fts_after_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
