//! `[sources.leads]` on a BigQuery store: `hot_lead` triggers from new `hot_lead_alerts` rows,
//! `sync` triggers from `lead_profiles` rows whose `updatedAt` moved, each read in pages past a
//! cursor that is committed with the deliveries it produced (a restart never re-triggers what
//! was handed over). Trigger identities come from the rows (`hot_lead:moment:<alertId>`,
//! `sync:<updatedAt>`), so every replica computes the same idempotency keys.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::lead::Lead;
use crate::routing::{Trigger, TriggerKind};
use crate::sources::stage::{Arrival, Progress, Stage};
use crate::sources::Source;
use crate::store::{BigQueryStore, Cursor, ALERT_LOOKBACK_MS};

/// The `triggers_total{source}` label.
pub const SOURCE: &str = "bigquery";
/// Cursor names in the outbox.
pub const ALERTS: &str = "bigquery.hot_lead_alerts";
pub const PROFILES: &str = "bigquery.lead_profiles";

pub struct BigQuerySource {
    pub store: Arc<BigQueryStore>,
    pub stage: Arc<Stage>,
    pub page: usize,
}

/// What one page did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub rows: usize,
    pub enqueued: usize,
}

impl Page {
    /// Whether the page was full, so another may follow.
    pub fn full(&self, page: usize) -> bool {
        self.rows >= page
    }
}

impl BigQuerySource {
    /// Hands over one page of new alerts.
    pub async fn alerts_page(&self, now: i64) -> anyhow::Result<Page> {
        let after = self.cursor(ALERTS).await?.unwrap_or_else(|| Cursor {
            ms: now - ALERT_LOOKBACK_MS,
            id: String::new(),
        });
        let alerts = self.store.alerts_after(&after, self.page).await?;
        let Some(last) = alerts.last() else {
            return Ok(Page::default());
        };
        let cursor = Cursor {
            ms: last.alerted_at,
            id: last.alert_id.clone(),
        };
        let ids: Vec<&str> = alerts.iter().map(|a| a.visitor_id.as_str()).collect();
        let profiles = self.store.profiles(&ids).await?;
        let crm = self.store.crm_ids(&ids).await?;
        let mut leads = Vec::new();
        for a in &alerts {
            match profiles.get(&a.visitor_id) {
                Some(lead) => leads.push((
                    lead.clone(),
                    Trigger::moment(
                        TriggerKind::HotLead,
                        a.level,
                        a.previous_level,
                        &a.alert_id,
                        a.alerted_at,
                    )
                    .caused_at(lead.get("lastVisitAt").as_i64()),
                )),
                None => tracing::warn!(alert = %a.alert_id,
                    "hot_lead_alerts row without a lead_profiles row (erased?): skipped"),
            }
        }
        let enqueued = self.hand_over(leads, crm, (ALERTS, cursor), now).await?;
        Ok(Page {
            rows: alerts.len(),
            enqueued,
        })
    }

    /// Hands over one page of changed profiles. Unless `continuing` a full page, it first asks
    /// whether `lead_profiles` changed at all (one column read), and reads nothing if not.
    pub async fn profiles_page(&self, now: i64, continuing: bool) -> anyhow::Result<Page> {
        let after = self.cursor(PROFILES).await?.unwrap_or(Cursor {
            ms: 0,
            id: String::new(),
        });
        if !continuing {
            match self.store.latest_change().await? {
                Some(latest) if latest > after.ms => {}
                _ => return Ok(Page::default()),
            }
        }
        let leads = self.store.changed_profiles(&after, self.page).await?;
        let Some(last) = leads.last() else {
            return Ok(Page::default());
        };
        let cursor = Cursor {
            ms: last.version(),
            id: last.visitor_id().to_string(),
        };
        let ids: Vec<&str> = leads.iter().map(Lead::visitor_id).collect();
        let crm = self.store.crm_ids(&ids).await?;
        let rows = leads.len();
        let work = leads
            .into_iter()
            .map(|l| {
                let t = Trigger::sync(l.level(), l.version(), now);
                (l, t)
            })
            .collect();
        let enqueued = self.hand_over(work, crm, (PROFILES, cursor), now).await?;
        Ok(Page { rows, enqueued })
    }

    async fn cursor(&self, name: &'static str) -> anyhow::Result<Option<Cursor>> {
        let outbox = self.stage.outbox.clone();
        let text = tokio::task::spawn_blocking(move || outbox.cursor(name)).await??;
        Ok(text.as_deref().and_then(Cursor::decode))
    }

    /// Routes the leads and commits their deliveries with the cursor (blocking: SQLite).
    async fn hand_over(
        &self,
        leads: Vec<(Lead, Trigger)>,
        crm: HashMap<String, Vec<crate::store::CrmRecord>>,
        (name, cursor): (&str, Cursor),
        now: i64,
    ) -> anyhow::Result<usize> {
        let arrivals: Vec<Arrival> = leads
            .into_iter()
            .map(|(lead, trigger)| Arrival {
                // A page may hold two alerts of one lead.
                crm: crm.get(lead.visitor_id()).cloned().unwrap_or_default(),
                account: None,
                triggers: vec![trigger],
                lead,
            })
            .collect();
        let progress = Progress {
            cursors: vec![(name.to_string(), cursor.encode())],
            ..Progress::default()
        };
        let stage = self.stage.clone();
        let handed =
            tokio::task::spawn_blocking(move || stage.hand_over(arrivals, progress, now)).await??;
        Ok(handed.added)
    }
}

/// Every page of new alerts, then every page of changed profiles.
#[async_trait::async_trait]
impl Source for BigQuerySource {
    async fn poll(
        self: Arc<Self>,
        stop: CancellationToken,
        handed: Arc<dyn Fn(usize) + Send + Sync>,
    ) -> anyhow::Result<()> {
        let (mut alerts, mut profiles) = (0, 0);
        loop {
            let page = self.alerts_page(now_ms()).await?;
            handed(page.enqueued);
            alerts += page.rows;
            if !page.full(self.page) || stop.is_cancelled() {
                break;
            }
        }
        let mut continuing = false;
        loop {
            let page = self.profiles_page(now_ms(), continuing).await?;
            handed(page.enqueued);
            profiles += page.rows;
            continuing = page.full(self.page);
            if !continuing || stop.is_cancelled() {
                break;
            }
        }
        if alerts + profiles > 0 {
            tracing::info!(alerts, profiles, "BigQuery changes handed over");
        }
        Ok(())
    }
}
