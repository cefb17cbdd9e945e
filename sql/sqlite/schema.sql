-- Embedded store (SQLite): the same tables and camelCase columns as sql/bigquery/schema.sql.
-- Times are INTEGER milliseconds since epoch; JSON is TEXT. Idempotent: run at every start.

CREATE TABLE IF NOT EXISTS lead_profiles (
  visitorId          TEXT PRIMARY KEY,
  email              TEXT,
  firstName          TEXT,
  lastName           TEXT,
  company            TEXT,
  title              TEXT,
  campaignId         TEXT,
  campaignName       TEXT,
  intentScore        INTEGER NOT NULL DEFAULT 0 CHECK (intentScore BETWEEN 0 AND 100),
  engagementLevel    TEXT NOT NULL DEFAULT 'cold'
                     CHECK (engagementLevel IN ('cold', 'warm', 'hot', 'burning')),
  firstVisitAt       INTEGER,
  lastVisitAt        INTEGER,
  totalSessions      INTEGER NOT NULL DEFAULT 0,
  totalPageviews     INTEGER NOT NULL DEFAULT 0,
  totalActiveSeconds INTEGER NOT NULL DEFAULT 0,
  pricingPageVisits  INTEGER NOT NULL DEFAULT 0,
  caseStudyViews     INTEGER NOT NULL DEFAULT 0,
  productPageViews   INTEGER NOT NULL DEFAULT 0,
  formSubmissions    INTEGER NOT NULL DEFAULT 0,
  videosCompleted    INTEGER NOT NULL DEFAULT 0,
  maxScrollDepth     INTEGER NOT NULL DEFAULT 0,
  lastPageUrl        TEXT,
  scoreRecency       INTEGER,  -- the score's parts (docs/scoring.md): 0–30
  scoreFrequency     INTEGER,  -- 0–20
  scoreEngagement    REAL,     -- 0–25, to a tenth
  scoreHighIntent    INTEGER,  -- 0–25
  scoreConversions   INTEGER,  -- 0–20
  topPages           TEXT,     -- JSON [{"path", "views"}]: the 5 most viewed pages of the window
  disqualified       INTEGER,  -- 1: "Not a fit", said from Slack (by whom, when below)
  disqualifiedBy     TEXT,     -- the Slack user id
  disqualifiedAt     INTEGER,
  previousLevel      TEXT,     -- the level before the last change (NULL: first scored)
  levelChangedAt     INTEGER,
  scoredAt           INTEGER,  -- :now of the scoring run that last scored this lead
  -- When the profile last changed (ms), set by the triggers below.
  updatedAt          INTEGER NOT NULL DEFAULT 0,
  -- Commit-ordered change number, set by the triggers below: SQLite runs one write
  -- transaction at a time, so a reader that remembers the last changeSeq it saw never misses
  -- a change, whoever wrote it (import, scoring, an operator's SQL).
  changeSeq          INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS lead_profiles_by_change ON lead_profiles (changeSeq);
-- Incremental scoring finds leads whose score changes by time alone, and fresh level changes.
CREATE INDEX IF NOT EXISTS lead_profiles_by_last_visit ON lead_profiles (lastVisitAt);
CREATE INDEX IF NOT EXISTS lead_profiles_by_first_visit ON lead_profiles (firstVisitAt);
CREATE INDEX IF NOT EXISTS lead_profiles_by_level_change ON lead_profiles (levelChangedAt);

-- Change numbers never go back, even when the newest profile is erased: a reader positioned
-- at it would otherwise skip the next change (`change_seq_floor` keeps the highest erased).
-- Dropped and made again on every open, so an older database gets these bodies.
DROP TRIGGER IF EXISTS lead_profiles_inserted;
CREATE TRIGGER lead_profiles_inserted AFTER INSERT ON lead_profiles
BEGIN
  UPDATE lead_profiles
     SET changeSeq = (SELECT MAX(COALESCE((SELECT MAX(changeSeq) FROM lead_profiles), 0), COALESCE((SELECT value FROM scoring_state WHERE name = 'change_seq_floor'), 0)) + 1),
         updatedAt = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
   WHERE visitorId = NEW.visitorId;
END;

-- Only a real change counts: rewriting the same values bumps nothing.
DROP TRIGGER IF EXISTS lead_profiles_updated;
CREATE TRIGGER lead_profiles_updated AFTER UPDATE ON lead_profiles
WHEN NEW.changeSeq = OLD.changeSeq AND (
    OLD.email IS NOT NEW.email
   OR OLD.firstName IS NOT NEW.firstName
   OR OLD.lastName IS NOT NEW.lastName
   OR OLD.company IS NOT NEW.company
   OR OLD.title IS NOT NEW.title
   OR OLD.campaignId IS NOT NEW.campaignId
   OR OLD.campaignName IS NOT NEW.campaignName
   OR OLD.intentScore IS NOT NEW.intentScore
   OR OLD.engagementLevel IS NOT NEW.engagementLevel
   OR OLD.firstVisitAt IS NOT NEW.firstVisitAt
   OR OLD.lastVisitAt IS NOT NEW.lastVisitAt
   OR OLD.totalSessions IS NOT NEW.totalSessions
   OR OLD.totalPageviews IS NOT NEW.totalPageviews
   OR OLD.totalActiveSeconds IS NOT NEW.totalActiveSeconds
   OR OLD.pricingPageVisits IS NOT NEW.pricingPageVisits
   OR OLD.caseStudyViews IS NOT NEW.caseStudyViews
   OR OLD.productPageViews IS NOT NEW.productPageViews
   OR OLD.formSubmissions IS NOT NEW.formSubmissions
   OR OLD.videosCompleted IS NOT NEW.videosCompleted
   OR OLD.maxScrollDepth IS NOT NEW.maxScrollDepth
   OR OLD.lastPageUrl IS NOT NEW.lastPageUrl
   OR OLD.scoreRecency IS NOT NEW.scoreRecency
   OR OLD.scoreFrequency IS NOT NEW.scoreFrequency
   OR OLD.scoreEngagement IS NOT NEW.scoreEngagement
   OR OLD.scoreHighIntent IS NOT NEW.scoreHighIntent
   OR OLD.scoreConversions IS NOT NEW.scoreConversions
   OR OLD.topPages IS NOT NEW.topPages
   OR OLD.disqualified IS NOT NEW.disqualified
)
BEGIN
  UPDATE lead_profiles
     SET changeSeq = (SELECT MAX(COALESCE((SELECT MAX(changeSeq) FROM lead_profiles), 0), COALESCE((SELECT value FROM scoring_state WHERE name = 'change_seq_floor'), 0)) + 1),
         updatedAt = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
   WHERE visitorId = NEW.visitorId;
END;

DROP TRIGGER IF EXISTS lead_profiles_deleted;
CREATE TRIGGER lead_profiles_deleted AFTER DELETE ON lead_profiles
BEGIN
  INSERT INTO scoring_state (name, value) VALUES ('change_seq_floor', OLD.changeSeq)
  ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);
END;

-- Latest CRM outcome per lead and connector, written back after each CRM delivery.
CREATE TABLE IF NOT EXISTS crm_sync_state (
  visitorId     TEXT NOT NULL,
  connector     TEXT NOT NULL,
  crmContactId  TEXT,
  syncedToCRM   INTEGER NOT NULL DEFAULT 0,
  lastSyncedAt  INTEGER,
  lastError     TEXT,
  updatedAt     INTEGER NOT NULL,
  ownerEmail    TEXT,     -- the record's owner in the CRM, read after syncs when a Slack connector has recipient = "owner"
  PRIMARY KEY (visitorId, connector)
);

-- Raw pixel events. eventId is unique: a duplicate delivery of an event is ignored at insert
-- (INSERT OR IGNORE), where BigQuery deduplicates in its queries instead.
CREATE TABLE IF NOT EXISTS events (
  eventId          TEXT NOT NULL UNIQUE,
  visitorId        TEXT,
  sessionId        TEXT NOT NULL,
  eventType        TEXT NOT NULL,
  timestamp        INTEGER NOT NULL,
  url              TEXT,
  path             TEXT,
  title            TEXT,
  referrer         TEXT,
  data             TEXT,
  serverTimestamp  INTEGER,
  ip               TEXT,
  country          TEXT,
  city             TEXT,
  region           TEXT,
  timezone         TEXT,
  colo             TEXT,
  asn              INTEGER,
  userAgent        TEXT,
  receivedAt       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_visitor ON events (visitorId, timestamp);
CREATE INDEX IF NOT EXISTS events_by_session ON events (sessionId, eventType, timestamp, eventId);
-- Retention prunes by arrival ([store] events_retention).
CREATE INDEX IF NOT EXISTS events_by_arrival ON events (receivedAt);

CREATE TABLE IF NOT EXISTS sessions (
  sessionId        TEXT PRIMARY KEY,
  visitorId        TEXT,
  startedAt        INTEGER NOT NULL,
  endedAt          INTEGER NOT NULL,
  eventCount       INTEGER NOT NULL,
  pageviews        INTEGER NOT NULL,
  activeMs         INTEGER NOT NULL,
  maxScrollDepth   INTEGER NOT NULL,
  formSubmissions  INTEGER NOT NULL,
  landingPath      TEXT,
  exitPath         TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_visitor ON sessions (visitorId, endedAt);
CREATE INDEX IF NOT EXISTS sessions_by_end ON sessions (endedAt);

CREATE TABLE IF NOT EXISTS identity_map (
  shortId       TEXT NOT NULL,
  email         TEXT,
  firstName     TEXT,
  lastName      TEXT,
  company       TEXT,
  title         TEXT,
  campaignId    TEXT,
  campaignName  TEXT,
  createdAt     INTEGER NOT NULL,
  PRIMARY KEY (shortId, createdAt)
);

CREATE TABLE IF NOT EXISTS email_clicks (
  clickId    TEXT PRIMARY KEY,
  visitorId  TEXT,
  target     TEXT,
  timestamp  INTEGER NOT NULL,
  ip         TEXT,
  country    TEXT,
  userAgent  TEXT
);

CREATE TABLE IF NOT EXISTS hot_lead_alerts (
  alertId         TEXT PRIMARY KEY,
  visitorId       TEXT NOT NULL,
  previousLevel   TEXT,
  newLevel        TEXT NOT NULL,
  intentScore     INTEGER NOT NULL,
  levelChangedAt  INTEGER NOT NULL,
  alertedAt       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hot_lead_alerts_by_visitor ON hot_lead_alerts (visitorId);

-- Every level change of a lead (its first level included), kept by queries/7_level_changes.sql:
-- the score history an operator reads.
CREATE TABLE IF NOT EXISTS level_changes (
  visitorId      TEXT NOT NULL,
  previousLevel  TEXT,
  newLevel       TEXT NOT NULL,
  intentScore    INTEGER NOT NULL,
  changedAt      INTEGER NOT NULL,
  PRIMARY KEY (visitorId, changedAt)
);
CREATE INDEX IF NOT EXISTS level_changes_by_time ON level_changes (changedAt);

CREATE TABLE IF NOT EXISTS crm_sync_log (
  deliveryId    TEXT NOT NULL,
  visitorId     TEXT NOT NULL,
  connector     TEXT NOT NULL,
  success       INTEGER NOT NULL,
  crmContactId  TEXT,
  error         TEXT,
  syncedAt      INTEGER NOT NULL,
  ownerEmail    TEXT      -- NULL: not read with this outcome; '': the record has no owner
);
CREATE INDEX IF NOT EXISTS crm_sync_log_by_time ON crm_sync_log (syncedAt);

-- Accounts: intent rolled up by company. An account is the lower-cased domain of its people's
-- business e-mail (free-mail domains have none); queries/6_account_profiles.sql keeps it.
CREATE TABLE IF NOT EXISTS account_profiles (
  accountDomain   TEXT PRIMARY KEY,
  company         TEXT,     -- the most frequent company of its people
  people          INTEGER NOT NULL DEFAULT 0,  -- leads with an event in the 90-day window
  engagedPeople   INTEGER NOT NULL DEFAULT 0,  -- of those, score ≥ 40
  peakScore       INTEGER NOT NULL DEFAULT 0,  -- the highest score of its people
  accountScore    INTEGER NOT NULL DEFAULT 0 CHECK (accountScore BETWEEN 0 AND 100),
  accountLevel    TEXT NOT NULL DEFAULT 'cold'
                  CHECK (accountLevel IN ('cold', 'warm', 'hot', 'burning')),
  previousLevel   TEXT,     -- the level before the last change (NULL: first scored)
  levelChangedAt  INTEGER,
  lastVisitAt     INTEGER,
  topPages        TEXT,     -- JSON [{"path", "views"}]: the account's 5 most viewed pages
  scoredAt        INTEGER,
  updatedAt       INTEGER NOT NULL DEFAULT 0,  -- set by the triggers below, as for leads
  changeSeq       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS account_profiles_by_change ON account_profiles (changeSeq);

DROP TRIGGER IF EXISTS account_profiles_inserted;
CREATE TRIGGER account_profiles_inserted AFTER INSERT ON account_profiles
BEGIN
  UPDATE account_profiles
     SET changeSeq = (SELECT MAX(COALESCE((SELECT MAX(changeSeq) FROM account_profiles), 0), COALESCE((SELECT value FROM scoring_state WHERE name = 'account_seq_floor'), 0)) + 1),
         updatedAt = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
   WHERE accountDomain = NEW.accountDomain;
END;

DROP TRIGGER IF EXISTS account_profiles_updated;
CREATE TRIGGER account_profiles_updated AFTER UPDATE ON account_profiles
WHEN NEW.changeSeq = OLD.changeSeq AND (
    OLD.company IS NOT NEW.company
   OR OLD.people IS NOT NEW.people
   OR OLD.engagedPeople IS NOT NEW.engagedPeople
   OR OLD.peakScore IS NOT NEW.peakScore
   OR OLD.accountScore IS NOT NEW.accountScore
   OR OLD.accountLevel IS NOT NEW.accountLevel
   OR OLD.lastVisitAt IS NOT NEW.lastVisitAt
   OR OLD.topPages IS NOT NEW.topPages
)
BEGIN
  UPDATE account_profiles
     SET changeSeq = (SELECT MAX(COALESCE((SELECT MAX(changeSeq) FROM account_profiles), 0), COALESCE((SELECT value FROM scoring_state WHERE name = 'account_seq_floor'), 0)) + 1),
         updatedAt = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
   WHERE accountDomain = NEW.accountDomain;
END;

DROP TRIGGER IF EXISTS account_profiles_deleted;
CREATE TRIGGER account_profiles_deleted AFTER DELETE ON account_profiles
BEGIN
  INSERT INTO scoring_state (name, value) VALUES ('account_seq_floor', OLD.changeSeq)
  ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);
END;

-- Which account each lead counted in at the last account run: when a lead's e-mail changes
-- domain (or the lead is erased), the account it leaves is rescored too.
CREATE TABLE IF NOT EXISTS account_members (
  visitorId      TEXT PRIMARY KEY,
  accountDomain  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS account_members_by_domain ON account_members (accountDomain);

-- Accounts to rescore at the next run whatever changed (an erased lead's account).
CREATE TABLE IF NOT EXISTS account_pending (
  accountDomain  TEXT PRIMARY KEY
);

-- E-mail domains that name no company (gmail.com, …): their leads have no account. Seeded
-- with the common providers (free_mail_domains.sql); edit the rows like page_classes.
CREATE TABLE IF NOT EXISTS free_mail_domains (
  domain  TEXT PRIMARY KEY
);

-- URL-path patterns (LIKE syntax) that make a pageview a pricing, case-study or product view.
CREATE TABLE IF NOT EXISTS page_classes (
  pageClass  TEXT NOT NULL CHECK (pageClass IN ('pricing', 'case_study', 'product')),
  pattern    TEXT NOT NULL,
  PRIMARY KEY (pageClass, pattern)
);

-- Where incremental scoring has got to (name = 'events_rowid').
CREATE TABLE IF NOT EXISTS scoring_state (
  name   TEXT PRIMARY KEY,
  value  INTEGER NOT NULL
);

-- Erasure requests (DELETE /visitors/{id}): when, and a hash of the id — never the id itself.
CREATE TABLE IF NOT EXISTS erasure_requests (
  visitorHash  TEXT NOT NULL,
  requestedAt  INTEGER NOT NULL,
  erased       TEXT NOT NULL
);
