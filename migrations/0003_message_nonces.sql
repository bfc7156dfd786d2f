-- Sending exactly once (PROTOCOL.md): a `say` may carry a nonce the client chose. A second
-- message of the same user with that nonce within 24 hours is answered with the first one
-- instead of being stored. At most one message of a user holds a given nonce: when the nonce
-- comes again after 24 hours, the older message's nonce is cleared and the new one takes it.
ALTER TABLE messages ADD COLUMN nonce TEXT;
CREATE UNIQUE INDEX messages_by_nonce ON messages(user_id, nonce) WHERE nonce IS NOT NULL;
