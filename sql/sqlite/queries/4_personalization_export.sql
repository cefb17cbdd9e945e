-- 4. The high-intent lead export for personalization (select). The SQLite twin of the
-- BigQuery query: hot or burning leads seen in the last 30 days, with only what a page may
-- show. `oie` answers GET /personalize from it.
-- When: on demand. Reads: lead_profiles. Parameters: :now (ms). Read-only.
SELECT
  visitorId,
  firstName,
  company,
  campaignName,
  intentScore,
  engagementLevel
FROM lead_profiles
WHERE engagementLevel IN ('hot', 'burning')
  AND lastVisitAt >= :now - 2592000000
ORDER BY intentScore DESC, visitorId;
