-- flowbot's SQLite schema, first version. Owned by crates/store (the only crate that holds SQL).
--
-- Conventions:
-- * Timestamps are TEXT in RFC 3339, UTC, always with nine fractional digits and a `Z`
--   (2024-05-01T09:30:00.000000000Z), so they sort and compare as text and stay readable in the
--   sqlite3 shell.
-- * Engine values (contact, message, outbound, trace events, variables) are JSON text.
-- * Tables are STRICT, so a wrong type is an error instead of a silent conversion.

-- Everyone who wrote to the bot, with the time of their last message (the 24-hour window).
CREATE TABLE contacts (
    channel         TEXT NOT NULL,
    phone           TEXT NOT NULL,
    name            TEXT,
    last_inbound_at TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (channel, phone)
) STRICT;

-- One conversation per contact: the flow, the step it waits at, and its variables.
CREATE TABLE conversations (
    channel    TEXT NOT NULL,
    phone      TEXT NOT NULL,
    flow       TEXT NOT NULL,
    step       TEXT,
    status     TEXT NOT NULL,
    vars       TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (channel, phone)
) STRICT;

-- Every inbound message, recorded before the webhook is answered. The unique provider message id
-- is the dedupe key: a redelivered message is recognised at insert.
CREATE TABLE inbox (
    id                  INTEGER PRIMARY KEY,
    provider_message_id TEXT NOT NULL,
    channel             TEXT NOT NULL,
    business_id         TEXT NOT NULL,
    phone               TEXT NOT NULL,
    contact_name        TEXT,
    contact             TEXT NOT NULL,
    message             TEXT NOT NULL,
    message_at          TEXT NOT NULL,
    state               TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'processing', 'done', 'failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    received_at         TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (channel, provider_message_id)
) STRICT;

-- Start-up recovery reads the unfinished rows in message order.
CREATE INDEX inbox_unfinished ON inbox (message_at, id) WHERE state IN ('pending', 'processing');
-- Retention deletes old rows by reception time.
CREATE INDEX inbox_received_at ON inbox (received_at);

-- One row per outbound message of a turn, keyed by the inbound message and its position.
CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY,
    inbox_id            INTEGER NOT NULL REFERENCES inbox (id) ON DELETE CASCADE,
    sequence            INTEGER NOT NULL,
    channel             TEXT NOT NULL,
    business_id         TEXT NOT NULL,
    phone               TEXT NOT NULL,
    message             TEXT NOT NULL,
    state               TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sent', 'failed', 'held')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    delivery_status     TEXT,
    error               TEXT,
    created_at          TEXT NOT NULL,
    sent_at             TEXT,
    updated_at          TEXT NOT NULL,
    UNIQUE (inbox_id, sequence)
) STRICT;

-- Status notifications find their row by the provider's message id.
CREATE INDEX outbox_provider_message_id ON outbox (provider_message_id);
-- The sender and start-up read the pending rows in order.
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';

-- What came in, what went out and what each step did. Not tied to the inbox by a foreign key:
-- transcripts and dedupe keys have separate retention.
CREATE TABLE transcript (
    id       INTEGER PRIMARY KEY,
    channel  TEXT NOT NULL,
    phone    TEXT NOT NULL,
    inbox_id INTEGER,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    entry    TEXT NOT NULL
) STRICT;

CREATE INDEX transcript_phone ON transcript (phone, at);
CREATE INDEX transcript_at ON transcript (at);

-- Zoho connections: `sealed` is a version byte, a 24-byte nonce and the XChaCha20-Poly1305
-- ciphertext of the serialized connection. The lease columns arbitrate token refreshes between
-- processes; a row may hold a lease before it holds a connection (sealed NULL).
CREATE TABLE zoho_connections (
    name         TEXT PRIMARY KEY,
    sealed       BLOB,
    lease_holder TEXT,
    lease_until  TEXT,
    updated_at   TEXT NOT NULL
) STRICT;
