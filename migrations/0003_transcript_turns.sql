-- One transcript row per turn. A turn's row has kind 'turn' and an entry that is one JSON object:
-- {"message": inbound, "contact": contact, "outbound": [messages], "trace": [events]}. Rows written
-- before this migration hold one event each (kind 'inbound', 'outbound' or 'trace') and are still
-- read. `events` is how many transcript events a row stands for (1 for those older rows), so
-- retention can report events deleted without decoding entries.
ALTER TABLE transcript ADD COLUMN events INTEGER NOT NULL DEFAULT 1;
