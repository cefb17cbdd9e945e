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
    }
}

fn list(outbox: &Outbox, json: bool) -> anyhow::Result<ExitCode> {
    let letters = outbox.dead_letters()?;
    for d in &letters {
        if json {
            println!("{}", serde_json::to_string(d)?);
        } else {
            println!(
                "{}\t{}\t{} → {}\t{}\tattempts={}\t{}",
                d.id,
                trigger_rfc3339(d.updated_at),
                d.route,
                d.connector,
                d.visitor_id,
                d.attempts,
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
    let rendered = render_again(loaded, outbox, &wanted)?;
    let result = outbox.replay(&wanted, &rendered, dry_run, now_ms())?;
    let verb = if dry_run { "would requeue" } else { "requeued" };
    println!(
        "{verb} {} dead letter(s): {:?}",
        result.requeued.len(),
        result.requeued
    );
    if !result.not_found.is_empty() {
        eprintln!(
            "not replayed (no such dead letter, or its payload still cannot be rendered): {:?}",
            result.not_found
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Dead letters whose rendering failed are rendered again with today's templates.
fn render_again(
    loaded: &Loaded,
    outbox: &Outbox,
    ids: &[i64],
) -> anyhow::Result<Vec<(i64, String)>> {
    let mut out = Vec::new();
    for (id, connector, context) in outbox.unrendered(ids)? {
        if connector == crate::sources::pubsub::DEAD_LETTER_CONNECTOR {
            eprintln!("dead letter {id}: a Pub/Sub message that names no routable lead; it cannot be replayed — fix the publisher and publish it again");
            continue;
        }
        let Some(handle) = loaded.connectors.get(&connector) else {
            eprintln!("dead letter {id}: connector `{connector}` is no longer configured");
            continue;
        };
        let context = oie_connectors::RenderContext::new(serde_json::from_str(&context)?);
        match handle.connector.render(&context) {
            Ok(payload) => out.push((id, payload)),
            Err(e) => eprintln!("dead letter {id}: still cannot render: {e}"),
        }
    }
    Ok(out)
}
