-- 7. lead_profiles → level_changes (insert): every level change of a lead, kept.
-- The SQLite twin of sql/bigquery/queries/7_level_changes.sql.
-- What: each lead whose level changed since the previous run (levelChangedAt, set by step 2
--   when the level differs, and on a lead's first scoring) gets a row: the level it left, the
--   level it reached, its score then, when. A lead's level changes at most once per run of
--   step 2, so run right after it, nothing is missed.
-- When: by `oie` right after 2_lead_profiles.sql, on the same connection.
-- Reads: lead_profiles by levelChangedAt (index). Parameters: :now (ms). Running it twice
--   changes nothing.
INSERT OR IGNORE INTO level_changes (visitorId, previousLevel, newLevel, intentScore, changedAt)
SELECT visitorId, previousLevel, engagementLevel, intentScore, levelChangedAt
FROM lead_profiles
WHERE levelChangedAt >= COALESCE((SELECT value FROM scoring_state WHERE name = 'level_changes_at'), 0)
  AND levelChangedAt <= :now;

INSERT INTO scoring_state (name, value) VALUES ('level_changes_at', :now)
ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);
