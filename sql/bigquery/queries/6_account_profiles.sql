-- 6. lead_profiles → account_profiles (MERGE): intent rolled up by company.
-- What: a lead's account is the lower-cased domain of its e-mail (after the first '@'; it must
--   hold a dot and no other '@'), unless the domain is in free_mail_domains. Per account, over
--   its people (leads with lastVisitAt in the 90-day window): people, engagedPeople (score
--   ≥ 40), peakScore, lastVisitAt, company (the most frequent non-empty one, then by name),
--   topPages (the 5 most viewed pages of the window over its people's pageviews, by views then
--   path), accountScore = min(100, peakScore + 10 × max(0, engagedPeople − 1)), accountLevel at
--   80/60/40, previousLevel and levelChangedAt as for leads. An account without people keeps
--   its row at 0 (cold); one without members (all erased or moved) is deleted.
--   The account figures come from one read of lead_profiles' small columns; rescored (pages
--   read, row written) are only accounts that are new, whose figures differ from the row, or
--   with a member whose profile changed since the account was last scored. updatedAt moves
--   only when an account field changed (what `oie` polls for account triggers).
-- When: every 15 minutes, right after 2_lead_profiles.sql.
-- Reads: lead_profiles, account_profiles, free_mail_domains, and the rescored accounts'
--   people's pageviews of the last 91 days (clustered by visitorId).
-- Parameters: `now`, a TIMESTAMP query parameter. Running it twice with the same `now` changes nothing.
MERGE `${dataset}.account_profiles` T
USING (
  WITH params AS (
    SELECT UNIX_MILLIS(@now) AS nowMs, UNIX_MILLIS(@now) - 7776000000 AS windowStart
  ),
  split AS (
    SELECT visitorId, intentScore, lastVisitAt, TRIM(company) AS company, updatedAt,
           IF(STRPOS(TRIM(email), '@') > 1,
              LOWER(SUBSTR(TRIM(email), STRPOS(TRIM(email), '@') + 1)), NULL) AS domain
    FROM `${dataset}.lead_profiles`
  ),
  members AS (
    SELECT s.* EXCEPT (domain), s.domain AS accountDomain
    FROM split s
    WHERE s.domain != '' AND STRPOS(s.domain, '@') = 0 AND STRPOS(s.domain, '.') > 0
      AND s.domain NOT IN (SELECT domain FROM `${dataset}.free_mail_domains`)
  ),
  people AS (
    SELECT m.* FROM members m CROSS JOIN params WHERE m.lastVisitAt >= params.windowStart
  ),
  agg AS (
    SELECT accountDomain,
           COUNT(*) AS people,
           COUNTIF(intentScore >= 40) AS engagedPeople,
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
      WHERE company IS NOT NULL AND company != ''
      GROUP BY accountDomain, company
    )
    WHERE rn = 1
  ),
  figures AS (
    SELECT d.accountDomain,
           c.company,
           COALESCE(a.people, 0) AS people,
           COALESCE(a.engagedPeople, 0) AS engagedPeople,
           COALESCE(a.peakScore, 0) AS peakScore,
           LEAST(100, COALESCE(a.peakScore, 0) + 10 * GREATEST(0, COALESCE(a.engagedPeople, 0) - 1)) AS accountScore,
           a.lastVisitAt
    FROM (SELECT DISTINCT accountDomain FROM members) d
    LEFT JOIN agg a USING (accountDomain)
    LEFT JOIN company c USING (accountDomain)
  ),
  rescore AS (
    SELECT f.*
    FROM figures f
    LEFT JOIN `${dataset}.account_profiles` t USING (accountDomain)
    WHERE t.accountDomain IS NULL
       OR t.people != f.people OR t.engagedPeople != f.engagedPeople
       OR t.peakScore != f.peakScore OR t.lastVisitAt IS DISTINCT FROM f.lastVisitAt
       OR t.company IS DISTINCT FROM COALESCE(f.company, t.company)
       OR EXISTS (
         SELECT 1 FROM members m
         WHERE m.accountDomain = f.accountDomain AND UNIX_MILLIS(m.updatedAt) >= t.scoredAt)
  ),
  events AS (
    SELECT * EXCEPT (rn)
    FROM (
      SELECT e.eventId, e.path, p.accountDomain,
             ROW_NUMBER() OVER (PARTITION BY e.eventId ORDER BY e.receivedAt, e.serverTimestamp) AS rn
      FROM `${dataset}.events` e
      JOIN people p USING (visitorId)
      CROSS JOIN params
      WHERE p.accountDomain IN (SELECT accountDomain FROM rescore)
        AND e.receivedAt >= TIMESTAMP_SUB(@now, INTERVAL 91 DAY) AND e.receivedAt <= @now
        AND e.timestamp >= params.windowStart AND e.timestamp <= params.nowMs
        AND e.eventType = 'pageview'
    )
    WHERE rn = 1
  ),
  pages AS (
    SELECT
      accountDomain,
      CONCAT('[', STRING_AGG(CONCAT('{"path":', TO_JSON_STRING(path), ',"views":', CAST(views AS STRING), '}'), ',' ORDER BY views DESC, path), ']') AS pages
    FROM (
      SELECT accountDomain, path, views,
             ROW_NUMBER() OVER (PARTITION BY accountDomain ORDER BY views DESC, path) AS rn
      FROM (SELECT accountDomain, path, COUNT(*) AS views FROM events GROUP BY accountDomain, path)
    )
    WHERE rn <= 5
    GROUP BY accountDomain
  )
  SELECT
    r.*,
    CASE
      WHEN r.accountScore >= 80 THEN 'burning'
      WHEN r.accountScore >= 60 THEN 'hot'
      WHEN r.accountScore >= 40 THEN 'warm'
      ELSE 'cold'
    END AS accountLevel,
    COALESCE(pg.pages, '[]') AS topPages,
    params.nowMs,
    FALSE AS gone
  FROM rescore r
  CROSS JOIN params
  LEFT JOIN pages pg USING (accountDomain)
  UNION ALL
  -- Accounts left without members.
  SELECT t.accountDomain, NULL, 0, 0, 0, 0, NULL, 'cold', '[]', params.nowMs, TRUE AS gone
  FROM `${dataset}.account_profiles` t
  CROSS JOIN params
  WHERE t.accountDomain NOT IN (SELECT accountDomain FROM members)
) S
ON T.accountDomain = S.accountDomain
WHEN MATCHED AND S.gone THEN DELETE
WHEN MATCHED THEN UPDATE SET
  company = COALESCE(S.company, T.company),
  people = S.people,
  engagedPeople = S.engagedPeople,
  peakScore = S.peakScore,
  accountScore = S.accountScore,
  accountLevel = S.accountLevel,
  previousLevel = IF(T.accountLevel != S.accountLevel, T.accountLevel, T.previousLevel),
  levelChangedAt = IF(T.accountLevel != S.accountLevel, S.nowMs, T.levelChangedAt),
  lastVisitAt = S.lastVisitAt,
  topPages = S.topPages,
  scoredAt = S.nowMs,
  updatedAt = IF(
    T.company IS DISTINCT FROM COALESCE(S.company, T.company)
       OR T.people != S.people
       OR T.engagedPeople != S.engagedPeople
       OR T.peakScore != S.peakScore
       OR T.accountScore != S.accountScore
       OR T.accountLevel != S.accountLevel
       OR T.lastVisitAt IS DISTINCT FROM S.lastVisitAt
       OR T.topPages IS DISTINCT FROM S.topPages,
    TIMESTAMP_MILLIS(S.nowMs), T.updatedAt)
WHEN NOT MATCHED AND NOT S.gone THEN INSERT
  (accountDomain, company, people, engagedPeople, peakScore, accountScore, accountLevel,
   previousLevel, levelChangedAt, lastVisitAt, topPages, scoredAt, updatedAt)
VALUES
  (S.accountDomain, S.company, S.people, S.engagedPeople, S.peakScore, S.accountScore,
   S.accountLevel, NULL, S.nowMs, S.lastVisitAt, S.topPages, S.nowMs, TIMESTAMP_MILLIS(S.nowMs));
