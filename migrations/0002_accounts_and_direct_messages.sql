-- Accounts and direct messages.

-- A registered name: only its password opens it. The password is kept as a scrypt hash with a
-- salt of its own, and the cost parameters sit beside it so they can be raised later (a login
-- with the right password re-hashes with the current ones).
CREATE TABLE accounts (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    algorithm   TEXT    NOT NULL CHECK (algorithm IN ('scrypt')),
    salt        BLOB    NOT NULL,
    hash        BLOB    NOT NULL,
    cost        INTEGER NOT NULL, -- scrypt N
    block_size  INTEGER NOT NULL, -- scrypt r
    parallelism INTEGER NOT NULL, -- scrypt p
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- A conversation between two users (or a user and itself) is a room row that is never listed:
-- its name, '@<low id>:<high id>', cannot be a room name. So direct messages share the message
-- id sequence, replay and paging by room, the search index, prune and export.
CREATE TABLE conversations (
    room_id    INTEGER PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    user_low   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_high  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    CHECK (user_low <= user_high),
    UNIQUE (user_low, user_high)
);
CREATE INDEX conversations_by_high ON conversations(user_high);
