-- The outbox: the only owner of delivery state.

CREATE TABLE IF NOT EXISTS deliveries (
  id            INTEGER PRIMARY KEY,       -- also the queue's order: oldest first
  key           TEXT NOT NULL UNIQUE,      -- idempotency key (route, connector, lead, trigger)
  route         TEXT NOT NULL,
  connector     TEXT NOT NULL,
  visitor_id    TEXT NOT NULL,
  trigger_kind  TEXT NOT NULL,
  group_key     TEXT,                      -- routes with group_wait: members of one digest
  state         TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'inflight', 'delivered', 'dead', 'superseded')),
  attempts      INTEGER NOT NULL DEFAULT 0, -- attempts that counted against max_attempts
  tries         INTEGER NOT NULL DEFAULT 0, -- failed requests that set the backoff (throttles too)
  created_at    INTEGER NOT NULL,
  next_at       INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  last_error    TEXT,
  reason        TEXT,                      -- the last failure's reason (transport, auth, …)
  record_id     TEXT,
  origin_at     INTEGER                    -- when the prospect acted (alert latency counts from it)
);
-- The queue, by due time (when to wake up) and by age (what to claim first). Partial: only
-- queued rows are in them, so a delivery leaves them once, when claimed, and a delivered row
-- costs them nothing.
CREATE INDEX IF NOT EXISTS queued_by_due ON deliveries (connector, next_at) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS queued_by_age ON deliveries (connector, id) WHERE state = 'queued';
-- Queued CRM syncs of a lead, which a newer sync supersedes.
CREATE INDEX IF NOT EXISTS deliveries_pending_sync ON deliveries (connector, visitor_id)
  WHERE state = 'queued' AND trigger_kind = 'sync';
