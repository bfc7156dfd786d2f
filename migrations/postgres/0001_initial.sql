-- PostgreSQL schema (database.postgres), the same data as the SQLite schema: users, rooms,
-- messages with their search vector, read markers. Applied once, in order, by PostgresStorage.

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    name_key    text NOT NULL UNIQUE,
    first_seen  bigint NOT NULL,
    last_seen   bigint NOT NULL
);

CREATE TABLE rooms (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created     bigint NOT NULL,
    -- direct conversations are rooms of their own, named by both user ids
    is_direct   boolean NOT NULL DEFAULT false
);

-- Message ids in commit order: one row, updated by every committing transaction. Its row lock
-- is held until the transaction commits, so the next transaction takes the next ids only after
-- this one's are visible: a reader never sees an id before every smaller one (no gap that fills
-- later), whichever node commits. A sequence alone gives no such order (nextval is not
-- transactional: a later id can commit first).
CREATE TABLE message_ids (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_id     bigint NOT NULL
);
INSERT INTO message_ids (last_id) VALUES (0);

CREATE TABLE messages (
    id          bigint PRIMARY KEY,
    room_id     bigint NOT NULL REFERENCES rooms (id),
    user_id     bigint NOT NULL REFERENCES users (id),
    ts          bigint NOT NULL,
    kind        smallint NOT NULL,
    text        text NOT NULL,
    search      tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED
);
CREATE INDEX messages_room_id ON messages (room_id, id);
CREATE INDEX messages_user ON messages (user_id, id);
CREATE INDEX messages_search ON messages USING gin (search);

CREATE TABLE read_markers (
    user_id     bigint NOT NULL REFERENCES users (id),
    room_id     bigint NOT NULL REFERENCES rooms (id),
    last_id     bigint NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
