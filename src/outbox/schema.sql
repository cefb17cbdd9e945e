-- The outbox: the only owner of delivery state.

CREATE TABLE IF NOT EXISTS deliveries (
  id            INTEGER PRIMARY KEY,
  key           TEXT NOT NULL UNIQUE,      -- idempotency key (route, connector, lead, trigger)
  route         TEXT NOT NULL,
  connector     TEXT NOT NULL,
  visitor_id    TEXT NOT NULL,
  trigger_kind  TEXT NOT NULL,
  payload       TEXT,                      -- rendered; NULL when rendering failed
  context       TEXT,                      -- the render input, kept when rendering failed or for digests
  group_key     TEXT,                      -- routes with group_wait: members of one digest
  state         TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'inflight', 'delivered', 'dead')),
  attempts      INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  next_at       INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  last_error    TEXT,
  record_id     TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (connector, state, next_at);

-- Every attempt's outcome, kept with dead letters so an operator sees the whole story.
CREATE TABLE IF NOT EXISTS attempts (
  id           INTEGER PRIMARY KEY,
  delivery_id  INTEGER NOT NULL,
  at           INTEGER NOT NULL,
  outcome      TEXT NOT NULL,
  error        TEXT,
  millis       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_id);

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
