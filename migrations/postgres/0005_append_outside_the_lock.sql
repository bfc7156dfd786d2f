-- Appends: only the work that has to be serialized stays under the id counter's row lock.
-- Measured on 50,000 rows (docs/performance.md): the foreign keys' checks, one trigger query per
-- row, were half of the INSERT; computing the search vector another fifth. Both now happen in
-- `append_messages` before it takes the ids, while other appends hold the lock:
-- - the search vector is an ordinary column, computed before the ids are taken;
-- - the room and author are checked once per distinct id, with the lock a foreign key check
--   takes (FOR KEY SHARE: a concurrent delete of that room or user waits for this append to
--   commit; an append that comes after the delete finds no row and fails). `forget` locks the
--   user and the rooms it deletes before deleting their messages, so no message outlives them.
-- `chat-admin check` reports messages whose room or author is missing.
ALTER TABLE messages ALTER COLUMN search DROP EXPRESSION;
ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_user_id_fkey;

CREATE OR REPLACE PROCEDURE append_messages(rooms bigint[], authors bigint[], kinds smallint[], texts text[], at bigint, origin text,
                                            INOUT first_id bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := cardinality(texts);
    searches tsvector[];
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM rooms r WHERE r.id = ANY(append_messages.rooms) FOR KEY SHARE) locked)
       <> (SELECT count(DISTINCT x) FROM unnest(append_messages.rooms) x) THEN
        RAISE foreign_key_violation USING MESSAGE = 'append_messages: a room does not exist';
    END IF;
    IF (SELECT count(*) FROM (SELECT 1 FROM users u WHERE u.id = ANY(append_messages.authors) FOR KEY SHARE) locked)
       <> (SELECT count(DISTINCT x) FROM unnest(append_messages.authors) x) THEN
        RAISE foreign_key_violation USING MESSAGE = 'append_messages: an author does not exist';
    END IF;
    searches := ARRAY(SELECT to_tsvector('simple', t) FROM unnest(texts) WITH ORDINALITY AS u(t, i) ORDER BY i);
    UPDATE message_ids SET last_id = last_id + n RETURNING last_id - n + 1 INTO first_id;
    INSERT INTO messages (id, room_id, user_id, ts, kind, text, search)
        SELECT first_id - 1 + d.n, d.room, d.author, at, d.kind, d.text, d.search
        FROM unnest(append_messages.rooms, authors, kinds, texts, searches) WITH ORDINALITY AS d(room, author, kind, text, search, n);
    PERFORM pg_notify('chat_commits', first_id::text || '-' || (first_id + n - 1)::text || '/' || origin);
    COMMIT;
END
$$;
