-- Start-up and the sender's resume read the rows still to send: `state IN ('pending', 'held')`.
-- The index of 0001 covered `state = 'pending'` only, which SQLite cannot use for that query, so
-- it scanned the whole outbox: 30 ms at start-up over 100,000 conversations, growing with the
-- table. This one covers both states.
DROP INDEX outbox_pending;
CREATE INDEX outbox_unsent ON outbox (id) WHERE state IN ('pending', 'held');
