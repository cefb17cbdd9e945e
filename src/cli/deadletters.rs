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
    let done = crate::api::replay::replay(&loaded.connectors, outbox, &wanted, dry_run, now_ms())?;
    let mut refused = false;
    for plan in &done.plans {
        match &plan.now {
            Err(why) => {
                eprintln!("dead letter {}: not replayed: {why}", plan.id);
                refused = true;
            }
            Ok(_) if dry_run => print_plan(plan),
            Ok(_) => {}
        }
    }
    let verb = if dry_run { "would requeue" } else { "requeued" };
    println!(
        "{verb} {} dead letter(s): {:?}",
        done.requeued.len(),
        done.requeued
    );
    if !done.not_found.is_empty() {
        eprintln!("no dead letter with id(s) {:?}", done.not_found);
    }
    if refused || !done.not_found.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--dry-run`: the payload sent before beside the one the replay would send.
fn print_plan(plan: &crate::api::replay::Plan) {
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
