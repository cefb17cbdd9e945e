-- BigQuery schema of the Outbound Intent Engine. `${dataset}` is replaced by the dataset name
-- (`oie bigquery apply` does it; with `bq`, see sql/README.md). Statements are separated by a
-- semicolon at the end of a line, and each is idempotent (CREATE … IF NOT EXISTS).
-- Times: `timestamp`-style columns are INT64 milliseconds since epoch, as in the original
-- design; each partitioned table also has a TIMESTAMP column to partition on, because BigQuery
-- cannot partition on DATE(TIMESTAMP_MILLIS(…)).

-- Raw pixel events, one row per event (deduplicated by eventId in the queries: insertAll's
-- insertId deduplication is best effort). Partitioned by the time the edge received them, so
-- late events land in recent partitions and incremental queries find them.
CREATE TABLE IF NOT EXISTS `${dataset}.events` (
  eventId         STRING NOT NULL,
  visitorId       STRING,            -- the short id from ?i=, NULL for anonymous visitors
  sessionId       STRING NOT NULL,
  eventType       STRING NOT NULL,   -- pageview, scroll_depth, click, form_start, form_submit, video_play, focus_lost, page_exit
  timestamp       INT64 NOT NULL,    -- client time, ms
  url             STRING,
  path            STRING,
  title           STRING,
  referrer        STRING,
  data            JSON,              -- per type: scroll_depth {depth}, page_exit {activeMs, maxScrollDepth}, video_play {src, percent}, form_submit {formId, fields, emailHashes}
  serverTimestamp INT64,             -- edge time, ms
  ip              STRING,
  country         STRING,
  city            STRING,
  region          STRING,
  timezone        STRING,
  colo            STRING,
  asn             INT64,
  userAgent       STRING,
  receivedAt      TIMESTAMP NOT NULL -- edge time; the partition column
)
PARTITION BY DATE(receivedAt)
CLUSTER BY visitorId, eventType
OPTIONS (partition_expiration_days = 730, require_partition_filter = FALSE);

-- Sessions rolled up from events by queries/1_sessions.sql.
CREATE TABLE IF NOT EXISTS `${dataset}.sessions` (
  sessionId        STRING NOT NULL,
  visitorId        STRING,
  startedAt        INT64 NOT NULL,
  endedAt          INT64 NOT NULL,
  eventCount       INT64 NOT NULL,
  pageviews        INT64 NOT NULL,
  activeMs         INT64 NOT NULL,
  maxScrollDepth   INT64 NOT NULL,
  formSubmissions  INT64 NOT NULL,
  landingPath      STRING,
  exitPath         STRING,
  startTime        TIMESTAMP NOT NULL -- TIMESTAMP_MILLIS(startedAt); the partition column
)
PARTITION BY DATE(startTime)
CLUSTER BY visitorId;

-- One row per identified visitor: counters and the intent score over the last 90 days.
CREATE TABLE IF NOT EXISTS `${dataset}.lead_profiles` (
  visitorId          STRING NOT NULL,
  email              STRING,
  firstName          STRING,
  lastName           STRING,
  company            STRING,
  title              STRING,
  campaignId         STRING,
  campaignName       STRING,
  intentScore        INT64 NOT NULL,
  engagementLevel    STRING NOT NULL,  -- cold, warm, hot, burning
  previousLevel      STRING,           -- the level before the last change (NULL: first scored)
  levelChangedAt     INT64,
  previousLevelAt    INT64,            -- when previousLevel began (NULL: first scored)
  firstVisitAt       INT64,            -- first event inside the 90-day window
  lastVisitAt        INT64,            -- last event inside the 90-day window
  totalSessions      INT64 NOT NULL,
  totalPageviews     INT64 NOT NULL,
  totalActiveSeconds INT64 NOT NULL,
  pricingPageVisits  INT64 NOT NULL,
  caseStudyViews     INT64 NOT NULL,
  productPageViews   INT64 NOT NULL,
  formSubmissions    INT64 NOT NULL,
  videosCompleted    INT64 NOT NULL,
  maxScrollDepth     INT64 NOT NULL,
  lastPageUrl        STRING,
  scoreRecency       INT64,            -- the score's parts (docs/scoring.md): 0–30
  scoreFrequency     INT64,            -- 0–20
  scoreEngagement    FLOAT64,          -- 0–25, to a tenth
  scoreHighIntent    INT64,            -- 0–25
  scoreConversions   INT64,            -- 0–20
  topPages           STRING,           -- JSON [{"path", "views"}]: the 5 most viewed pages of the window
  disqualified       BOOL,             -- "Not a fit", said from Slack (by whom, when below)
  disqualifiedBy     STRING,           -- the Slack user id
  disqualifiedAt     INT64,
  scoredAt           INT64 NOT NULL,   -- @now of the run that last scored this lead
  updatedAt          TIMESTAMP NOT NULL -- @now of the run that last changed a profile field
)
CLUSTER BY visitorId;

-- Short id → person, loaded from the outbound tool. Rows expire 90 days after they were
-- created (partition expiration), as the links in old e-mails stop mattering.
CREATE TABLE IF NOT EXISTS `${dataset}.identity_map` (
  shortId       STRING NOT NULL,
  email         STRING,
  firstName     STRING,
  lastName      STRING,
  company       STRING,
  title         STRING,
  campaignId    STRING,
  campaignName  STRING,
  createdAt     TIMESTAMP NOT NULL
)
PARTITION BY DATE(createdAt)
CLUSTER BY shortId
OPTIONS (partition_expiration_days = 90);

