//! What the delivery benchmarks share: routing `n` sync triggers into a fresh outbox and running
//! the real dispatcher and recorder (with writeback) until every delivery is delivered.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oie::clock::now_ms;
use oie::config;
use oie::dispatch::{run_recorder, ConnectorRuntime, Dispatcher};
use oie::lead::Lead;
use oie::metrics::Metrics;
use oie::outbox::{HandOver, Outbox};
use oie::pipeline::{Pipeline, Work};
use oie::routing::Trigger;
use oie::store::{LeadStore, SqliteStore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Routes a sync trigger for each of `n` leads (`lead(i)`) with the config at `config_path`
/// (its data in `dir`), then runs connector `connector` until all are delivered; returns the
/// seconds the delivering took. `env` holds the variables the config's `${VAR}` references
/// name (the benchmark's own environment is left alone).
pub async fn deliver_all(
    dir: &Path,
    config_path: &Path,
    env: &[(&str, &str)],
    connector: &str,
    n: usize,
    lead: impl Fn(usize) -> serde_json::Value,
) -> f64 {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let loaded = config::load_with_env(config_path, &env).unwrap_or_else(|p| panic!("{p:?}"));
    let store: Arc<dyn LeadStore> = Arc::new(SqliteStore::open(&dir.join("oie.db")).unwrap());
    let outbox = Arc::new(Outbox::open(&dir.join("outbox.db")).unwrap());
    let pipeline = Pipeline {
        router: loaded.router,
        connectors: loaded.connectors,
    };
    let mut out = HandOver::default();
    let eval = pipeline.router.evaluator();
    for i in 0..n {
        let l = Lead::from_json(lead(i).as_object().unwrap());
        let t = Trigger::sync(l.level(), l.version(), now_ms());
        let work = Work {
            lead: &l,
            triggers: Vec::new(),
            fires: HashMap::new(),
            crm: Vec::new(),
            snoozed: HashMap::new(),
            account: None,
        };
        let input = pipeline.router.lead_input(&l);
        let inputs = (&input, &cel::Value::Null);
        pipeline.route_into(&eval, &work, inputs, &t, now_ms(), &mut out);
    }
    drop(eval);
    outbox.hand_over(&out, now_ms()).unwrap();
    let handle = &pipeline.connectors[connector];
    let rt = Arc::new(ConnectorRuntime::of(handle, &loaded.config.delivery, false));
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    let recorder = tokio::spawn(run_recorder(rx, outbox.clone(), store));
    let stop = CancellationToken::new();
    let d = Dispatcher {
        outbox: outbox.clone(),
        metrics: Arc::new(Metrics::new()),
        records: tx,
        tasks: TaskTracker::new(),
        stop: stop.clone(),
        clock: oie::clock::Clock::System,
    };
    let start = Instant::now();
    let worker = tokio::spawn(d.clone().run(rt));
    loop {
        let delivered: i64 = outbox
            .depth()
            .unwrap()
            .iter()
            .filter(|x| x.state == "delivered")
            .map(|x| x.count)
            .sum();
        if delivered as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    stop.cancel();
    worker.await.unwrap();
    d.tasks.close();
    d.tasks.wait().await;
    drop(d);
    recorder.await.unwrap();
    secs
}
