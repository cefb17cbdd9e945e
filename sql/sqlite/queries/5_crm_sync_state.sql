-- 5. crm_sync_log → crm_sync_state (upsert): the latest outcome per lead and connector.
-- The SQLite twin of the BigQuery query, with the same rules: crmContactId and lastSyncedAt
-- from the latest success, syncedToCRM once any success is known, lastError from the latest
-- outcome if it failed, ownerEmail from the latest outcome that read the record's owner ('' in
-- the log: no owner). A failure never marks a lead as synced. (`oie run` in embedded mode
-- also writes crm_sync_state directly after each CRM delivery.)
-- When: any time. Reads: crm_sync_log of the last 2 days, crm_sync_state.
-- Parameters: :now (ms). Running it twice changes nothing.
WITH recent AS (
  SELECT * FROM crm_sync_log WHERE syncedAt >= :now - 172800000 AND syncedAt <= :now
),
latest AS (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY visitorId, connector ORDER BY syncedAt DESC, deliveryId DESC) AS rn
    FROM recent
  ) WHERE rn = 1
),
latestSuccess AS (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY visitorId, connector ORDER BY syncedAt DESC, deliveryId DESC) AS rn
    FROM recent WHERE success
  ) WHERE rn = 1
),
latestOwner AS (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY visitorId, connector ORDER BY syncedAt DESC, deliveryId DESC) AS rn
    FROM recent WHERE ownerEmail IS NOT NULL
  ) WHERE rn = 1
)
-- ownerEmail goes in as the log has it ('' for no owner, NULL when not read), so the update
-- can tell the two apart; '' becomes NULL below.
INSERT INTO crm_sync_state (visitorId, connector, crmContactId, syncedToCRM, lastSyncedAt, lastError, updatedAt, ownerEmail)
SELECT
  l.visitorId, l.connector, s.crmContactId, s.syncedAt IS NOT NULL, s.syncedAt,
  CASE WHEN l.success THEN NULL ELSE l.error END,
  l.syncedAt, o.ownerEmail
FROM latest l
LEFT JOIN latestSuccess s ON s.visitorId = l.visitorId AND s.connector = l.connector
LEFT JOIN latestOwner o ON o.visitorId = l.visitorId AND o.connector = l.connector
WHERE true
ON CONFLICT (visitorId, connector) DO UPDATE SET
  crmContactId = CASE WHEN excluded.lastSyncedAt IS NOT NULL AND excluded.lastSyncedAt >= COALESCE(lastSyncedAt, 0)
                      THEN COALESCE(excluded.crmContactId, crmContactId) ELSE crmContactId END,
  syncedToCRM = syncedToCRM OR excluded.syncedToCRM,
  lastSyncedAt = CASE WHEN excluded.lastSyncedAt IS NOT NULL AND excluded.lastSyncedAt >= COALESCE(lastSyncedAt, 0)
                      THEN excluded.lastSyncedAt ELSE lastSyncedAt END,
  lastError = CASE WHEN excluded.updatedAt >= updatedAt THEN excluded.lastError ELSE lastError END,
  updatedAt = MAX(updatedAt, excluded.updatedAt),
  ownerEmail = CASE WHEN excluded.ownerEmail IS NULL THEN ownerEmail ELSE excluded.ownerEmail END;
UPDATE crm_sync_state SET ownerEmail = NULL WHERE ownerEmail = '';
