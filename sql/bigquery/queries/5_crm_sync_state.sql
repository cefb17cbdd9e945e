-- 5. crm_sync_log → crm_sync_state (MERGE): the latest outcome per lead and connector.
-- What: folds the delivery outcomes `oie` appended in the last 2 days into one state row per
--   lead and connector: crmContactId and lastSyncedAt from the latest success, syncedToCRM once
--   any success is known, lastError from the latest outcome if it failed (cleared by a later
--   success), ownerEmail from the latest outcome that read the record's owner ('' in the log:
--   no owner). A failure never marks a lead as synced. Rows streamed in the last ~30 minutes
--   cannot be UPDATEd in BigQuery, which is why outcomes go to a log first.
-- When: every 15 minutes (any order relative to the other queries).
-- Reads: `crm_sync_log` partitions of the last 2 days, `crm_sync_state`.
-- Parameters: `now`, a TIMESTAMP query parameter. Running it twice with the same `now` changes nothing.
MERGE `${dataset}.crm_sync_state` T
USING (
  WITH recent AS (
    SELECT *
    FROM `${dataset}.crm_sync_log`
    WHERE syncTime >= TIMESTAMP_SUB(@now, INTERVAL 2 DAY) AND syncTime <= @now
  ),
  latest AS (
    SELECT * EXCEPT (rn)
    FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY visitorId, connector ORDER BY syncedAt DESC, deliveryId DESC) AS rn
      FROM recent
    )
    WHERE rn = 1
  ),
  latestSuccess AS (
    SELECT * EXCEPT (rn)
    FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY visitorId, connector ORDER BY syncedAt DESC, deliveryId DESC) AS rn
      FROM recent
      WHERE success
    )
    WHERE rn = 1
  ),
  latestOwner AS (
    SELECT * EXCEPT (rn)
    FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY visitorId, connector ORDER BY syncedAt DESC, deliveryId DESC) AS rn
      FROM recent
      WHERE ownerEmail IS NOT NULL
    )
    WHERE rn = 1
  )
  SELECT
    l.visitorId,
    l.connector,
    l.syncedAt AS outcomeAt,
    l.success AS outcomeSuccess,
    l.error AS outcomeError,
    s.syncedAt AS successAt,
    s.crmContactId AS successId,
    o.syncedAt AS ownerAt,
    NULLIF(o.ownerEmail, '') AS ownerEmail
  FROM latest l
  LEFT JOIN latestSuccess s USING (visitorId, connector)
  LEFT JOIN latestOwner o USING (visitorId, connector)
) S
ON T.visitorId = S.visitorId AND T.connector = S.connector
WHEN MATCHED THEN UPDATE SET
  crmContactId = IF(S.successAt IS NOT NULL AND S.successAt >= COALESCE(T.lastSyncedAt, 0),
                    COALESCE(S.successId, T.crmContactId), T.crmContactId),
  syncedToCRM = (T.syncedToCRM OR (S.successAt IS NOT NULL)),
  lastSyncedAt = IF(S.successAt IS NOT NULL AND S.successAt >= COALESCE(T.lastSyncedAt, 0),
                    S.successAt, T.lastSyncedAt),
  lastError = IF(S.outcomeAt >= T.updatedAt, IF(S.outcomeSuccess, NULL, S.outcomeError), T.lastError),
  updatedAt = GREATEST(T.updatedAt, S.outcomeAt),
  ownerEmail = IF(S.ownerAt IS NOT NULL, S.ownerEmail, T.ownerEmail)
WHEN NOT MATCHED THEN INSERT
  (visitorId, connector, crmContactId, syncedToCRM, lastSyncedAt, lastError, updatedAt, ownerEmail)
VALUES
  (S.visitorId, S.connector, S.successId, (S.successAt IS NOT NULL), S.successAt,
   IF(S.outcomeSuccess, NULL, S.outcomeError), S.outcomeAt, S.ownerEmail);
