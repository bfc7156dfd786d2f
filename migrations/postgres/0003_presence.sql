-- Who is in which room on which node, so that every node lists and announces the members of
-- the others. A node registers in `nodes` and holds the advisory lock (7412, id) while it runs:
-- when its connection goes (a crash), the lock goes, and the other nodes remove its rows and
-- announce those members as gone.

CREATE TABLE nodes (
    id          serial PRIMARY KEY,
    started     bigint NOT NULL
);

CREATE TABLE presence (
    node        integer NOT NULL,
    room        text NOT NULL,
    user_key    text NOT NULL,
    name        text NOT NULL,
    PRIMARY KEY (node, room, user_key)
);
CREATE INDEX presence_by_room ON presence (room);
