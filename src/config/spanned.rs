//! Reads `config.toml` section by section from a spanned TOML tree, so that one mistake does
//! not hide the next: each structural error is recorded with its line, the offending key is
//! set aside, and the section is read again.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::kinds::{self, ConnectorSettings, Registered};
use super::model::{Config, ConnectorEntry, DELIVERY_KEYS, RETIRED_KEYS};
use super::problem::line_of;
use super::Problem;

const SECTIONS: &str = "engine, server, store, scoring, sources, delivery, routes, connectors";

/// Where problems go, with the text to turn offsets into lines.
pub(super) struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str, problems: &'a mut Vec<Problem>) -> Ctx<'a> {
        Ctx {
            path,
            text,
            problems,
        }
    }

    fn problem(&mut self, offset: usize, message: String) {
        self.problems
            .push(Problem::at(self.path, self.text, offset, message));
    }
}

/// Parses the file into a [`Config`]; `None` only when the TOML itself does not parse.
pub fn parse(path: &Path, text: &str, problems: &mut Vec<Problem>) -> Option<Config> {
    let mut ctx = Ctx::new(path, text, problems);
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            ctx.problem(offset, format!("invalid TOML: {}", e.message().trim()));
            return None;
        }
    };
    let mut config = Config::default();
    for (key, value) in root.into_inner() {
        read_section(&mut ctx, &mut config, &key, value);
    }
    Some(config)
}

fn read_section(
    ctx: &mut Ctx,
    config: &mut Config,
    key: &Spanned<std::borrow::Cow<str>>,
    value: Spanned<DeValue>,
) {
    let name = key.get_ref().as_ref();
    match name {
        "engine" => set(&mut config.engine, read(ctx, name, value)),
        "server" => set(&mut config.server, read(ctx, name, value)),
        "store" => set(&mut config.store, read(ctx, name, value)),
        "scoring" => set(&mut config.scoring, read(ctx, name, value)),
        "sources" => set(&mut config.sources, read(ctx, name, value)),
        "delivery" => set(&mut config.delivery, read(ctx, name, value)),
        "routes" => read_routes(ctx, config, value),
        "connectors" => read_connectors(ctx, config, value),
        other => ctx.problem(
            key.span().start,
            format!("unknown section `{other}`; expected one of {SECTIONS}"),
        ),
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Deserializes one section, recording every structural error it can find.
pub(super) fn read<T: DeserializeOwned>(
    ctx: &mut Ctx,
    label: &str,
    mut value: Spanned<DeValue>,
) -> Option<T> {
    let mut set_aside: Vec<String> = Vec::new();
    // Each round sets one key aside, so this ends; the bound only guards against surprises.
    for _ in 0..64 {
        let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let message = error.message().trim().to_string();
        if is_consequence(&message, &set_aside) {
            return None;
        }
        let span = error.span().unwrap_or(value.span());
        ctx.problem(span.start, format!("{label}: {message}"));
        match set_aside_at(&mut value, span.start) {
            Some(key) => set_aside.push(key),
            None => return None,
        }
    }
    None
}

/// "missing field `x`" after `x` was set aside for being wrong is not a second mistake.
fn is_consequence(message: &str, set_aside: &[String]) -> bool {
    set_aside
        .iter()
        .any(|k| message == format!("missing field `{k}`"))
}

/// Removes the innermost table entry holding `offset`; returns its key.
fn set_aside_at(value: &mut Spanned<DeValue>, offset: usize) -> Option<String> {
    let whole = value.span();
    let DeValue::Table(table) = value.get_mut() else {
        return None;
    };
    let mut found = None;
    for (key, entry) in table.iter_mut() {
        let in_key = key.span().contains(&offset);
        let in_value = entry.span().contains(&offset) || entry.span().start == offset;
        if !(in_key || in_value) || key.span() == whole {
            continue;
        }
        if in_value && matches!(entry.get_ref(), DeValue::Table(_)) && entry.span().start != offset
        {
            if let Some(inner) = set_aside_at(entry, offset) {
                return Some(format!("{}.{inner}", key.get_ref()));
            }
        }
        found = Some(key.clone());
        break;
    }
    let key = found?;
    table.remove(&key);
    Some(key.get_ref().to_string())
}

fn read_routes(ctx: &mut Ctx, config: &mut Config, value: Spanned<DeValue>) {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        ctx.problem(
            span.start,
            "routes: write routes as [[routes]] tables".into(),
        );
        return;
    };
    for (i, item) in items.into_iter().enumerate() {
        if let Some(route) = read(ctx, &format!("routes[{i}]"), item) {
            config.routes.push(route);
        }
    }
}

fn read_connectors(ctx: &mut Ctx, config: &mut Config, value: Spanned<DeValue>) {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        ctx.problem(
            span.start,
            "connectors: expected [connectors.NAME] tables".into(),
        );
        return;
    };
    for (key, spec) in table {
        let name = key.get_ref().to_string();
        config.connector_names.insert(name.clone());
        if let Some(entry) = read_connector(ctx, &name, key.span().start, spec) {
            config.connectors.insert(name, entry);
        }
    }
}

fn read_connector(
    ctx: &mut Ctx,
    name: &str,
    at: usize,
    spec: Spanned<DeValue>,
) -> Option<ConnectorEntry> {
    let label = format!("connectors.{name}");
    let span = spec.span();
    let problems_before = ctx.problems.len();
    let DeValue::Table(table) = spec.into_inner() else {
        ctx.problem(at, format!("{label}: expected a table"));
        return None;
    };
    let (mut kind, mut delivery, mut own) = (None, DeTable::new(), DeTable::new());
    for (key, value) in table {
        match key.get_ref().as_ref() {
            "kind" => kind = Some(value),
            k if DELIVERY_KEYS.contains(&k) => drop(delivery.insert(key, value)),
            k => match RETIRED_KEYS.iter().find(|(old, _)| *old == k) {
                Some((old, instead)) => ctx.problem(
                    key.span().start,
                    format!("{label}: `{old}` is no longer read: {instead}"),
                ),
                None => drop(own.insert(key, value)),
            },
        }
    }
    let delivery = read(
        ctx,
        &label,
        Spanned::new(span.clone(), DeValue::Table(delivery)),
    );
    let own = Spanned::new(span, DeValue::Table(own));
    let settings = read_kind(ctx, &label, at, kind, own)?;
    if ctx.problems.len() > problems_before {
        // A key was set aside: building the connector now would only report its absence.
        return None;
    }
    Some(ConnectorEntry {
        delivery: delivery?,
        settings,
        line: line_of(ctx.text, at),
    })
}

fn read_kind(
    ctx: &mut Ctx,
    label: &str,
    at: usize,
    kind: Option<Spanned<DeValue>>,
    own: Spanned<DeValue>,
) -> Option<ConnectorSettings> {
    let Some(kind) = kind else {
        ctx.problem(
            at,
            format!(
                "{label}: missing `kind`; expected one of {}",
                kinds::names()
            ),
        );
        return None;
    };
    let name = kind.get_ref().as_str();
    match (name, name.and_then(Registered::find)) {
        (_, Some(registered)) => registered.read(ctx, label, own),
        (Some(other), None) => {
            ctx.problem(
                kind.span().start,
                format!(
                    "{label}: unknown connector kind `{other}`; expected one of {}",
                    kinds::names()
                ),
            );
            None
        }
        (None, None) => {
            ctx.problem(
                kind.span().start,
                format!("{label}: `kind` must be a string"),
            );
            None
        }
    }
}
