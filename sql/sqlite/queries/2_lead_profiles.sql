-- 2. sessions + events → lead_profiles (upsert): counters, intent score and level.
-- The SQLite twin of sql/bigquery/queries/2_lead_profiles.sql; the same formula in the same
-- integer arithmetic, so both give every lead the same score.
-- What: rescores (a) visitors with events since the last run (temp.scoring_run, made by
--   1_sessions.sql or here), (b) scored leads whose recency band changed by time alone since
--   the previous run, and (c) scored leads with an event that has left the 90-day window since
--   the previous run; then moves the watermarks.
-- When: by `oie` right after 1_sessions.sql, on the same connection.
-- Reads: the rescored visitors' events (index events_by_visitor) and sessions, identity_map,
--   page_classes, lead_profiles.
-- Parameters: :now (ms). Running it twice changes nothing.
CREATE TEMP TABLE IF NOT EXISTS scoring_run AS
SELECT
  COALESCE((SELECT value FROM scoring_state WHERE name = 'events_rowid'), 0) AS since,
  COALESCE((SELECT MAX(rowid) FROM events), 0) AS upto;

DROP TABLE IF EXISTS temp.scoring_rescore;
CREATE TEMP TABLE scoring_rescore AS
WITH last AS (
  -- The previous run's :now; a crossing in (last, :now] is what this run must catch. Leads
  -- whose crossing fell before `last` were rescored by that run, so ranges suffice (and use
  -- the lastVisitAt and firstVisitAt indexes instead of reading every profile).
  SELECT COALESCE((SELECT value FROM scoring_state WHERE name = 'last_now'), 0) AS at
),
bands AS (
  SELECT 86400000 AS band UNION ALL SELECT 259200000 UNION ALL SELECT 604800000
  UNION ALL SELECT 1209600000 UNION ALL SELECT 2592000000 UNION ALL SELECT 7776000000
)
SELECT DISTINCT visitorId
FROM events, temp.scoring_run r
WHERE events.rowid > r.since AND events.rowid <= r.upto AND visitorId IS NOT NULL
UNION
SELECT p.visitorId
FROM bands b, last
JOIN lead_profiles p
  ON p.lastVisitAt >= last.at - b.band AND p.lastVisitAt < :now - b.band
WHERE p.scoredAt IS NOT NULL
UNION
SELECT p.visitorId
FROM last
JOIN lead_profiles p
  ON p.firstVisitAt >= last.at - 7776000000 AND p.firstVisitAt < :now - 7776000000
WHERE p.scoredAt IS NOT NULL;

