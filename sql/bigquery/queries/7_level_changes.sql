-- 7. lead_profiles → level_changes (insert): every level change of a lead, kept.
-- What: each lead whose level changed in the last 2 days (levelChangedAt, set by step 2 when
--   the level differs, and on a lead's first scoring) and is not recorded yet gets a row: the
--   level it left, the level it reached, its score then, when. A lead's level changes at most
--   once per run of step 2, so run right after it (same script), nothing is missed.
-- When: every 15 minutes, right after 2_lead_profiles.sql.
-- Reads: lead_profiles, level_changes of the last 3 days (partition filter).
-- Parameters: `now`, a TIMESTAMP query parameter. Running it twice with the same `now` changes nothing.
INSERT INTO `${dataset}.level_changes` (visitorId, previousLevel, newLevel, intentScore, changedAt, changeTime)
SELECT p.visitorId, p.previousLevel, p.engagementLevel, p.intentScore, p.levelChangedAt,
       TIMESTAMP_MILLIS(p.levelChangedAt)
FROM `${dataset}.lead_profiles` p
WHERE p.levelChangedAt >= UNIX_MILLIS(@now) - 172800000 AND p.levelChangedAt <= UNIX_MILLIS(@now)
  AND NOT EXISTS (
    SELECT 1 FROM `${dataset}.level_changes` c
    WHERE c.changeTime >= TIMESTAMP_SUB(@now, INTERVAL 3 DAY)
      AND c.visitorId = p.visitorId AND c.changedAt = p.levelChangedAt);
