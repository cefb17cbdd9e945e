use std::path::Path;
use std::process::ExitCode;

use super::DeadlettersCommand;
use crate::clock::now_ms;
use crate::config::Loaded;
use crate::outbox::Outbox;
use crate::routing::trigger_rfc3339;

pub fn run(config: &Path, command: &DeadlettersCommand) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    let outbox = Outbox::open(&loaded.data_dir.join("outbox.db"))?;
    match command {
        DeadlettersCommand::List { json } => list(&outbox, *json),
        DeadlettersCommand::Show { id } => show(&outbox, *id),
        DeadlettersCommand::Replay { ids, all, dry_run } => {
            replay(&loaded, &outbox, ids, *all, *dry_run)
        }
        DeadlettersCommand::Purge {
            older_than,
            dry_run,
        } => {
            let before = now_ms() - older_than.as_millis() as i64;
            let n = outbox.purge_dead(before, *dry_run)?;
            let when = trigger_rfc3339(before);
            match dry_run {
                true => {
                    println!("{n} dead letter(s) last attempted before {when} would be deleted")
                }
                false => println!("deleted {n} dead letter(s) last attempted before {when}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(outbox: &Outbox, json: bool) -> anyhow::Result<ExitCode> {
    let letters = outbox.dead_letters()?;
    for d in &letters {
        if json {
            println!("{}", serde_json::to_string(d)?);
        } else {
            println!(
                "{}\t{}\t{} → {}\t{}\tattempts={}\t{}\t{}",
                d.id,
                trigger_rfc3339(d.updated_at),
                d.route,
                d.connector,
                d.visitor_id,
                d.attempts,
                d.reason.as_deref().unwrap_or("-"),
                d.error.as_deref().unwrap_or("")
            );
        }
    }
    if !json {
        eprintln!("{} dead letter(s)", letters.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn show(outbox: &Outbox, id: i64) -> anyhow::Result<ExitCode> {
    match outbox.dead_letter(id)? {
        Some(detail) => {
            println!("{}", serde_json::to_string_pretty(&detail)?);
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!("no dead letter with id {id}"),
    }
}

fn replay(
    loaded: &Loaded,
    outbox: &Outbox,
    ids: &[i64],
    all: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    if ids.is_empty() && !all {
        anyhow::bail!("name dead letter ids, or --all");
    }
    let wanted: Vec<i64> = if all {
        outbox.dead_letters()?.iter().map(|d| d.id).collect()
    } else {
        ids.to_vec()
    };
    let plans = render_again(loaded, outbox, &wanted)?;
    let mut refused = false;
    let mut replayable = Vec::new();
    let mut rendered = Vec::new();
    for plan in &plans {
        match &plan.now {
            Err(why) => {
                eprintln!("dead letter {}: not replayed: {why}", plan.id);
                refused = true;
            }
            Ok(payload) => {
                replayable.push(plan.id);
                if let Some(p) = payload {
                    rendered.push((plan.id, p.clone()));
                }
                if dry_run {
                    print_plan(plan);
                }
            }
        }
    }
    let missing: Vec<i64> = wanted
        .iter()
        .filter(|id| !plans.iter().any(|p| p.id == **id))
        .copied()
        .collect();
    let result = outbox.replay(&replayable, &rendered, dry_run, now_ms())?;
    let verb = if dry_run { "would requeue" } else { "requeued" };
    println!(
        "{verb} {} dead letter(s): {:?}",
        result.requeued.len(),
        result.requeued
    );
    let not_found: Vec<i64> = missing.into_iter().chain(result.not_found).collect();
    if !not_found.is_empty() {
        eprintln!("no dead letter with id(s) {not_found:?}");
    }
    if refused || !not_found.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What a replay would send for one dead letter.
struct Plan {
    id: i64,
    connector: String,
    before: Option<String>,
    /// The payload rendered now (`None`: send the stored one, for a letter that has no render
    /// input), or why it cannot be replayed.
    now: Result<Option<String>, String>,
}

/// Renders every dead letter again from its input, with today's config and templates, so a
/// fixed mapping or template is what the replay sends.
fn render_again(loaded: &Loaded, outbox: &Outbox, ids: &[i64]) -> anyhow::Result<Vec<Plan>> {
    let mut out = Vec::new();
    for input in outbox.render_inputs(ids)? {
        let now = if input.connector == crate::sources::pubsub::DEAD_LETTER_CONNECTOR {
            Err("a Pub/Sub message that names no routable lead; fix the publisher and publish it again".to_string())
        } else if let Some(handle) = loaded.connectors.get(&input.connector) {
            match &input.context {
                // What a Slack click handed over (a message update, an owner assignment) has no
                // template: it is sent again as it was.
                Some(context) if sent_as_is(context) => Ok(None),
                Some(context) => {
                    let context =
                        oie_connectors::RenderContext::new(serde_json::from_str(context)?);
                    handle
                        .connector
                        .render(&context)
                        .map(Some)
                        .map_err(|e| format!("still cannot render: {e}"))
                }
                // Queued by an older oie, which kept no render input: sent as it was.
                None if input.payload.is_some() => Ok(None),
                None => Err("it has neither a payload nor its render input".to_string()),
            }
        } else {
            Err(format!(
                "connector `{}` is no longer configured",
                input.connector
            ))
        };
        out.push(Plan {
            id: input.id,
            connector: input.connector,
            before: input.payload,
            now,
        });
    }
    Ok(out)
}

/// Whether a render input marks a delivery made without a template (`"sentAsIs": true`).
fn sent_as_is(context: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(context)
        .is_ok_and(|c| c["sentAsIs"] == serde_json::Value::Bool(true))
}

/// `--dry-run`: the payload sent before beside the one the replay would send.
fn print_plan(plan: &Plan) {
    let pretty = |p: &str| {
        serde_json::from_str::<serde_json::Value>(p)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| p.to_string())
    };
    let before = plan.before.as_deref().map(pretty);
    let now = match &plan.now {
        Ok(Some(p)) => Some(pretty(p)),
        _ => before.clone(),
    };
    println!("dead letter {} → {}", plan.id, plan.connector);
    if before == now {
        println!("  payload unchanged:\n{}", now.unwrap_or_default());
        return;
    }
    println!(
        "  sent before:\n{}",
        before.unwrap_or_else(|| "(nothing: it could not be rendered)".into())
    );
    println!("  would send now:\n{}", now.unwrap_or_default());
}
