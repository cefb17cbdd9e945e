//! Checks what serde cannot: names that must exist, CEL conditions, templates, and whether each
//! connector can be built. Produces everything `oie run` needs.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oie_connectors::kind::resolve_key_file;
use oie_connectors::{Build, Connector, TemplateSet};

use super::model::{Config, ConnectorDelivery, ConnectorEntry};

use super::Problem;
use crate::routing::{compile_when, Route, Router};

/// A config that passed every check, with what was built from it.
pub struct Loaded {
    pub config: Config,
    pub data_dir: PathBuf,
    pub templates: Arc<TemplateSet>,
    pub router: Router,
    pub connectors: BTreeMap<String, ConnectorHandle>,
    /// Every key file the config names, resolved (see [`Loaded::warnings`]).
    pub key_files: Vec<PathBuf>,
}

/// A built connector and its delivery settings.
pub struct ConnectorHandle {
    pub name: String,
    pub connector: Arc<dyn Connector>,
    pub delivery: ConnectorDelivery,
    /// Whether its kind sends digests (from the registry).
    pub digests: bool,
}

pub fn validate(
    path: &Path,
    text: &str,
    mut config: Config,
    problems: &mut Vec<Problem>,
) -> Option<Loaded> {
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let data_dir = base.join(&config.engine.data_dir);
    let templates = load_templates(&base.join(&config.engine.templates_dir), problems);
    let routes = compile_routes(path, text, &config, problems);
    if let Some(classes) = &config.scoring.page_classes {
        if classes.rows().iter().any(|(_, p)| p.trim().is_empty()) {
            problems.push(Problem::new(path, 0, "[scoring.page_classes]: a pattern is empty; write SQL LIKE patterns such as \"/pricing%\""));
        }
    }
    if config.connector_names.is_empty() {
        problems.push(Problem::new(
            path,
            0,
            "no [connectors.NAME] defined; add at least one",
        ));
    }
    for (key, checked) in [
        ("trusted_proxies", config.server.proxies().err()),
        ("exempt", config.server.rate_limits.exempt_ranges().err()),
    ] {
        if let Some(m) = checked {
            let at = text.find(key).unwrap_or(0);
            problems.push(Problem::at(path, text, at, format!("[server] {m}")));
        }
    }
    let mut keys = Vec::new();
    check_pubsub(path, text, &base, &mut config, &mut keys, problems);
    check_store(path, text, &base, &mut config, &mut keys, problems);
    let state: Arc<dyn oie_connectors::VisitorState> =
        Arc::new(crate::outbox::OutboxState::new(data_dir.join("outbox.db")));
    let connectors = build_connectors(
        path,
        &base,
        &mut config,
        (&templates, &state),
        &mut keys,
        problems,
    );
    check_digests(path, text, &config, &connectors, problems);
    problems.is_empty().then(|| Loaded {
        data_dir,
        templates,
        router: Router::new(routes),
        connectors,
        config,
        key_files: keys,
    })
}

fn load_templates(dir: &Path, problems: &mut Vec<Problem>) -> Arc<TemplateSet> {
    let (set, found) = TemplateSet::load(Some(dir));
    problems.extend(found.into_iter().map(|p| Problem {
        file: p.file,
        line: p.line.unwrap_or(0),
        message: format!("template syntax error: {}", p.message),
    }));
    Arc::new(set)
}

fn compile_routes(
    path: &Path,
    text: &str,
    config: &Config,
    problems: &mut Vec<Problem>,
) -> Vec<Route> {
    let mut names = HashSet::new();
    let mut routes = Vec::new();
    for route in &config.routes {
        let name = route.name.get_ref();
        let at = |offset: usize, message: String| Problem::at(path, text, offset, message);
        if !names.insert(name.clone()) {
            problems.push(at(
                route.name.span().start,
                format!("route `{name}` is defined twice"),
            ));
        }
        if route.to.get_ref().is_empty() {
            problems.push(at(
                route.to.span().start,
                format!("route `{name}`: `to` names no connector"),
            ));
        }
        for target in route.to.get_ref() {
            if !config.connector_names.contains(target.get_ref()) {
                problems.push(at(
                    target.span().start,
                    format!(
                        "route `{name}` sends to connector `{}`, which is not defined; defined: {}",
                        target.get_ref(),
                        known(config)
                    ),
                ));
            }
        }
        match compile_when(route.when.get_ref()) {
            Ok(when) => routes.push(Route {
                name: name.clone(),
                when,
                to: route
                    .to
                    .get_ref()
                    .iter()
                    .map(|t| t.get_ref().clone())
                    .collect(),
                continue_matching: route.continue_matching,
                repeat_after: route.repeat_after,
                group_wait: route.group_wait,
            }),
            Err(e) => problems.push(at(route.when.span().start, format!("route `{name}`: {e}"))),
        }
    }
    routes
}

