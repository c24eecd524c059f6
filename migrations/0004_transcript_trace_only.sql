-- Smaller transcripts. From this version a turn's transcript row holds only its trace events
-- ({"trace": [events]}); the inbound message and the replies are read from the turn's inbox and
-- outbox rows (transcript.inbox_id), which retention keeps at least as long. Rows written before
-- keep their copies and are read as they are.
--
-- Retention deletes old transcript rows from the lowest id up (ids grow with time), so the index
-- on `at` only cost space and a write per turn.
DROP INDEX transcript_at;