WITH
params AS (
  SELECT :now AS nowMs, :now - 7776000000 AS windowStart
),
-- MATERIALIZED: read the rescored visitors' events once, with what scoring needs extracted
-- (inlined, SQLite would index the whole events table on every run). A pageview's class is the
-- one the site set on it, else the first of pricing, case_study, product whose pattern matches.
ev AS MATERIALIZED (
  SELECT
    e.eventId,
    e.visitorId,
    e.eventType,
    e.timestamp,
    e.path,
    COALESCE(e.url, e.path) AS page,
    CASE WHEN e.eventType = 'pageview' THEN
      COALESCE(
        -- A class the site set on the page (the pixel's script-tag overrides) wins.
        CASE json_extract(e.data, '$.pageClass') WHEN 'pricing' THEN 1 WHEN 'case_study' THEN 2 WHEN 'product' THEN 3 END,
        (SELECT MIN(CASE pc.pageClass WHEN 'pricing' THEN 1 WHEN 'case_study' THEN 2 WHEN 'product' THEN 3 END)
         FROM page_classes pc WHERE e.path LIKE pc.pattern))
    END AS classRank,
    CASE WHEN e.eventType = 'page_exit' THEN CAST(json_extract(e.data, '$.activeMs') AS INTEGER) END AS activeMs,
    CASE WHEN e.eventType = 'scroll_depth' THEN CAST(json_extract(e.data, '$.depth') AS INTEGER) END AS depth,
    CASE WHEN e.eventType = 'video_play' THEN json_extract(e.data, '$.src') END AS videoSrc,
    CASE WHEN e.eventType = 'video_play' THEN CAST(json_extract(e.data, '$.percent') AS INTEGER) END AS videoPercent
  FROM events e, params
  WHERE e.visitorId IN (SELECT visitorId FROM temp.scoring_rescore)
    AND e.timestamp >= params.windowStart AND e.timestamp <= params.nowMs
),
counts AS (
  SELECT
    visitorId,
    MIN(timestamp) AS firstVisitAt,
    MAX(timestamp) AS lastVisitAt,
    SUM(eventType = 'pageview') AS pageviews,
    COALESCE(SUM(activeMs), 0) AS activeMs,
    SUM(classRank = 1) AS pricing,
    SUM(classRank = 2) AS caseStudies,
    SUM(classRank = 3) AS products,
    SUM(eventType = 'form_submit') AS forms,
    COALESCE(MAX(depth), 0) AS maxScrollDepth
  FROM ev
  GROUP BY visitorId
),
videos AS (
  SELECT visitorId, COUNT(*) AS videosCompleted
  FROM (
    SELECT visitorId, videoSrc, MAX(videoPercent) AS percent
    FROM ev
    WHERE eventType = 'video_play'
    GROUP BY visitorId, videoSrc
  )
  WHERE percent >= 90
  GROUP BY visitorId
),
sess AS (
  SELECT s.visitorId, COUNT(*) AS sessions, SUM(s.maxScrollDepth >= 75) AS deepSessions
  FROM sessions s, params
  WHERE s.visitorId IN (SELECT visitorId FROM temp.scoring_rescore)
    AND s.endedAt >= params.windowStart AND s.startedAt <= params.nowMs
  GROUP BY s.visitorId
),
lastPage AS (
  SELECT visitorId, page
  FROM (
    SELECT visitorId, page,
           ROW_NUMBER() OVER (PARTITION BY visitorId ORDER BY timestamp DESC, eventId DESC) AS rn
    FROM ev
    WHERE eventType = 'pageview'
  )
  WHERE rn = 1
),
-- The lead's most viewed pages of the window, at most 5 (views, then path), as JSON.
topPages AS (
  SELECT visitorId, json_group_array(json_object('path', path, 'views', views) ORDER BY views DESC, path) AS pages
  FROM (
    SELECT visitorId, path, views,
           ROW_NUMBER() OVER (PARTITION BY visitorId ORDER BY views DESC, path) AS rn
    FROM (SELECT visitorId, path, COUNT(*) AS views FROM ev WHERE eventType = 'pageview' GROUP BY visitorId, path)
  )
  WHERE rn <= 5
  GROUP BY visitorId
),
identity AS (
  SELECT *
  FROM (
    SELECT i.*, ROW_NUMBER() OVER (PARTITION BY shortId ORDER BY createdAt DESC) AS rn
    FROM identity_map i
    WHERE i.shortId IN (SELECT visitorId FROM temp.scoring_rescore)
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
    MIN(20, 4 * COALESCE(s.sessions, 0)) AS frequency,
    MIN(1500000, 90000 * COALESCE(c.pageviews, 0) + COALESCE(c.activeMs, 0) + 120000 * COALESCE(s.deepSessions, 0)) AS engagementMs,
    MIN(25, 8 * COALESCE(c.pricing, 0) + 5 * COALESCE(c.caseStudies, 0) + 4 * COALESCE(c.products, 0)) AS highIntent,
    MIN(20, 15 * COALESCE(c.forms, 0) + 5 * COALESCE(v.videosCompleted, 0)) AS conversions,
    p.nowMs
  FROM temp.scoring_rescore r
  CROSS JOIN params p
  LEFT JOIN counts c ON c.visitorId = r.visitorId
  LEFT JOIN sess s ON s.visitorId = r.visitorId
  LEFT JOIN videos v ON v.visitorId = r.visitorId
  LEFT JOIN lastPage lp ON lp.visitorId = r.visitorId
  LEFT JOIN topPages tp ON tp.visitorId = r.visitorId
),
scored AS (
  SELECT parts.*,
         MIN(100, (60000 * (recency + frequency + highIntent + conversions) + engagementMs + 30000) / 60000) AS intentScore,
         -- Engagement in points, to a tenth (half up, in integers: identical in both dialects).
         ((engagementMs + 3000) / 6000) / 10.0 AS engagementPoints
  FROM parts
)
INSERT INTO lead_profiles
  (visitorId, email, firstName, lastName, company, title, campaignId, campaignName,
   intentScore, engagementLevel, previousLevel, levelChangedAt, firstVisitAt, lastVisitAt,
   totalSessions, totalPageviews, totalActiveSeconds, pricingPageVisits, caseStudyViews,
   productPageViews, formSubmissions, videosCompleted, maxScrollDepth, lastPageUrl,
   scoreRecency, scoreFrequency, scoreEngagement, scoreHighIntent, scoreConversions, topPages,
   scoredAt)
SELECT
  sc.visitorId, i.email, i.firstName, i.lastName, i.company, i.title, i.campaignId, i.campaignName,
  sc.intentScore,
  CASE
    WHEN sc.intentScore >= 80 THEN 'burning'
    WHEN sc.intentScore >= 60 THEN 'hot'
    WHEN sc.intentScore >= 40 THEN 'warm'
    ELSE 'cold'
  END,
  NULL, sc.nowMs, sc.firstVisitAt, sc.lastVisitAt, sc.sessions, sc.pageviews, sc.activeMs / 1000,
  sc.pricing, sc.caseStudies, sc.products, sc.forms, sc.videosCompleted, sc.maxScrollDepth,
  sc.lastPageUrl, sc.recency, sc.frequency, sc.engagementPoints, sc.highIntent, sc.conversions,
  sc.topPages, sc.nowMs
FROM scored sc
LEFT JOIN identity i ON i.shortId = sc.visitorId
WHERE true
ON CONFLICT (visitorId) DO UPDATE SET
  email = COALESCE(excluded.email, email),
  firstName = COALESCE(excluded.firstName, firstName),
  lastName = COALESCE(excluded.lastName, lastName),
  company = COALESCE(excluded.company, company),
  title = COALESCE(excluded.title, title),
  campaignId = COALESCE(excluded.campaignId, campaignId),
  campaignName = COALESCE(excluded.campaignName, campaignName),
  intentScore = excluded.intentScore,
  engagementLevel = excluded.engagementLevel,
  previousLevel = CASE WHEN engagementLevel != excluded.engagementLevel THEN engagementLevel ELSE previousLevel END,
  levelChangedAt = CASE WHEN engagementLevel != excluded.engagementLevel THEN excluded.levelChangedAt ELSE levelChangedAt END,
  firstVisitAt = excluded.firstVisitAt,
  lastVisitAt = excluded.lastVisitAt,
  totalSessions = excluded.totalSessions,
  totalPageviews = excluded.totalPageviews,
  totalActiveSeconds = excluded.totalActiveSeconds,
  pricingPageVisits = excluded.pricingPageVisits,
  caseStudyViews = excluded.caseStudyViews,
  productPageViews = excluded.productPageViews,
  formSubmissions = excluded.formSubmissions,
  videosCompleted = excluded.videosCompleted,
  maxScrollDepth = excluded.maxScrollDepth,
  lastPageUrl = COALESCE(excluded.lastPageUrl, lastPageUrl),
  scoreRecency = excluded.scoreRecency,
  scoreFrequency = excluded.scoreFrequency,
  scoreEngagement = excluded.scoreEngagement,
  scoreHighIntent = excluded.scoreHighIntent,
  scoreConversions = excluded.scoreConversions,
  topPages = excluded.topPages,
  scoredAt = excluded.scoredAt;

INSERT INTO scoring_state (name, value)
SELECT 'events_rowid', upto FROM temp.scoring_run WHERE true
ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);

INSERT INTO scoring_state (name, value) VALUES ('last_now', :now)
ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);

-- How many leads this run rescored (the daemon's oie_scoring_leads metric).
SELECT COUNT(*) AS rescored FROM temp.scoring_rescore;

DROP TABLE temp.scoring_run;
DROP TABLE temp.scoring_rescore;