/// `[store] kind = "bigquery"` needs a project; its key file is relative to the config.
fn check_store(
    path: &Path,
    text: &str,
    base: &Path,
    config: &mut Config,
    keys: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
) {
    let at = text.find("[store]").unwrap_or(0);
    let store = &mut config.store;
    if store.kind != super::StoreKind::Bigquery {
        return;
    }
    if store.project.as_deref().is_none_or(str::is_empty) {
        problems.push(Problem::at(
            path,
            text,
            at,
            "[store] kind = \"bigquery\" needs `project` (the Google Cloud project of the dataset)",
        ));
    }
    if let Err(m) = resolve_key_file(base, "credentials_file", &mut store.credentials_file, keys) {
        problems.push(Problem::at(path, text, at, format!("[store] {m}")));
    }
}

/// `[sources.pubsub]`: a full subscription name, sane flow control, a readable key file.
fn check_pubsub(
    path: &Path,
    text: &str,
    base: &Path,
    config: &mut Config,
    keys: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
) {
    let Some(p) = config.sources.pubsub.as_mut() else {
        return;
    };
    let at = text.find("[sources.pubsub]").unwrap_or(0);
    let mut problem = |m: String| {
        problems.push(Problem::at(
            path,
            text,
            at,
            format!("[sources.pubsub]: {m}"),
        ))
    };
    let parts: Vec<&str> = p.subscription.split('/').collect();
    if !matches!(parts.as_slice(), ["projects", project, "subscriptions", name] if !project.is_empty() && !name.is_empty())
    {
        problem(format!(
            "subscription \"{}\" must be a full name like \"projects/my-project/subscriptions/oie-hot-leads\"",
            p.subscription
        ));
    }
    if p.max_outstanding_messages < 1 || p.max_outstanding_bytes < 1 || p.batch_size == 0 {
        problem(
            "max_outstanding_messages, max_outstanding_bytes and batch_size must be at least 1"
                .into(),
        );
    }
    if let Err(m) = resolve_key_file(base, "credentials_file", &mut p.credentials_file, keys) {
        problem(m);
    }
}

/// A route with `group_wait` sends digests, which only some connectors can render.
fn check_digests(
    path: &Path,
    text: &str,
    config: &Config,
    connectors: &BTreeMap<String, ConnectorHandle>,
    problems: &mut Vec<Problem>,
) {
    for route in config.routes.iter().filter(|r| r.group_wait.is_some()) {
        for target in route.to.get_ref() {
            let Some(handle) = connectors.get(target.get_ref()) else {
                continue;
            };
            if !handle.digests {
                problems.push(Problem::at(
                    path,
                    text,
                    target.span().start,
                    format!(
                        "route `{}` has group_wait, but connector `{}` ({}) cannot send digests; only {} can",
                        route.name.get_ref(),
                        target.get_ref(),
                        handle.connector.kind(),
                        super::kinds::digest_kinds()
                    ),
                ));
            }
        }
    }
}

fn known(config: &Config) -> String {
    let names: Vec<&str> = config.connector_names.iter().map(String::as_str).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn build_connectors(
    path: &Path,
    base: &Path,
    config: &mut Config,
    (templates, state): (&Arc<TemplateSet>, &Arc<dyn oie_connectors::VisitorState>),
    keys: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, ConnectorHandle> {
    let mut built = BTreeMap::new();
    let entries = std::mem::take(&mut config.connectors);
    for (name, entry) in entries {
        let ConnectorEntry {
            delivery,
            settings,
            line,
            ..
        } = entry;
        let digests = settings.kind.digests;
        let mut with = Build {
            name: &name,
            base,
            templates: templates.clone(),
            key_files: keys,
            state: state.clone(),
        };
        let made = settings
            .build(&mut with)
            .and_then(|c| check_delivery(&delivery, c.as_ref()).map(|()| c));
        match made {
            Ok(connector) => {
                built.insert(
                    name.clone(),
                    ConnectorHandle {
                        name: name.clone(),
                        connector,
                        delivery,
                        digests,
                    },
                );
            }
            Err(e) => problems.push(Problem::new(path, line, format!("connectors.{name}: {e}"))),
        }
    }
    built
}

fn check_delivery(d: &ConnectorDelivery, connector: &dyn Connector) -> Result<(), String> {
    if d.rate_limit.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err("rate_limit must be a positive number of requests per second".into());
    }
    if d.concurrency == Some(0) {
        return Err("concurrency must be at least 1".into());
    }
    if let Some(size) = d.batch_size {
        let max = connector.max_batch();
        if size == 0 || size > max {
            return Err(format!(
                "batch_size must be between 1 and {max} for this connector"
            ));
        }
    }
    if d.max_attempts == Some(0) {
        return Err("max_attempts must be at least 1".into());
    }
    if !(d.breaker_failure_rate > 0.0 && d.breaker_failure_rate <= 1.0) {
        return Err("breaker_failure_rate must be a share above 0 and at most 1, like 0.8".into());
    }
    let window = crate::dispatch::BREAKER_WINDOW;
    if !(1..=window).contains(&d.breaker_min_requests) {
        return Err(format!(
            "breaker_min_requests must be between 1 and {window} (the breaker judges the last {window} requests)"
        ));
    }
    if d.breaker_cooldown.is_zero() {
        return Err("breaker_cooldown must be longer than 0s".into());
    }
    Ok(())
}
