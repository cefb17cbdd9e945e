use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::clock::now_ms;
use crate::lead::{Lead, Level};
use crate::outbox::HandOver;
use crate::pipeline::{Pipeline, Work};
use crate::routing::Trigger;

pub fn test(
    config: &Path,
    lead_file: &Path,
    trigger: &str,
    previous: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    let lead = read_lead(lead_file)?;
    let now = now_ms();
    let previous = previous.and_then(Level::parse);
    let trigger = match trigger {
        "sync" => Trigger::sync(lead.level(), lead.version(), now),
        _ => Trigger::hot_lead(lead.level(), previous, lead.version(), now),
    };
    let pipeline = Pipeline {
        router: loaded.router,
        connectors: loaded.connectors,
    };
    let eval = pipeline.router.evaluator();
    let work = Work {
        lead: &lead,
        triggers: Vec::new(),
        fires: HashMap::new(),
        crm: Vec::new(),
        snoozed: Default::default(),
        account: None,
    };
    let mut out = HandOver::default();
    let lead_input = pipeline.router.lead_input(&lead);
    let inputs = (&lead_input, &cel::Value::Null);
    let routed = pipeline.route_into(&eval, &work, inputs, &trigger, now, &mut out);
    println!("trigger: {}", trigger.to_json());
    if routed.is_empty() {
        println!("no route matches; nothing would be sent");
    }
    for r in &routed {
        println!("\nroute `{}` matches", r.route);
        let wait = pipeline
            .router
            .routes()
            .iter()
            .find(|x| x.name == r.route)
            .and_then(|x| x.group_wait);
        if let Some(wait) = wait {
            println!(
                "(group_wait {}: this lead is sent inside a digest with the others of the window)",
                humantime::format_duration(wait)
            );
        }
        for d in &out.deliveries[r.deliveries.clone()] {
            let kind = pipeline.connectors[&d.connector].connector.kind();
            println!(
                "→ connector `{}` ({kind}), idempotency key {}:",
                d.connector, d.key
            );
            match &d.payload {
                Ok(p) => println!("{}", pretty(p)),
                Err(e) => println!("  cannot render: {e}"),
            }
        }
    }
    println!("\n(nothing was sent; repeat_after is not applied here)");
    Ok(ExitCode::SUCCESS)
}

fn read_lead(path: &Path) -> anyhow::Result<Lead> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let mut object = value
        .as_object()
        .cloned()
        .context("the lead file must hold one JSON object")?;
    if object.get("visitorId").and_then(|v| v.as_str()).is_none() {
        anyhow::bail!("the lead needs a visitorId");
    }
    if !object.contains_key("engagementLevel") {
        if let Some(score) = object.get("intentScore").and_then(|s| s.as_i64()) {
            object.insert(
                "engagementLevel".into(),
                Level::of_score(score).as_str().into(),
            );
        }
    }
    Ok(Lead::from_json(&object))
}

/// The payload as the vendor gets it: indented, without oie's own hints (`_oie_…` keys, which
/// a connector reads and removes before sending).
fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .and_then(|mut v| {
            if let Some(object) = v.as_object_mut() {
                object.retain(|k, _| !k.starts_with("_oie_"));
            }
            serde_json::to_string_pretty(&v)
        })
        .unwrap_or_else(|_| payload.to_string())
}
