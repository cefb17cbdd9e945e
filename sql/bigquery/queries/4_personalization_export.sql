-- 4. The high-intent lead export for edge personalization (SELECT).
-- What: the leads worth personalizing the website for — hot or burning, seen in the last 30
--   days — with only what a page may show (no e-mail, no last name). `oie` writes the rows to
--   the Worker's PERSONALIZATION KV namespace, keyed by visitorId.
-- When: every 15 minutes, after 2_lead_profiles.sql.
-- Reads: `lead_profiles` only.
-- Parameters: `now`, a TIMESTAMP query parameter. A read-only query: running it twice changes nothing.
SELECT
  visitorId,
  firstName,
  company,
  campaignName,
  intentScore,
  engagementLevel
FROM `${dataset}.lead_profiles`
WHERE engagementLevel IN ('hot', 'burning')
  AND lastVisitAt >= UNIX_MILLIS(@now) - 2592000000
ORDER BY intentScore DESC, visitorId;