-- A lead's deliveries (the operator's page of a lead; erasure).
CREATE INDEX IF NOT EXISTS deliveries_by_visitor ON deliveries (visitor_id);
-- The rises of a window, newest first (the operator's "Now").
CREATE INDEX IF NOT EXISTS deliveries_rises ON deliveries (created_at)
  WHERE trigger_kind IN ('hot_lead', 'account_hot');

-- What a delivery sends, written once beside its state: a claim or an outcome rewrites only
-- the small state row above, not the payload.
CREATE TABLE IF NOT EXISTS delivery_bodies (
  delivery_id  INTEGER PRIMARY KEY,        -- deliveries.id
  payload      TEXT,                       -- rendered; NULL when rendering failed
  context      TEXT                        -- the render input {lead, trigger, route, crm}: digests
                                           -- and replays render from it with the current config
);

-- Every failed attempt (and every hold and replay), kept so an operator sees the whole story;
-- a delivery's success is its row's state.
CREATE TABLE IF NOT EXISTS attempts (
  id           INTEGER PRIMARY KEY,
  delivery_id  INTEGER NOT NULL,
  at           INTEGER NOT NULL,
  outcome      TEXT NOT NULL,               -- retry, held, dead, replayed
  reason       TEXT,
  error        TEXT,
  millis       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_id);

-- Each connector's health as the daemon last saw it (`oie connectors status`).
CREATE TABLE IF NOT EXISTS connector_state (
  connector   TEXT PRIMARY KEY,
  state       TEXT NOT NULL,               -- ok, throttled, open, half_open, parked
  reason      TEXT,
  detail      TEXT,
  since       INTEGER NOT NULL,
  next_try    INTEGER,
  updated_at  INTEGER NOT NULL
);
-- When each connector last delivered something (the recorder, once per batch).
CREATE TABLE IF NOT EXISTS connector_success (
  connector  TEXT PRIMARY KEY,
  at         INTEGER NOT NULL
);
-- What operators did through the console and the API (replays, resumes): who asked (`via`),
-- what, and what it touched.
CREATE TABLE IF NOT EXISTS operator_actions (
  id      INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  via     TEXT NOT NULL,              -- console or api
  action  TEXT NOT NULL,              -- replay, replay_dry_run, resume
  detail  TEXT NOT NULL               -- JSON: ids requeued, connector, …
);
-- `oie connectors resume NAME`: the daemon probes NAME at once and deletes the row.
CREATE TABLE IF NOT EXISTS connector_resume (
  connector     TEXT PRIMARY KEY,
  requested_at  INTEGER NOT NULL
);

-- Source progress, committed in the same transaction as the deliveries it produced.
CREATE TABLE IF NOT EXISTS source_state (
  source    TEXT PRIMARY KEY,
  position  INTEGER NOT NULL
);
-- Where a source that pages by a compound key (BigQuery: "updatedAt ms:visitorId") left off.
CREATE TABLE IF NOT EXISTS source_cursor (
  source  TEXT PRIMARY KEY,
  cursor  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lead_seen (
  visitor_id  TEXT PRIMARY KEY,
  level       TEXT NOT NULL,
  version     INTEGER NOT NULL
);

-- When each route last fired for each lead (repeat_after).
CREATE TABLE IF NOT EXISTS route_fires (
  route       TEXT NOT NULL,
  visitor_id  TEXT NOT NULL,
  at          INTEGER NOT NULL,
  level       TEXT NOT NULL,
  PRIMARY KEY (route, visitor_id)
);
-- Sources read a lead's fires by visitor, for every lead they route.
CREATE INDEX IF NOT EXISTS route_fires_by_visitor ON route_fires (visitor_id);

-- `oie visitors erase ID` while `oie run` holds the data dir: the daemon erases the visitor and
-- answers here (the id is cleared once done; the command reads the answer and removes the row).
CREATE TABLE IF NOT EXISTS erasure_queue (
  request       TEXT PRIMARY KEY,
  visitor_id    TEXT,
  requested_at  INTEGER NOT NULL,
  report        TEXT
);

-- Cloud mode: erasure requests of BigQuery this replica is working on (by the id's hash): the
-- outbox part done, rows deleted so far per table, and whether the request was marked done.
CREATE TABLE IF NOT EXISTS cloud_erasures (
  visitor_hash  TEXT PRIMARY KEY,
  outbox_done   INTEGER NOT NULL DEFAULT 0,
  deleted       TEXT NOT NULL DEFAULT '{}',
  marked        INTEGER NOT NULL DEFAULT 0,
  updated_at    INTEGER NOT NULL
);

-- `oie backup` runs that finished (for oie_backup_* metrics and `oie backup` itself).
CREATE TABLE IF NOT EXISTS backups (
  taken_at  INTEGER NOT NULL,
  seconds   REAL NOT NULL,
  bytes     INTEGER NOT NULL,
  dir       TEXT NOT NULL
);

-- What connectors remember per visitor between deliveries (the Slack thread a lead's alerts
-- go to): erased with the visitor.
CREATE TABLE IF NOT EXISTS visitor_state (
  scope       TEXT NOT NULL,
  visitor_id  TEXT NOT NULL,
  value       TEXT NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (scope, visitor_id)
);
CREATE INDEX IF NOT EXISTS visitor_state_by_visitor ON visitor_state (visitor_id);

-- What sales did from Slack: every button click (the audit), and what it left in force.
CREATE TABLE IF NOT EXISTS lead_actions (
  id          TEXT PRIMARY KEY,   -- Slack's action_ts and user: a repeated post adds nothing
  visitor_id  TEXT NOT NULL,
  route       TEXT NOT NULL,
  action      TEXT NOT NULL,      -- claim, snooze, not_a_fit
  user_id     TEXT NOT NULL,
  user_name   TEXT,
  channel     TEXT,
  message_ts  TEXT,
  outcome     TEXT NOT NULL,      -- done, already_claimed
  at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lead_actions_by_visitor ON lead_actions (visitor_id);

-- A lead's alerts on a route held back until `until` (Snooze).
CREATE TABLE IF NOT EXISTS snoozes (
  route       TEXT NOT NULL,
  visitor_id  TEXT NOT NULL,
  until       INTEGER NOT NULL,
  by_user     TEXT NOT NULL,
  PRIMARY KEY (route, visitor_id)
);
CREATE INDEX IF NOT EXISTS snoozes_by_visitor ON snoozes (visitor_id);

-- Claim and Not a fit, laid over the lead as claimedBy/claimedAt and disqualified*.
CREATE TABLE IF NOT EXISTS lead_marks (
  visitor_id       TEXT PRIMARY KEY,
  claimed_by       TEXT,
  claimed_at       INTEGER,
  disqualified_by  TEXT,
  disqualified_at  INTEGER
);
