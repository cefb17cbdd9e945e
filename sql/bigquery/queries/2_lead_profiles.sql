-- 2. sessions + events → lead_profiles (MERGE): counters, intent score and level.
-- What: rescores every lead whose score can have changed since the last run:
--   (a) visitors that received events in the last 2 days;
--   (b) leads whose recency band changed by time alone (a band boundary — 24 h, 3 d, 7 d, 14 d,
--       30 d, 90 d after lastVisitAt — passed between scoredAt and `now`);
--   (c) leads with an event that has left the 90-day window (firstVisitAt older than 90 days).
--   The score is the formula of sql/README.md, computed in integer milliseconds of points so
--   rounding is exact and identical to the SQLite version. previousLevel and levelChangedAt
--   record level changes for 3_hot_lead_alerts.sql; the score's parts (score*) and the top pages
--   (topPages) say why (and previousLevelAt when the level before
--   began, which tells it the streaming scorer's alerts of this rise from older ones). scoredAt is stamped on every rescored lead;
--   updatedAt only when a profile field changed (what `oie` polls for sync triggers).
-- When: every 15 minutes, after 1_sessions.sql.
-- Reads: `events` of the last 2 days (partition filter) to find touched visitors, then the
--   rescored visitors' events and sessions of the last 91 days (clustered by visitorId);
--   `lead_profiles`, `identity_map`, `page_classes`.
-- Parameters: `now`, a TIMESTAMP query parameter. Running it twice with the same `now` changes nothing.
MERGE `${dataset}.lead_profiles` T
USING (
  WITH params AS (
    SELECT UNIX_MILLIS(@now) AS nowMs, UNIX_MILLIS(@now) - 7776000000 AS windowStart
  ),
  rescore AS (
    SELECT DISTINCT visitorId
    FROM `${dataset}.events`
    WHERE receivedAt >= TIMESTAMP_SUB(@now, INTERVAL 2 DAY) AND receivedAt <= @now
      AND visitorId IS NOT NULL
    UNION DISTINCT
    SELECT p.visitorId
    FROM `${dataset}.lead_profiles` p
    CROSS JOIN UNNEST([86400000, 259200000, 604800000, 1209600000, 2592000000, 7776000000]) AS band
    CROSS JOIN params
    WHERE p.lastVisitAt IS NOT NULL
      AND p.scoredAt - p.lastVisitAt <= band AND params.nowMs - p.lastVisitAt > band
    UNION DISTINCT
    SELECT p.visitorId
    FROM `${dataset}.lead_profiles` p CROSS JOIN params
    WHERE p.firstVisitAt < params.windowStart
  ),
  events AS (
    SELECT * EXCEPT (rn)
    FROM (
      SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.eventId ORDER BY e.receivedAt, e.serverTimestamp) AS rn
      FROM `${dataset}.events` e
      JOIN rescore USING (visitorId)
      CROSS JOIN params
      WHERE e.receivedAt >= TIMESTAMP_SUB(@now, INTERVAL 91 DAY) AND e.receivedAt <= @now
        AND e.timestamp >= params.windowStart AND e.timestamp <= params.nowMs
    )
    WHERE rn = 1
  ),
  matched AS (
    SELECT
      e.eventId,
      MIN(CASE pc.pageClass WHEN 'pricing' THEN 1 WHEN 'case_study' THEN 2 WHEN 'product' THEN 3 END) AS patternRank
    FROM events e
    JOIN `${dataset}.page_classes` pc ON e.path LIKE pc.pattern
    WHERE e.eventType = 'pageview'
    GROUP BY e.eventId
  ),
  -- A class the site set on the page (the pixel's script-tag overrides) wins over the patterns.
  classified AS (
    SELECT
      e.eventId,
      COALESCE(
        CASE JSON_VALUE(e.data, '$.pageClass') WHEN 'pricing' THEN 1 WHEN 'case_study' THEN 2 WHEN 'product' THEN 3 END,
        m.patternRank) AS classRank
    FROM events e
    LEFT JOIN matched m USING (eventId)
    WHERE e.eventType = 'pageview'
  ),
  counts AS (
    SELECT
      e.visitorId,
      MIN(e.timestamp) AS firstVisitAt,
      MAX(e.timestamp) AS lastVisitAt,
      COUNTIF(e.eventType = 'pageview') AS pageviews,
      COALESCE(SUM(IF(e.eventType = 'page_exit', SAFE_CAST(JSON_VALUE(e.data, '$.activeMs') AS INT64), 0)), 0) AS activeMs,
      COUNTIF(c.classRank = 1) AS pricing,
      COUNTIF(c.classRank = 2) AS caseStudies,
      COUNTIF(c.classRank = 3) AS products,
      COUNTIF(e.eventType = 'form_submit') AS forms,
      COALESCE(MAX(IF(e.eventType = 'scroll_depth', SAFE_CAST(JSON_VALUE(e.data, '$.depth') AS INT64), NULL)), 0) AS maxScrollDepth
    FROM events e
    LEFT JOIN classified c USING (eventId)
    GROUP BY e.visitorId
  ),
  videos AS (
    SELECT visitorId, COUNT(*) AS videosCompleted
    FROM (
      SELECT visitorId, JSON_VALUE(data, '$.src') AS src, MAX(SAFE_CAST(JSON_VALUE(data, '$.percent') AS INT64)) AS percent
      FROM events
      WHERE eventType = 'video_play'
      GROUP BY visitorId, src
    )
    WHERE percent >= 90
    GROUP BY visitorId
  ),
  sess AS (
    SELECT s.visitorId, COUNT(*) AS sessions, COUNTIF(s.maxScrollDepth >= 75) AS deepSessions
    FROM `${dataset}.sessions` s
    JOIN rescore USING (visitorId)
    CROSS JOIN params
    WHERE s.startTime >= TIMESTAMP_SUB(@now, INTERVAL 97 DAY)
      AND s.endedAt >= params.windowStart AND s.startedAt <= params.nowMs
    GROUP BY s.visitorId
  ),
  lastPage AS (
    SELECT visitorId, page
    FROM (
      SELECT visitorId, COALESCE(url, path) AS page,
             ROW_NUMBER() OVER (PARTITION BY visitorId ORDER BY timestamp DESC, eventId DESC) AS rn
      FROM events
      WHERE eventType = 'pageview'
    )
    WHERE rn = 1
  ),
  -- The lead's most viewed pages of the window, at most 5 (views, then path), as JSON.
  topPages AS (
    SELECT
      visitorId,
      CONCAT('[', STRING_AGG(CONCAT('{"path":', TO_JSON_STRING(path), ',"views":', CAST(views AS STRING), '}'), ',' ORDER BY views DESC, path), ']') AS pages
    FROM (
      SELECT visitorId, path, views,
             ROW_NUMBER() OVER (PARTITION BY visitorId ORDER BY views DESC, path) AS rn
      FROM (SELECT visitorId, path, COUNT(*) AS views FROM events WHERE eventType = 'pageview' GROUP BY visitorId, path)
    )
    WHERE rn <= 5
    GROUP BY visitorId
  ),
  identity AS (
    SELECT * EXCEPT (rn)
    FROM (
      SELECT i.*, ROW_NUMBER() OVER (PARTITION BY shortId ORDER BY createdAt DESC) AS rn
      FROM `${dataset}.identity_map` i
      JOIN rescore r ON r.visitorId = i.shortId
    )
    WHERE rn = 1
  ),
  parts AS (
    SELECT
      r.visitorId,
      c.firstVisitAt,
      c.lastVisitAt,
      COALESCE(s.sessions, 0) AS sessions,
      COALESCE(c.pageviews, 0) AS pageviews,
      COALESCE(c.activeMs, 0) AS activeMs,
      COALESCE(c.pricing, 0) AS pricing,
      COALESCE(c.caseStudies, 0) AS caseStudies,
      COALESCE(c.products, 0) AS products,
      COALESCE(c.forms, 0) AS forms,
      COALESCE(v.videosCompleted, 0) AS videosCompleted,
      COALESCE(c.maxScrollDepth, 0) AS maxScrollDepth,
      lp.page AS lastPageUrl,
      COALESCE(tp.pages, '[]') AS topPages,
      CASE
        WHEN c.lastVisitAt IS NULL THEN 0
        WHEN p.nowMs - c.lastVisitAt <= 86400000 THEN 30
        WHEN p.nowMs - c.lastVisitAt <= 259200000 THEN 25
        WHEN p.nowMs - c.lastVisitAt <= 604800000 THEN 20
        WHEN p.nowMs - c.lastVisitAt <= 1209600000 THEN 15
        WHEN p.nowMs - c.lastVisitAt <= 2592000000 THEN 10
        ELSE 5
      END AS recency,
      LEAST(20, 4 * COALESCE(s.sessions, 0)) AS frequency,
      LEAST(1500000, 90000 * COALESCE(c.pageviews, 0) + COALESCE(c.activeMs, 0) + 120000 * COALESCE(s.deepSessions, 0)) AS engagementMs,
      LEAST(25, 8 * COALESCE(c.pricing, 0) + 5 * COALESCE(c.caseStudies, 0) + 4 * COALESCE(c.products, 0)) AS highIntent,
      LEAST(20, 15 * COALESCE(c.forms, 0) + 5 * COALESCE(v.videosCompleted, 0)) AS conversions,
      p.nowMs
    FROM rescore r
    CROSS JOIN params p
    LEFT JOIN counts c USING (visitorId)
    LEFT JOIN sess s USING (visitorId)
    LEFT JOIN videos v USING (visitorId)
    LEFT JOIN lastPage lp USING (visitorId)
    LEFT JOIN topPages tp USING (visitorId)
  ),
  scored AS (
    SELECT
      parts.*,
      -- The dividend is parenthesized on purpose: the BigQuery emulator drops the grouping.
      LEAST(100, DIV((60000 * (recency + frequency + highIntent + conversions) + engagementMs + 30000), 60000)) AS intentScore,
      -- Engagement in points, to a tenth (half up, in integers: identical in both dialects).
      DIV((engagementMs + 3000), 6000) / 10 AS engagementPoints
    FROM parts
  )
  SELECT
    sc.*,
    CASE
      WHEN sc.intentScore >= 80 THEN 'burning'
      WHEN sc.intentScore >= 60 THEN 'hot'
      WHEN sc.intentScore >= 40 THEN 'warm'
      ELSE 'cold'
    END AS engagementLevel,
    i.email, i.firstName, i.lastName, i.company, i.title, i.campaignId, i.campaignName
  FROM scored sc
  LEFT JOIN identity i ON i.shortId = sc.visitorId
) S
ON T.visitorId = S.visitorId
WHEN MATCHED THEN UPDATE SET
  email = COALESCE(S.email, T.email),
  firstName = COALESCE(S.firstName, T.firstName),
  lastName = COALESCE(S.lastName, T.lastName),
  company = COALESCE(S.company, T.company),
  title = COALESCE(S.title, T.title),
  campaignId = COALESCE(S.campaignId, T.campaignId),
  campaignName = COALESCE(S.campaignName, T.campaignName),
  intentScore = S.intentScore,
  engagementLevel = S.engagementLevel,
  previousLevel = IF(T.engagementLevel != S.engagementLevel, T.engagementLevel, T.previousLevel),
  levelChangedAt = IF(T.engagementLevel != S.engagementLevel, S.nowMs, T.levelChangedAt),
  previousLevelAt = IF(T.engagementLevel != S.engagementLevel, T.levelChangedAt, T.previousLevelAt),
  firstVisitAt = S.firstVisitAt,
  lastVisitAt = S.lastVisitAt,
  totalSessions = S.sessions,
  totalPageviews = S.pageviews,
  totalActiveSeconds = DIV(S.activeMs, 1000),
  pricingPageVisits = S.pricing,
  caseStudyViews = S.caseStudies,
  productPageViews = S.products,
  formSubmissions = S.forms,
  videosCompleted = S.videosCompleted,
  maxScrollDepth = S.maxScrollDepth,
  lastPageUrl = COALESCE(S.lastPageUrl, T.lastPageUrl),
  scoreRecency = S.recency,
  scoreFrequency = S.frequency,
  scoreEngagement = S.engagementPoints,
  scoreHighIntent = S.highIntent,
  scoreConversions = S.conversions,
  topPages = S.topPages,
  scoredAt = S.nowMs,
  -- updatedAt moves only when the profile changed (as the SQLite triggers do), so a reader of
  -- changes (oie's BigQuery lead source) is not handed every rescored lead again.
  updatedAt = IF(
    T.email IS DISTINCT FROM COALESCE(S.email, T.email)
       OR T.firstName IS DISTINCT FROM COALESCE(S.firstName, T.firstName)
       OR T.lastName IS DISTINCT FROM COALESCE(S.lastName, T.lastName)
       OR T.company IS DISTINCT FROM COALESCE(S.company, T.company)
       OR T.title IS DISTINCT FROM COALESCE(S.title, T.title)
       OR T.campaignId IS DISTINCT FROM COALESCE(S.campaignId, T.campaignId)
       OR T.campaignName IS DISTINCT FROM COALESCE(S.campaignName, T.campaignName)
       OR T.intentScore IS DISTINCT FROM S.intentScore
       OR T.engagementLevel IS DISTINCT FROM S.engagementLevel
       OR T.firstVisitAt IS DISTINCT FROM S.firstVisitAt
       OR T.lastVisitAt IS DISTINCT FROM S.lastVisitAt
       OR T.totalSessions IS DISTINCT FROM S.sessions
       OR T.totalPageviews IS DISTINCT FROM S.pageviews
       OR T.totalActiveSeconds IS DISTINCT FROM DIV(S.activeMs, 1000)
       OR T.pricingPageVisits IS DISTINCT FROM S.pricing
       OR T.caseStudyViews IS DISTINCT FROM S.caseStudies
       OR T.productPageViews IS DISTINCT FROM S.products
       OR T.formSubmissions IS DISTINCT FROM S.forms
       OR T.videosCompleted IS DISTINCT FROM S.videosCompleted
       OR T.maxScrollDepth IS DISTINCT FROM S.maxScrollDepth
       OR T.lastPageUrl IS DISTINCT FROM COALESCE(S.lastPageUrl, T.lastPageUrl)
       OR T.scoreRecency IS DISTINCT FROM S.recency
       OR T.scoreFrequency IS DISTINCT FROM S.frequency
       OR T.scoreEngagement IS DISTINCT FROM S.engagementPoints
       OR T.scoreHighIntent IS DISTINCT FROM S.highIntent
       OR T.scoreConversions IS DISTINCT FROM S.conversions
       OR T.topPages IS DISTINCT FROM S.topPages,
    TIMESTAMP_MILLIS(S.nowMs), T.updatedAt)
WHEN NOT MATCHED THEN INSERT
  (visitorId, email, firstName, lastName, company, title, campaignId, campaignName,
   intentScore, engagementLevel, previousLevel, levelChangedAt, firstVisitAt, lastVisitAt,
   totalSessions, totalPageviews, totalActiveSeconds, pricingPageVisits, caseStudyViews,
   productPageViews, formSubmissions, videosCompleted, maxScrollDepth, lastPageUrl, scoredAt,
   updatedAt, scoreRecency, scoreFrequency, scoreEngagement, scoreHighIntent, scoreConversions,
   topPages)
VALUES
  (S.visitorId, S.email, S.firstName, S.lastName, S.company, S.title, S.campaignId,
   S.campaignName, S.intentScore, S.engagementLevel, NULL, S.nowMs, S.firstVisitAt,
   S.lastVisitAt, S.sessions, S.pageviews, DIV(S.activeMs, 1000), S.pricing, S.caseStudies,
   S.products, S.forms, S.videosCompleted, S.maxScrollDepth, S.lastPageUrl, S.nowMs,
   TIMESTAMP_MILLIS(S.nowMs), S.recency, S.frequency, S.engagementPoints, S.highIntent,
   S.conversions, S.topPages);
