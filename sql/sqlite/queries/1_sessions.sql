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
)
INSERT INTO sessions
  (sessionId, visitorId, startedAt, endedAt, eventCount, pageviews, activeMs, maxScrollDepth,
   formSubmissions, landingPath, exitPath)
SELECT
  e.sessionId,
  MAX(e.visitorId),
  MIN(e.timestamp),
  MAX(e.timestamp),
  COUNT(*),
  SUM(e.eventType = 'pageview'),
  COALESCE(SUM(CASE WHEN e.eventType = 'page_exit' THEN CAST(json_extract(e.data, '$.activeMs') AS INTEGER) END), 0),
  COALESCE(MAX(CASE WHEN e.eventType = 'scroll_depth' THEN CAST(json_extract(e.data, '$.depth') AS INTEGER) END), 0),
  SUM(e.eventType = 'form_submit'),
  (SELECT p.path FROM events p WHERE p.sessionId = e.sessionId AND p.eventType = 'pageview'
    ORDER BY p.timestamp, p.eventId LIMIT 1),
  (SELECT p.path FROM events p WHERE p.sessionId = e.sessionId AND p.eventType = 'pageview'
    ORDER BY p.timestamp DESC, p.eventId DESC LIMIT 1)
FROM events e
WHERE e.sessionId IN (SELECT sessionId FROM touched)
GROUP BY e.sessionId
ON CONFLICT (sessionId) DO UPDATE SET
  visitorId = excluded.visitorId, startedAt = excluded.startedAt, endedAt = excluded.endedAt,
  eventCount = excluded.eventCount, pageviews = excluded.pageviews, activeMs = excluded.activeMs,
  maxScrollDepth = excluded.maxScrollDepth, formSubmissions = excluded.formSubmissions,
  landingPath = excluded.landingPath, exitPath = excluded.exitPath;
