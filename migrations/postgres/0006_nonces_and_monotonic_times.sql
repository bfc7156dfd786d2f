-- Sending exactly once, and times that follow ids.
-- 1. A `say` may carry a nonce (PROTOCOL.md, Sending exactly once): at most one message of a
--    user holds a given nonce, and the server answers a repeat within 24 hours with the first.
--    When the nonce comes again after that, the older message's nonce is cleared first.
ALTER TABLE messages ADD COLUMN nonce text;
CREATE UNIQUE INDEX messages_by_nonce ON messages (user_id, nonce) WHERE nonce IS NOT NULL;

-- 2. A message's time is settled under the id counter's lock and is never earlier than the time
--    of the message before it, so nodes whose clocks differ still store times in id order (reads
--    by time, `firstID(atOrAfter:)`, rely on it). `at` is the node's clock; `stamp` what is stored.
ALTER TABLE message_ids ADD COLUMN last_ts bigint NOT NULL DEFAULT 0;
UPDATE message_ids SET last_ts = COALESCE((SELECT max(ts) FROM messages), 0);

-- `append_messages` (0005) stays for nodes of the previous build during a rolling upgrade.
CREATE PROCEDURE append_messages_once(rooms bigint[], authors bigint[], kinds smallint[], texts text[], nonces text[],
                                      at bigint, origin text, INOUT first_id bigint DEFAULT NULL, INOUT stamp bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := cardinality(texts);
    searches tsvector[];
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM rooms r WHERE r.id = ANY(append_messages_once.rooms) FOR KEY SHARE) locked)
       <> (SELECT count(DISTINCT x) FROM unnest(append_messages_once.rooms) x) THEN
        RAISE foreign_key_violation USING MESSAGE = 'append_messages_once: a room does not exist';
    END IF;
    IF (SELECT count(*) FROM (SELECT 1 FROM users u WHERE u.id = ANY(append_messages_once.authors) FOR KEY SHARE) locked)
       <> (SELECT count(DISTINCT x) FROM unnest(append_messages_once.authors) x) THEN
        RAISE foreign_key_violation USING MESSAGE = 'append_messages_once: an author does not exist';
    END IF;
    searches := ARRAY(SELECT to_tsvector('simple', t) FROM unnest(texts) WITH ORDINALITY AS u(t, i) ORDER BY i);
    UPDATE message_ids SET last_id = last_id + n, last_ts = GREATEST(last_ts, at)
        RETURNING last_id - n + 1, last_ts INTO first_id, stamp;
    INSERT INTO messages (id, room_id, user_id, ts, kind, text, search, nonce)
        SELECT first_id - 1 + d.n, d.room, d.author, stamp, d.kind, d.text, d.search, NULLIF(d.nonce, '')
        FROM unnest(append_messages_once.rooms, authors, kinds, texts, searches, nonces)
             WITH ORDINALITY AS d(room, author, kind, text, search, nonce, n);
    PERFORM pg_notify('chat_commits', first_id::text || '-' || (first_id + n - 1)::text || '/' || origin);
    COMMIT;
END
$$;
