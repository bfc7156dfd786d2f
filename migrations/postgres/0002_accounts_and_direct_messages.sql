-- Accounts and direct messages, as in the SQLite schema's 0002: a registered name's scrypt hash
-- with its own salt and cost, and the conversation rooms ('@<low id>:<high id>', is_direct).

CREATE TABLE accounts (
    user_id     bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    algorithm   text NOT NULL CHECK (algorithm IN ('scrypt')),
    salt        bytea NOT NULL,
    hash        bytea NOT NULL,
    cost        integer NOT NULL,
    block_size  integer NOT NULL,
    parallelism integer NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);

CREATE TABLE conversations (
    room_id     bigint PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    user_low    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_high   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    CHECK (user_low <= user_high),
    UNIQUE (user_low, user_high)
);
CREATE INDEX conversations_by_high ON conversations (user_high);

-- Prune, retention and time filters read by time.
CREATE INDEX messages_ts ON messages (ts);

-- No index on the author, as on SQLite: every append paid for one more B-tree (24,600
-- appends/s with it, 33,000 without, docs/performance.md); per-user work (forget, statistics)
-- scans.
DROP INDEX messages_user;
