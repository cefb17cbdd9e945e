use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::clock::now_ms;
use crate::simulate::{journey, Archetype};

/// Sends `visitors` synthetic journeys to `/track`, at most `rate` visitors per second.
pub fn simulate(
    config: &Path,
    visitors: usize,
    rate: Option<f64>,
    target: Option<&str>,
    prefix: &str,
) -> anyhow::Result<ExitCode> {
    // Bodies are signed when the config has a signing secret, as any server-side sender must.
    let (base, key) = match target {
        Some(t) => {
            let key = super::load(config)
                .ok()
                .and_then(|l| l.config.server.event_signing_secret);
            (t.trim_end_matches('/').to_string(), key)
        }
        None => {
            let loaded = super::load(config)?;
            let server = loaded.config.server;
            (
                format!("http://{}", server.listen),
                server.event_signing_secret,
            )
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(&base, key.as_ref(), visitors, rate, prefix))
}

async fn run(
    base: &str,
    key: Option<&oie_connectors::Secret>,
    visitors: usize,
    rate: Option<f64>,
    prefix: &str,
) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    let bar = ProgressBar::new(visitors as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} visitors {per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let gap = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let (start, mut events, mut retried) = (Instant::now(), 0usize, 0usize);
    for i in 0..visitors {
        let body = journey(i, &format!("{prefix}{i}"), now_ms()).to_string();
        events += serde_json::from_str::<serde_json::Value>(&body)?["events"]
            .as_array()
            .map_or(0, Vec::len);
        retried += send(&client, base, key, body).await?;
        bar.inc(1);
        if let Some(gap) = gap {
            tokio::time::sleep_until((start + gap * (i as u32 + 1)).into()).await;
        }
    }
    bar.finish_and_clear();
    let hot = (0..visitors).filter(|i| Archetype::of(*i).is_hot()).count();
    println!(
        "sent {visitors} visitors, {events} events in {:.1} s ({retried} retried after 503); expected hot leads: {hot} ({:.0} %)",
        start.elapsed().as_secs_f64(),
        100.0 * hot as f64 / visitors.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// Posts one body, honouring 503 + Retry-After as the pixel does; returns the retries.
async fn send(
    client: &reqwest::Client,
    base: &str,
    key: Option<&oie_connectors::Secret>,
    body: String,
) -> anyhow::Result<usize> {
    for retry in 0..30 {
        let mut request = client
            .post(format!("{base}/track"))
            .header("content-type", "text/plain");
        if let Some(key) = key {
            let signature =
                crate::ingest::sign(key.expose().as_bytes(), now_ms() / 1000, body.as_bytes());
            request = request.header(crate::ingest::SIGNATURE_HEADER, signature);
        }
        let r = request
            .body(body.clone())
            .send()
            .await
            .with_context(|| format!("posting to {base}/track"))?;
        match r.status().as_u16() {
            202 => return Ok(retry),
            503 | 429 => {
                let after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(after)).await;
            }
            status => anyhow::bail!(
                "{base}/track answered {status}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
    }
    anyhow::bail!("{base}/track stayed busy")
}
