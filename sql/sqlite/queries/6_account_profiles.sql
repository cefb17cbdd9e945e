-- 6. lead_profiles → account_profiles (upsert): intent rolled up by company.
-- The SQLite twin of sql/bigquery/queries/6_account_profiles.sql; the same rules, so both give
-- every account the same row.
-- What: a lead's account is the lower-cased domain of its e-mail (after the first '@'; it must
--   hold a dot and no other '@'), unless the domain is in free_mail_domains. Per account, over
--   its people (leads with lastVisitAt in the 90-day window): people, engagedPeople (score
--   ≥ 40), peakScore, lastVisitAt, company (the most frequent non-empty one, then by name),
--   topPages (the 5 most viewed pages of the window over its people's pageviews, by views then
--   path), accountScore = min(100, peakScore + 10 × max(0, engagedPeople − 1)), accountLevel at
--   80/60/40, previousLevel and levelChangedAt as for leads. An account without people keeps
--   its row at 0 (cold); one without members (all erased or moved) is deleted.
--   Rescored are only the accounts (a) of leads whose profile changed since the last run
--   (changeSeq), before and after a change of e-mail domain, (b) of members whose last visit
--   left the window since the last run, and (c) pending (an erased lead's account).
-- When: by `oie` right after 2_lead_profiles.sql, on the same connection.
-- Reads: lead_profiles (changeSeq and lastVisitAt indexes), account_members, the rescored
--   accounts' people's pageviews (index events_by_visitor), free_mail_domains.
-- Parameters: :now (ms). Running it twice changes nothing.
DROP TABLE IF EXISTS temp.account_run;
CREATE TEMP TABLE account_run AS
SELECT
  COALESCE((SELECT value FROM scoring_state WHERE name = 'account_seq'), 0) AS since,
  COALESCE((SELECT MAX(changeSeq) FROM lead_profiles), 0) AS upto,
  COALESCE((SELECT value FROM scoring_state WHERE name = 'account_now'), 0) AS lastNow;

-- The leads to place (again), with their account now (NULL: none).
DROP TABLE IF EXISTS temp.account_leads;
CREATE TEMP TABLE account_leads AS
WITH touched AS (
  SELECT p.visitorId, p.email
  FROM lead_profiles p, temp.account_run r
  WHERE p.changeSeq > r.since AND p.changeSeq <= r.upto
  UNION
  SELECT p.visitorId, p.email
  FROM lead_profiles p, temp.account_run r
  WHERE p.lastVisitAt >= r.lastNow - 7776000000 AND p.lastVisitAt < :now - 7776000000
),
split AS (
  SELECT visitorId,
         CASE WHEN instr(trim(email), '@') > 1
              THEN lower(substr(trim(email), instr(trim(email), '@') + 1)) END AS domain
  FROM touched
)
SELECT visitorId,
       CASE WHEN domain <> '' AND instr(domain, '@') = 0 AND instr(domain, '.') > 0
                 AND domain NOT IN (SELECT domain FROM free_mail_domains)
            THEN domain END AS accountDomain
FROM split;

DROP TABLE IF EXISTS temp.account_rescore;
CREATE TEMP TABLE account_rescore AS
SELECT accountDomain FROM temp.account_leads WHERE accountDomain IS NOT NULL
UNION
SELECT m.accountDomain FROM account_members m
WHERE m.visitorId IN (SELECT visitorId FROM temp.account_leads)
UNION
SELECT accountDomain FROM account_pending;

DELETE FROM account_members WHERE visitorId IN (SELECT visitorId FROM temp.account_leads);
INSERT INTO account_members (visitorId, accountDomain)
SELECT visitorId, accountDomain FROM temp.account_leads WHERE accountDomain IS NOT NULL;

DELETE FROM account_profiles
WHERE accountDomain IN (SELECT accountDomain FROM temp.account_rescore)
  AND accountDomain NOT IN (SELECT accountDomain FROM account_members);

WITH
params AS (
  SELECT :now AS nowMs, :now - 7776000000 AS windowStart
),
people AS (
  SELECT m.accountDomain, p.visitorId, p.intentScore, p.lastVisitAt, trim(p.company) AS company
  FROM account_members m
  JOIN lead_profiles p ON p.visitorId = m.visitorId
  CROSS JOIN params
  WHERE m.accountDomain IN (SELECT accountDomain FROM temp.account_rescore)
    AND p.lastVisitAt >= params.windowStart
),
agg AS (
  SELECT accountDomain,
         COUNT(*) AS people,
         SUM(intentScore >= 40) AS engagedPeople,
         MAX(intentScore) AS peakScore,
         MAX(lastVisitAt) AS lastVisitAt
  FROM people
  GROUP BY accountDomain
),
company AS (
  SELECT accountDomain, company
  FROM (
    SELECT accountDomain, company,
           ROW_NUMBER() OVER (PARTITION BY accountDomain ORDER BY COUNT(*) DESC, company) AS rn
    FROM people
    WHERE company IS NOT NULL AND company <> ''
    GROUP BY accountDomain, company
  )
  WHERE rn = 1
),
views AS (
  SELECT pe.accountDomain, e.path, COUNT(*) AS views
  FROM people pe
  JOIN events e ON e.visitorId = pe.visitorId
  CROSS JOIN params
  WHERE e.eventType = 'pageview' AND e.timestamp >= params.windowStart AND e.timestamp <= params.nowMs
  GROUP BY pe.accountDomain, e.path
),
pages AS (
  SELECT accountDomain,
         json_group_array(json_object('path', path, 'views', views) ORDER BY views DESC, path) AS pages
  FROM (
    SELECT accountDomain, path, views,
           ROW_NUMBER() OVER (PARTITION BY accountDomain ORDER BY views DESC, path) AS rn
    FROM views
  )
  WHERE rn <= 5
  GROUP BY accountDomain
),
scored AS (
  SELECT r.accountDomain,
         c.company,
         COALESCE(a.people, 0) AS people,
         COALESCE(a.engagedPeople, 0) AS engagedPeople,
         COALESCE(a.peakScore, 0) AS peakScore,
         MIN(100, COALESCE(a.peakScore, 0) + 10 * MAX(0, COALESCE(a.engagedPeople, 0) - 1)) AS accountScore,
         a.lastVisitAt,
         COALESCE(pg.pages, '[]') AS topPages,
         p.nowMs
  FROM temp.account_rescore r
  CROSS JOIN params p
  LEFT JOIN agg a ON a.accountDomain = r.accountDomain
  LEFT JOIN company c ON c.accountDomain = r.accountDomain
  LEFT JOIN pages pg ON pg.accountDomain = r.accountDomain
  WHERE r.accountDomain IN (SELECT accountDomain FROM account_members)
)
INSERT INTO account_profiles
  (accountDomain, company, people, engagedPeople, peakScore, accountScore, accountLevel,
   previousLevel, levelChangedAt, lastVisitAt, topPages, scoredAt)
SELECT
  accountDomain, company, people, engagedPeople, peakScore, accountScore,
  CASE
    WHEN accountScore >= 80 THEN 'burning'
    WHEN accountScore >= 60 THEN 'hot'
    WHEN accountScore >= 40 THEN 'warm'
    ELSE 'cold'
  END,
  NULL, nowMs, lastVisitAt, topPages, nowMs
FROM scored
WHERE true
ON CONFLICT (accountDomain) DO UPDATE SET
  company = COALESCE(excluded.company, company),
  people = excluded.people,
  engagedPeople = excluded.engagedPeople,
  peakScore = excluded.peakScore,
  accountScore = excluded.accountScore,
  accountLevel = excluded.accountLevel,
  previousLevel = CASE WHEN accountLevel != excluded.accountLevel THEN accountLevel ELSE previousLevel END,
  levelChangedAt = CASE WHEN accountLevel != excluded.accountLevel THEN excluded.levelChangedAt ELSE levelChangedAt END,
  lastVisitAt = excluded.lastVisitAt,
  topPages = excluded.topPages,
  scoredAt = excluded.scoredAt;

DELETE FROM account_pending;

INSERT INTO scoring_state (name, value)
SELECT 'account_seq', upto FROM temp.account_run WHERE true
ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);

INSERT INTO scoring_state (name, value) VALUES ('account_now', :now)
ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);

-- How many accounts this run rescored.
SELECT COUNT(*) AS rescored FROM temp.account_rescore;

DROP TABLE temp.account_run;
DROP TABLE temp.account_leads;
DROP TABLE temp.account_rescore;
