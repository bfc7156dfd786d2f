-- Appends as one round trip: the ids, the rows, the announcement and the COMMIT, inside the
-- database. The counter's row lock is then held only while the database works, not across a
-- round trip to the node for the COMMIT; and the CALL answers only once the COMMIT is done.
CREATE PROCEDURE append_messages(rooms bigint[], authors bigint[], kinds smallint[], texts text[], at bigint, origin text,
                                 INOUT first_id bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := cardinality(texts);
BEGIN
    UPDATE message_ids SET last_id = last_id + n RETURNING last_id - n + 1 INTO first_id;
    INSERT INTO messages (id, room_id, user_id, ts, kind, text)
        SELECT first_id - 1 + d.n, d.room, d.author, at, d.kind, d.text
        FROM unnest(rooms, authors, kinds, texts) WITH ORDINALITY AS d(room, author, kind, text, n);
    PERFORM pg_notify('chat_commits', first_id::text || '-' || (first_id + n - 1)::text || '/' || origin);
    COMMIT;
END
$$;
