-- 3. level rises → hot_lead_alerts (INSERT).
-- What: appends one row per lead per rise to hot or burning: a lead whose level changed in the
--   last 7 days to hot or burning from a lower level (or that was first scored at hot or
--   burning). The alert id is visitorId:levelChangedAt, so a rise is alerted once however
--   often this runs; a fall, or no change, alerts nothing. A rise the Worker's streaming scorer
--   already alerted is skipped: its row (source 'edge', written through the events queue once
--   the moment was published) names this lead at this level or higher, after the level the
--   lead rose from began (previousLevelAt). This query is the backstop of the real-time path.
-- When: every 15 minutes, right after 2_lead_profiles.sql.
-- Reads: `lead_profiles`, and `hot_lead_alerts` partitions of the last 8 days.
-- Parameters: `now`, a TIMESTAMP query parameter. Running it twice with the same `now` changes nothing.
INSERT INTO `${dataset}.hot_lead_alerts`
  (alertId, visitorId, previousLevel, newLevel, intentScore, levelChangedAt, alertedAt, alertTime)
SELECT
  CONCAT(p.visitorId, ':', CAST(p.levelChangedAt AS STRING)),
  p.visitorId,
  p.previousLevel,
  p.engagementLevel,
  p.intentScore,
  p.levelChangedAt,
  UNIX_MILLIS(@now),
  @now
FROM `${dataset}.lead_profiles` p
WHERE p.engagementLevel IN ('hot', 'burning')
  AND p.levelChangedAt >= UNIX_MILLIS(@now) - 604800000
  AND p.levelChangedAt <= UNIX_MILLIS(@now)
  AND (
    p.previousLevel IS NULL
    OR (CASE p.engagementLevel WHEN 'hot' THEN 3 ELSE 4 END)
       > (CASE p.previousLevel WHEN 'cold' THEN 1 WHEN 'warm' THEN 2 WHEN 'hot' THEN 3 ELSE 4 END)
  )
  AND NOT EXISTS (
    SELECT 1
    FROM `${dataset}.hot_lead_alerts` a
    WHERE a.alertTime >= TIMESTAMP_SUB(@now, INTERVAL 8 DAY)
      AND a.alertId = CONCAT(p.visitorId, ':', CAST(p.levelChangedAt AS STRING))
  )
  AND NOT EXISTS (
    SELECT 1
    FROM `${dataset}.hot_lead_alerts` e
    WHERE e.alertTime >= TIMESTAMP_SUB(@now, INTERVAL 8 DAY)
      AND e.source = 'edge'
      AND e.visitorId = p.visitorId
      AND e.levelChangedAt > COALESCE(p.previousLevelAt, 0)
      AND (CASE e.newLevel WHEN 'hot' THEN 3 ELSE 4 END)
          >= (CASE p.engagementLevel WHEN 'hot' THEN 3 ELSE 4 END)
  );
