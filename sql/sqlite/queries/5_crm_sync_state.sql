-- 5. crm_sync_log → crm_sync_state (upsert): the latest outcome per lead and connector.
-- The SQLite twin of the BigQuery query, with the same rules: crmContactId and lastSyncedAt
-- from the latest success, syncedToCRM once any success is known, lastError from the latest
-- outcome if it failed. A failure never marks a lead as synced. (`oie run` in embedded mode
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
)
INSERT INTO crm_sync_state (visitorId, connector, crmContactId, syncedToCRM, lastSyncedAt, lastError, updatedAt)
SELECT
  l.visitorId, l.connector, s.crmContactId, s.syncedAt IS NOT NULL, s.syncedAt,
  CASE WHEN l.success THEN NULL ELSE l.error END,
  l.syncedAt
FROM latest l
LEFT JOIN latestSuccess s ON s.visitorId = l.visitorId AND s.connector = l.connector
WHERE true
ON CONFLICT (visitorId, connector) DO UPDATE SET
  crmContactId = CASE WHEN excluded.lastSyncedAt IS NOT NULL AND excluded.lastSyncedAt >= COALESCE(lastSyncedAt, 0)
                      THEN COALESCE(excluded.crmContactId, crmContactId) ELSE crmContactId END,
  syncedToCRM = syncedToCRM OR excluded.syncedToCRM,
  lastSyncedAt = CASE WHEN excluded.lastSyncedAt IS NOT NULL AND excluded.lastSyncedAt >= COALESCE(lastSyncedAt, 0)
                      THEN excluded.lastSyncedAt ELSE lastSyncedAt END,
  lastError = CASE WHEN excluded.updatedAt >= updatedAt THEN excluded.lastError ELSE lastError END,
  updatedAt = MAX(updatedAt, excluded.updatedAt);