-- Clicks on tracked e-mail links (/go).
CREATE TABLE IF NOT EXISTS `${dataset}.email_clicks` (
  clickId     STRING NOT NULL,
  visitorId   STRING,
  target      STRING,
  timestamp   INT64 NOT NULL,
  ip          STRING,
  country     STRING,
  userAgent   STRING,
  clickedAt   TIMESTAMP NOT NULL
)
PARTITION BY DATE(clickedAt)
CLUSTER BY visitorId
OPTIONS (partition_expiration_days = 730);

-- One row per rise of a lead to hot or burning (queries/3_hot_lead_alerts.sql).
CREATE TABLE IF NOT EXISTS `${dataset}.hot_lead_alerts` (
  alertId         STRING NOT NULL,   -- visitorId:levelChangedAt, unique per rise
  visitorId       STRING NOT NULL,
  previousLevel   STRING,
  newLevel        STRING NOT NULL,
  intentScore     INT64 NOT NULL,
  levelChangedAt  INT64 NOT NULL,
  alertedAt       INT64 NOT NULL,
  alertTime       TIMESTAMP NOT NULL,
  source          STRING             -- 'edge': the Worker's streaming scorer, already published
                                     -- to Pub/Sub; NULL: queries/3_hot_lead_alerts.sql
)
PARTITION BY DATE(alertTime)
CLUSTER BY visitorId;

-- Every level change of a lead (its first level included), kept by
-- queries/7_level_changes.sql: the score history an operator reads.
CREATE TABLE IF NOT EXISTS `${dataset}.level_changes` (
  visitorId      STRING NOT NULL,
  previousLevel  STRING,
  newLevel       STRING NOT NULL,
  intentScore    INT64 NOT NULL,
  changedAt      INT64 NOT NULL,
  changeTime     TIMESTAMP NOT NULL  -- TIMESTAMP_MILLIS(changedAt); the partition column
)
PARTITION BY DATE(changeTime)
CLUSTER BY visitorId;

-- Append-only delivery outcomes written by `oie` (streamed rows cannot be updated for ~30
-- minutes, so state is folded from this log by queries/5_crm_sync_state.sql).
CREATE TABLE IF NOT EXISTS `${dataset}.crm_sync_log` (
  deliveryId    STRING NOT NULL,
  visitorId     STRING NOT NULL,
  connector     STRING NOT NULL,
  success       BOOL NOT NULL,
  crmContactId  STRING,
  error         STRING,
  syncedAt      INT64 NOT NULL,
  syncTime      TIMESTAMP NOT NULL,
  ownerEmail    STRING            -- NULL: not read with this outcome; '': the record has no owner
)
PARTITION BY DATE(syncTime)
CLUSTER BY visitorId, connector;

-- Latest CRM outcome per lead and connector.
CREATE TABLE IF NOT EXISTS `${dataset}.crm_sync_state` (
  visitorId     STRING NOT NULL,
  connector     STRING NOT NULL,
  crmContactId  STRING,
  syncedToCRM   BOOL NOT NULL,
  lastSyncedAt  INT64,
  lastError     STRING,
  updatedAt     INT64 NOT NULL,
  ownerEmail    STRING            -- the record's owner in the CRM, read after syncs when a Slack connector has recipient = "owner"
)
CLUSTER BY visitorId, connector;

-- Accounts: intent rolled up by company. An account is the lower-cased domain of its people's
-- business e-mail (free-mail domains have none); queries/6_account_profiles.sql keeps it.
CREATE TABLE IF NOT EXISTS `${dataset}.account_profiles` (
  accountDomain   STRING NOT NULL,
  company         STRING,           -- the most frequent company of its people
  people          INT64 NOT NULL,   -- leads with an event in the 90-day window
  engagedPeople   INT64 NOT NULL,   -- of those, score ≥ 40
  peakScore       INT64 NOT NULL,   -- the highest score of its people
  accountScore    INT64 NOT NULL,
  accountLevel    STRING NOT NULL,  -- cold, warm, hot or burning
  previousLevel   STRING,           -- the level before the last change (NULL: first scored)
  levelChangedAt  INT64,
  lastVisitAt     INT64,
  topPages        STRING,           -- JSON [{"path", "views"}]: the account's 5 most viewed pages
  scoredAt        INT64,
  updatedAt       TIMESTAMP NOT NULL -- @now of the run that last changed an account field
)
CLUSTER BY accountDomain;

-- E-mail domains that name no company (gmail.com, …): their leads have no account. Seeded
-- with the common providers (free_mail_domains.sql); edit the rows like page_classes.
CREATE TABLE IF NOT EXISTS `${dataset}.free_mail_domains` (
  domain  STRING NOT NULL
);

-- URL-path patterns (LIKE syntax) that make a pageview a pricing, case-study or product view.
-- Edit the rows to match your site; see sql/README.md.
CREATE TABLE IF NOT EXISTS `${dataset}.page_classes` (
  pageClass  STRING NOT NULL,  -- pricing, case_study or product
  pattern    STRING NOT NULL
);

-- Erasure requests (DELETE /visitors/{id} on the Worker, `oie visitors erase`): when, what was
-- removed at the edge, and a SHA-256 of the visitor id — never the id itself. `oie run` deletes
-- the visitor's rows from every table (retrying while BigQuery still holds some in its streaming
-- buffer) and then sets doneAt and deleted.
CREATE TABLE IF NOT EXISTS `${dataset}.erasure_requests` (
  visitorHash  STRING NOT NULL,
  requestedAt  INT64 NOT NULL,
  erased       STRING NOT NULL,    -- JSON: what the requester removed (the Worker: KV entries)
  requestTime  TIMESTAMP NOT NULL, -- TIMESTAMP_MILLIS(requestedAt); the partition column
  doneAt       TIMESTAMP,          -- when oie had deleted the visitor from every table
  deleted      STRING              -- JSON: rows deleted per table
)
PARTITION BY DATE(requestTime);
