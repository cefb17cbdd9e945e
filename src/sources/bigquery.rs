//! `[sources.leads]` on a BigQuery store: `hot_lead` triggers from new `hot_lead_alerts` rows,
//! `sync` triggers from `lead_profiles` rows whose `updatedAt` moved, `account_hot` and
//! `account_sync` from `account_profiles` rows whose `updatedAt` moved, each read in pages past a
//! cursor that is committed with the deliveries it produced (a restart never re-triggers what
//! was handed over). Trigger identities come from the rows (`hot_lead:moment:<alertId>`,
//! `sync:<updatedAt>`), so every replica computes the same idempotency keys.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use serde_json::json;

use crate::account::{self, Account};
use crate::clock::now_ms;
use crate::lead::Lead;
use crate::outbox::Seen;
use crate::routing::{Trigger, TriggerKind};
use crate::sources::accounts;
use crate::sources::stage::{Arrival, Progress, Stage};
use crate::sources::Source;
use crate::store::{BigQueryStore, Cursor, ALERT_LOOKBACK_MS};

/// The `triggers_total{source}` label.
pub const SOURCE: &str = "bigquery";
/// Cursor names in the outbox.
pub const ALERTS: &str = "bigquery.hot_lead_alerts";
pub const PROFILES: &str = "bigquery.lead_profiles";
pub const ACCOUNTS: &str = "bigquery.account_profiles";

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

    /// Hands over one page of changed accounts, as [`BigQuerySource::profiles_page`] does
    /// leads: `account_hot` for a rise to hot or burning since the account was last seen here,
    /// `account_sync` for every change (its identity is the row's `updatedAt`, the same on
    /// every replica).
    pub async fn accounts_page(&self, now: i64, continuing: bool) -> anyhow::Result<Page> {
        let after = self.cursor(ACCOUNTS).await?.unwrap_or(Cursor {
            ms: 0,
            id: String::new(),
        });
        if !continuing {
            match self.store.latest_account_change().await? {
                Some(latest) if latest > after.ms => {}
                _ => return Ok(Page::default()),
            }
        }
        let accounts = self.store.changed_accounts(&after, self.page).await?;
        let Some(last) = accounts.last() else {
            return Ok(Page::default());
        };
        let cursor = Cursor {
            ms: last.version(),
            id: last.domain().to_string(),
        };
        let rows = accounts.len();
        let domains: Vec<&str> = accounts.iter().map(Account::domain).collect();
        let (mut engaged, mut members) = self.store.account_people(&domains, now).await?;
        let keys: Vec<String> = domains.iter().map(|d| account::key(d)).collect();
        let key_ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut crm = self.store.crm_ids(&key_ids).await?;
        let stage = self.stage.clone();
        let handed = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let key_ids: Vec<&str> = keys.iter().map(String::as_str).collect();
            let seen = stage.outbox.seen(&key_ids)?;
            let mut arrivals = Vec::new();
            let mut progress_seen = Vec::new();
            for (mut a, key) in accounts.into_iter().zip(keys.iter()) {
                let triggers = accounts::triggers(&a, seen.get(key).copied(), now);
                progress_seen.push((
                    key.clone(),
                    Seen {
                        level: a.level(),
                        version: a.version(),
                    },
                ));
                if triggers.is_empty() {
                    continue;
                }
                let domain = a.domain().to_string();
                a.set(
                    "engaged",
                    engaged.remove(&domain).unwrap_or_else(|| json!([])),
                );
                a.set(
                    "memberRecords",
                    members.remove(&domain).unwrap_or_else(|| json!([])),
                );
                let records = crm.remove(key).unwrap_or_default();
                a.set("records", accounts::records_json(&records));
                let lead =
                    Lead::from_json(json!({ "visitorId": key }).as_object().expect("object"));
                arrivals.push(Arrival {
                    lead,
                    triggers,
                    crm: records,
                    account: Some(a),
                });
            }
            let progress = Progress {
                cursors: vec![(ACCOUNTS.to_string(), cursor.encode())],
                seen: progress_seen,
                ..Progress::default()
            };
            Ok(stage.hand_over(arrivals, progress, now)?.added)
        })
        .await??;
        Ok(Page {
            rows,
            enqueued: handed,
        })
    }

    /// The account of each lead that has one, with its own CRM records and how many others of
    /// it were seen this week.
    async fn accounts_of(
        &self,
        leads: &[&Lead],
        now: i64,
    ) -> anyhow::Result<HashMap<String, Account>> {
        let of: HashMap<String, String> = leads
            .iter()
            .filter_map(|l| {
                let domain = account::domain_of(l.get("email").as_str()?)?;
                Some((l.visitor_id().to_string(), domain))
            })
            .collect();
        let mut domains: Vec<&str> = of.values().map(String::as_str).collect();
        domains.sort();
        domains.dedup();
        let found = self.store.accounts(&domains).await?;
        if found.is_empty() {
            return Ok(HashMap::new());
        }
        let known: Vec<&str> = found.keys().map(String::as_str).collect();
        let week = self.store.seen_this_week(&known, now).await?;
        let keys: Vec<String> = known.iter().map(|d| account::key(d)).collect();
        let key_ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        let records = self.store.crm_ids(&key_ids).await?;
        let week_ago = now - 7 * 86_400_000;
        let mut out = HashMap::new();
        for lead in leads {
            let Some(mut a) = of
                .get(lead.visitor_id())
                .and_then(|d| found.get(d))
                .cloned()
            else {
                continue;
            };
            let this_week = week.get(a.domain()).copied().unwrap_or(0);
            let me = i64::from(
                lead.get("lastVisitAt")
                    .as_i64()
                    .is_some_and(|t| t >= week_ago),
            );
            a.set("othersThisWeek", json!((this_week - me).max(0)));
            let own = records
                .get(&account::key(a.domain()))
                .map(|r| accounts::records_json(r))
                .unwrap_or_else(|| json!([]));
            a.set("records", own);
            out.insert(lead.visitor_id().to_string(), a);
        }
        Ok(out)
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
        let people: Vec<&Lead> = leads.iter().map(|(l, _)| l).collect();
        let accounts = match self.accounts_of(&people, now).await {
            Ok(accounts) => accounts,
            Err(e) => {
                // The people go out without their accounts rather than not at all.
                tracing::warn!(error = %format!("{e:#}"), "could not read the leads' accounts (a dataset from before accounts? run `oie bigquery apply`)");
                HashMap::new()
            }
        };
        let arrivals: Vec<Arrival> = leads
            .into_iter()
            .map(|(lead, trigger)| Arrival {
                // A page may hold two alerts of one lead.
                crm: crm.get(lead.visitor_id()).cloned().unwrap_or_default(),
                account: accounts.get(lead.visitor_id()).cloned(),
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
        let mut accounts = 0;
        let mut continuing = false;
        loop {
            let page = self.accounts_page(now_ms(), continuing).await?;
            handed(page.enqueued);
            accounts += page.rows;
            continuing = page.full(self.page);
            if !continuing || stop.is_cancelled() {
                break;
            }
        }
        if alerts + profiles + accounts > 0 {
            tracing::info!(alerts, profiles, accounts, "BigQuery changes handed over");
        }
        Ok(())
    }
}
