-- 3. level rises → hot_lead_alerts (insert). The SQLite twin of the BigQuery query.
-- What: one row per lead per rise to hot or burning (first scored at hot or burning counts as
--   a rise), keyed visitorId:levelChangedAt, so it is alerted once; a fall alerts nothing.
--   (`oie run` also routes the rise in-process, straight to the outbox.)
-- When: right after 2_lead_profiles.sql.
-- Reads: lead_profiles whose level changed since this step last ran, hot_lead_alerts.
-- Parameters: :now (ms). Running it twice changes nothing.
INSERT INTO hot_lead_alerts
  (alertId, visitorId, previousLevel, newLevel, intentScore, levelChangedAt, alertedAt)
SELECT
  p.visitorId || ':' || p.levelChangedAt,
  p.visitorId,
  p.previousLevel,
  p.engagementLevel,
  p.intentScore,
  p.levelChangedAt,
  :now
FROM lead_profiles p
WHERE p.engagementLevel IN ('hot', 'burning')
  -- Level changes since this step last ran (at most 7 days back), via the levelChangedAt index.
  AND p.levelChangedAt > MAX(:now - 604800000,
        COALESCE((SELECT value FROM scoring_state WHERE name = 'alerts_now'), 0))
  AND p.levelChangedAt <= :now
  AND (
    p.previousLevel IS NULL
    OR (CASE p.engagementLevel WHEN 'hot' THEN 3 ELSE 4 END)
       > (CASE p.previousLevel WHEN 'cold' THEN 1 WHEN 'warm' THEN 2 WHEN 'hot' THEN 3 ELSE 4 END)
  )
  AND NOT EXISTS (
    SELECT 1 FROM hot_lead_alerts a WHERE a.alertId = p.visitorId || ':' || p.levelChangedAt
  );

INSERT INTO scoring_state (name, value) VALUES ('alerts_now', :now)
ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);
