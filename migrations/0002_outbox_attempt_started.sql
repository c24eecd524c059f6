-- Effectively-once sends: the sender records that a send attempt started before the HTTP call.
-- A row still pending or held with this set is uncertain after a crash: Graph may have accepted
-- it. A status webhook echoing the row's biz_opaque_callback_data confirms it; start-up waits a
-- grace period for that before sending such a row again.
ALTER TABLE outbox ADD COLUMN attempt_started_at TEXT;
