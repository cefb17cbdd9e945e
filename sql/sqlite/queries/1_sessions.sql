-- 1. events → sessions (upsert). The SQLite twin of sql/bigquery/queries/1_sessions.sql.
-- What: rebuilds every session that has events inserted since the last scoring run (events
--   after the `events_rowid` watermark, up to the newest event now: `temp.scoring_run`).
-- When: by `oie` seconds after events arrive (debounced), before 2_lead_profiles.sql, on the
--   same connection.
-- Reads: the new events, then all events of their sessions (index events_by_session).
-- Parameters: :now (ms). Running it twice changes nothing.
DROP TABLE IF EXISTS temp.scoring_run;
CREATE TEMP TABLE scoring_run AS
SELECT
  COALESCE((SELECT value FROM scoring_state WHERE name = 'events_rowid'), 0) AS since,
  COALESCE((SELECT MAX(rowid) FROM events), 0) AS upto;

WITH touched AS (
  SELECT DISTINCT sessionId
  FROM events, temp.scoring_run r
  WHERE events.rowid > r.since AND events.rowid <= r.upto
),
ev AS MATERIALIZED (
  SELECT sessionId, visitorId, eventId, eventType, timestamp, path, data
  FROM events
  WHERE sessionId IN (SELECT sessionId FROM touched)
),
rolled AS (
  SELECT
    sessionId,
    MAX(visitorId) AS visitorId,
    MIN(timestamp) AS startedAt,
    MAX(timestamp) AS endedAt,
    COUNT(*) AS eventCount,
    SUM(eventType = 'pageview') AS pageviews,
    COALESCE(SUM(CASE WHEN eventType = 'page_exit' THEN CAST(json_extract(data, '$.activeMs') AS INTEGER) END), 0) AS activeMs,
    COALESCE(MAX(CASE WHEN eventType = 'scroll_depth' THEN CAST(json_extract(data, '$.depth') AS INTEGER) END), 0) AS maxScrollDepth,
    SUM(eventType = 'form_submit') AS formSubmissions
  FROM ev
  GROUP BY sessionId
)
INSERT INTO sessions
  (sessionId, visitorId, startedAt, endedAt, eventCount, pageviews, activeMs, maxScrollDepth,
   formSubmissions, landingPath, exitPath)
SELECT
  r.sessionId, r.visitorId, r.startedAt, r.endedAt, r.eventCount, r.pageviews, r.activeMs,
  r.maxScrollDepth, r.formSubmissions,
  -- First and last pageview: one seek each in events_by_session.
  (SELECT p.path FROM events p WHERE p.sessionId = r.sessionId AND p.eventType = 'pageview'
    ORDER BY p.timestamp, p.eventId LIMIT 1),
  (SELECT p.path FROM events p WHERE p.sessionId = r.sessionId AND p.eventType = 'pageview'
    ORDER BY p.timestamp DESC, p.eventId DESC LIMIT 1)
FROM rolled r
WHERE true
ON CONFLICT (sessionId) DO UPDATE SET
  visitorId = excluded.visitorId, startedAt = excluded.startedAt, endedAt = excluded.endedAt,
  eventCount = excluded.eventCount, pageviews = excluded.pageviews, activeMs = excluded.activeMs,
  maxScrollDepth = excluded.maxScrollDepth, formSubmissions = excluded.formSubmissions,
  landingPath = excluded.landingPath, exitPath = excluded.exitPath;
