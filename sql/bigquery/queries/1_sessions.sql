-- 1. events → sessions (MERGE).
-- What: rolls the events of every session that received events in the last 2 days up into one
--   `sessions` row (start, end, pageviews, active time, deepest scroll, forms).
-- When: every 15 minutes, before 2_lead_profiles.sql.
-- Reads: `events` partitions of the last 7 days only (events are partitioned by receivedAt, so a
--   late event arrives in a recent partition; a session is rebuilt from its last 7 days of
--   events). Duplicate events (same eventId) count once.
-- Parameters: `now`, a TIMESTAMP query parameter (scheduled queries pass run_time; see sql/README.md). Running it twice with the
--   same `now` changes nothing.
MERGE `${dataset}.sessions` T
USING (
  WITH touched AS (
    SELECT DISTINCT sessionId
    FROM `${dataset}.events`
    WHERE receivedAt >= TIMESTAMP_SUB(@now, INTERVAL 2 DAY) AND receivedAt <= @now
  ),
  deduped AS (
    SELECT * EXCEPT (rn)
    FROM (
      SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.eventId ORDER BY e.receivedAt, e.serverTimestamp) AS rn
      FROM `${dataset}.events` e
      JOIN touched USING (sessionId)
      WHERE e.receivedAt >= TIMESTAMP_SUB(@now, INTERVAL 7 DAY) AND e.receivedAt <= @now
    )
    WHERE rn = 1
  ),
  pages AS (
    SELECT
      sessionId,
      path,
      ROW_NUMBER() OVER (PARTITION BY sessionId ORDER BY timestamp, eventId) AS fromStart,
      ROW_NUMBER() OVER (PARTITION BY sessionId ORDER BY timestamp DESC, eventId DESC) AS fromEnd
    FROM deduped
    WHERE eventType = 'pageview'
  ),
  rolled AS (
    SELECT
      sessionId,
      MAX(visitorId) AS visitorId,
      MIN(timestamp) AS startedAt,
      MAX(timestamp) AS endedAt,
      COUNT(*) AS eventCount,
      COUNTIF(eventType = 'pageview') AS pageviews,
      COALESCE(SUM(IF(eventType = 'page_exit', SAFE_CAST(JSON_VALUE(data, '$.activeMs') AS INT64), 0)), 0) AS activeMs,
      COALESCE(MAX(IF(eventType = 'scroll_depth', SAFE_CAST(JSON_VALUE(data, '$.depth') AS INT64), NULL)), 0) AS maxScrollDepth,
      COUNTIF(eventType = 'form_submit') AS formSubmissions
    FROM deduped
    GROUP BY sessionId
  )
  SELECT
    r.*,
    (SELECT p.path FROM pages p WHERE p.sessionId = r.sessionId AND p.fromStart = 1) AS landingPath,
    (SELECT p.path FROM pages p WHERE p.sessionId = r.sessionId AND p.fromEnd = 1) AS exitPath
  FROM rolled r
) S
ON T.sessionId = S.sessionId
WHEN MATCHED THEN UPDATE SET
  visitorId = S.visitorId, startedAt = S.startedAt, endedAt = S.endedAt, eventCount = S.eventCount,
  pageviews = S.pageviews, activeMs = S.activeMs, maxScrollDepth = S.maxScrollDepth,
  formSubmissions = S.formSubmissions, landingPath = S.landingPath, exitPath = S.exitPath,
  startTime = TIMESTAMP_MILLIS(S.startedAt)
WHEN NOT MATCHED THEN INSERT
  (sessionId, visitorId, startedAt, endedAt, eventCount, pageviews, activeMs, maxScrollDepth,
   formSubmissions, landingPath, exitPath, startTime)
VALUES
  (S.sessionId, S.visitorId, S.startedAt, S.endedAt, S.eventCount, S.pageviews, S.activeMs,
   S.maxScrollDepth, S.formSubmissions, S.landingPath, S.exitPath, TIMESTAMP_MILLIS(S.startedAt));
