//! Handlebars templates: compiled once at start-up, strict (a missing field is an error, not an
//! empty string), and escaped for JSON instead of HTML.
//!
//! A template's name is its path under `templates/` without extensions:
//! `templates/webhook/default.json.hbs` is `webhook/default`. Defaults ship inside the binary;
//! a file with the same name in the templates folder overrides one.

use std::path::{Path, PathBuf};

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext as HbsRenderContext,
    RenderErrorReason,
};

/// Templates compiled into the binary: (name, source).
const DEFAULTS: &[(&str, &str)] = &[
    (
        "webhook/default",
        include_str!("../../templates/webhook/default.json.hbs"),
    ),
    (
        "slack/hot_lead",
        include_str!("../../templates/slack/hot_lead.json.hbs"),
    ),
    (
        "slack/hot_account",
        include_str!("../../templates/slack/hot_account.json.hbs"),
    ),
    (
        "slack/digest",
        include_str!("../../templates/slack/digest.json.hbs"),
    ),
    (
        "kv/identity",
        include_str!("../../templates/kv/identity.json.hbs"),
    ),
    (
        "kv/personalization",
        include_str!("../../templates/kv/personalization.json.hbs"),
    ),
    (
        "hubspot/note",
        include_str!("../../templates/hubspot/note.html.hbs"),
    ),
];

/// Templates whose name starts with this are CRM note bodies: `{{…}}` is escaped for HTML.
pub const HTML_PREFIX: &str = "hubspot/";

/// Templates whose name starts with this are Slack messages: `{{…}}` is escaped for Slack
/// mrkdwn (`&`, `<`, `>`) and then for JSON, so lead-supplied text can never mention
/// `@channel` or make a link.
pub const SLACK_PREFIX: &str = "slack/";

/// A problem found while loading templates, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template `{name}` is not defined")]
    Missing { name: String },
    #[error("template `{name}`: {message}")]
    Render { name: String, message: String },
    #[error("template `{name}` did not produce valid JSON: {message}")]
    InvalidJson { name: String, message: String },
}

/// The data a template sees, built once and rendered by any number of templates without
/// being copied again.
pub struct RenderContext {
    inner: Context,
}

impl RenderContext {
    /// The data templates render; a lead's `account` is null when the data does not say (a
    /// lead without one, or a source that knows no accounts).
    pub fn new(mut data: serde_json::Value) -> Self {
        if let Some(map) = data.as_object_mut() {
            if map.contains_key("lead") && !map.contains_key("account") {
                map.insert("account".into(), serde_json::Value::Null);
            }
        }
        RenderContext {
            inner: Context::from(data),
        }
    }

    pub fn data(&self) -> &serde_json::Value {
        self.inner.data()
    }
}

/// Every template, compiled.
pub struct TemplateSet {
    /// JSON payloads.
    registry: Handlebars<'static>,
    /// Slack messages (names under `slack/`).
    slack: Handlebars<'static>,
    /// HTML note bodies (names under `hubspot/`).
    html: Handlebars<'static>,
}

impl TemplateSet {
    /// The defaults only.
    pub fn defaults() -> Self {
        let mut set = TemplateSet {
            registry: new_registry(json_escape),
            slack: new_registry(|text| json_escape(&slack_escape(text))),
            html: new_registry(handlebars::html_escape),
        };
        for (name, source) in DEFAULTS {
            // The defaults are compiled in and covered by tests, so they always parse.
            set.add(name, source).expect("default templates are valid");
        }
        set
    }

    fn registry_for(&self, name: &str) -> &Handlebars<'static> {
        if name.starts_with(SLACK_PREFIX) {
            &self.slack
        } else if name.starts_with(HTML_PREFIX) {
            &self.html
        } else {
            &self.registry
        }
    }

    /// The defaults, overridden and extended by every `*.hbs` file under `dir` (if it exists),
    /// with every broken file reported, not only the first.
    pub fn load(dir: Option<&Path>) -> (Self, Vec<TemplateProblem>) {
        let mut set = Self::defaults();
        let Some(dir) = dir.filter(|d| d.is_dir()) else {
            return (set, Vec::new());
        };
        let mut problems = Vec::new();
        for file in hbs_files(dir) {
            if let Err(problem) = set.add_file(dir, &file) {
                // Keep the name known, so connectors that use it do not report it missing
                // on top of the syntax error; the problem itself stops start-up.
                let name = template_name(dir, &file);
                set.add(&name, "").ok();
                problems.push(problem);
            }
        }
        (set, problems)
    }

    /// Adds one template from text, e.g. a per-field template from config.
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), TemplateProblem> {
        let registry = if name.starts_with(SLACK_PREFIX) {
            &mut self.slack
        } else if name.starts_with(HTML_PREFIX) {
            &mut self.html
        } else {
            &mut self.registry
        };
        registry
            .register_template_string(name, source)
            .map_err(|e| TemplateProblem {
                file: PathBuf::from(name),
                line: e.pos().map(|(line, _)| line),
                message: e.reason().to_string(),
            })
    }

    fn add_file(&mut self, dir: &Path, file: &Path) -> Result<(), TemplateProblem> {
        let name = template_name(dir, file);
        let source = std::fs::read_to_string(file).map_err(|e| TemplateProblem {
            file: file.to_path_buf(),
            line: None,
            message: e.to_string(),
        })?;
        self.add(&name, &source).map_err(|p| TemplateProblem {
            file: file.to_path_buf(),
            ..p
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.registry_for(name).has_template(name)
    }

    /// Renders `name` and checks that the result is one JSON value (without building it).
    pub fn render_json(&self, name: &str, context: &RenderContext) -> Result<String, RenderError> {
        let text = self.render_text(name, context)?;
        serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| {
            RenderError::InvalidJson {
                name: name.to_string(),
                message: e.to_string(),
            }
        })?;
        Ok(text.trim().to_string())
    }

    /// Renders `name` as text (`{{…}}` is escaped for the template's destination: JSON strings,
    /// Slack mrkdwn inside JSON, or HTML for `hubspot/` notes).
    pub fn render_text(&self, name: &str, context: &RenderContext) -> Result<String, RenderError> {
        if !self.has(name) {
            return Err(RenderError::Missing {
                name: name.to_string(),
            });
        }
        self.registry_for(name)
            .render_with_context(name, &context.inner)
            .map_err(|e| RenderError::Render {
                name: name.to_string(),
                message: e.reason().to_string(),
            })
    }
}

/// Per-field templates from config (`[connectors.NAME.properties] key = "{{lead.intentScore}}"`):
/// each renders to plain text that becomes one string value of a vendor record. Strict, like
/// every template, so a misspelt field is an error instead of an empty value.
pub struct FieldTemplates {
    registry: Handlebars<'static>,
    fields: Vec<String>,
}

impl FieldTemplates {
    /// Compiles `fields` (name → template); the error names the field.
    pub fn compile<'a>(
        fields: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Self, String> {
        let mut registry = new_registry(str::to_string);
        let mut names = Vec::new();
        for (name, source) in fields {
            registry
                .register_template_string(name, source)
                .map_err(|e| format!("field `{name}`: template syntax error: {}", e.reason()))?;
            names.push(name.clone());
        }
        Ok(FieldTemplates {
            registry,
            fields: names,
        })
    }

    /// The field names, in config order.
    pub fn names(&self) -> &[String] {
        &self.fields
    }

    /// Renders every field; fields that render empty (an unknown lead value) are left out, so a
    /// sync never blanks what the vendor already holds.
    pub fn render(
        &self,
        context: &RenderContext,
    ) -> Result<serde_json::Map<String, serde_json::Value>, RenderError> {
        let mut out = serde_json::Map::new();
        for name in &self.fields {
            let text = self
                .registry
                .render_with_context(name, &context.inner)
                .map_err(|e| RenderError::Render {
                    name: format!("field {name}"),
                    message: e.reason().to_string(),
                })?;
            let text = text.trim();
            if !text.is_empty() {
                out.insert(name.clone(), serde_json::Value::String(text.to_string()));
            }
        }
        Ok(out)
    }
}

fn new_registry(escape: impl Fn(&str) -> String + Send + Sync + 'static) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(escape);
    registry.register_helper("json", Box::new(json_helper));
    registry.register_helper("fire", Box::new(fire_helper));
    registry.register_helper("name", Box::new(name_helper));
    registry.register_helper("gt", Box::new(gt_helper));
    registry.register_helper("path", Box::new(path_helper));
    registry.register_helper("why", Box::new(why_helper));
    registry.register_helper("pages", Box::new(pages_helper));
    registry.register_helper("account_why", Box::new(account_why_helper));
    registry.register_helper("day", Box::new(day_helper));
    registry
}

/// Escapes text for Slack mrkdwn: `&`, `<` and `>` (which start mentions and links).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `{{fire level}}`: 🔥 per level above cold (warm 🔥, hot 🔥🔥, burning 🔥🔥🔥).
fn fire_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut HbsRenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let level = h
        .param(0)
        .and_then(|p| p.value().as_str().map(str::to_string));
    let fires = match level.as_deref() {
        Some("warm") => "🔥",
        Some("hot") => "🔥🔥",
        Some("burning") => "🔥🔥🔥",
        _ => "",
    };
    out.write(fires)?;
    Ok(())
}

/// `{{name lead}}`: "First Last", or whichever is known, or "Visitor <id>".
fn name_helper(
    h: &Helper,
    registry: &Handlebars,
    _: &Context,
    _: &mut HbsRenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let lead = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("name", 0))?
        .value();
    let part = |k: &str| {
        lead.get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = match (part("firstName"), part("lastName")) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => format!("Visitor {}", part("visitorId").unwrap_or("(unknown)")),
    };
    // Helper output is not escaped by handlebars; escape it as `{{…}}` would be.
    out.write(&registry.get_escape_fn()(&name))?;
    Ok(())
}

/// `{{path lead.lastPageUrl}}`: only the path of a URL. A page address comes from the visitor's
/// browser, so its host, query and fragment are whatever an attacker chose (a look-alike host,
/// an e-mail, a token); alerts and notes show the path alone, at most 200 characters.
fn path_helper(
    h: &Helper,
    registry: &Handlebars,
    _: &Context,
    _: &mut HbsRenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("path", 0))?
        .value();
    let text = value.as_str().unwrap_or_default();
    out.write(&registry.get_escape_fn()(&url_path(text)))?;
    Ok(())
}

handlebars::handlebars_helper!(why_helper: |lead: Json| why(lead));
handlebars::handlebars_helper!(pages_helper: |pages: Json| top_pages(pages));
handlebars::handlebars_helper!(account_why_helper: |account: Json| account_why(account));
handlebars::handlebars_helper!(day_helper: |ms: Json| day(ms));

/// `{{account_why account}}`: how an account's score is made, e.g. "peak 65 + 10 × 2 more
/// engaged people = 85" ("peak 60" for one engaged person; "… = 100, capped").
pub fn account_why(account: &serde_json::Value) -> String {
    let n = |k: &str| {
        account
            .get(k)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    let (peak, engaged, score) = (n("peakScore"), n("engagedPeople"), n("accountScore"));
    match engaged - 1 {
        more if more < 1 => format!("peak {peak}"),
        more => {
            let people = if more == 1 { "person" } else { "people" };
            let capped = if peak + 10 * more > 100 {
                ", capped"
            } else {
                ""
            };
            format!("peak {peak} + 10 × {more} more engaged {people} = {score}{capped}")
        }
    }
}

/// `{{day ms}}`: a time in ms since epoch as "2026-11-01 11:00 UTC" (empty when unknown).
pub fn day(ms: &serde_json::Value) -> String {
    let Some(ms) = ms.as_i64().filter(|ms| *ms >= 0) else {
        return String::new();
    };
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// `{{why lead}}`: the visits behind a score in one line, e.g. "pricing ×3 · case studies ×1 ·
/// form submitted · 2 visits" (empty for a lead with none, so `{{#if (why lead)}}` can skip it).
pub fn why(lead: &serde_json::Value) -> String {
    let n = |k: &str| lead.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
    let mut parts = Vec::new();
    for (field, label) in [
        ("pricingPageVisits", "pricing"),
        ("caseStudyViews", "case studies"),
        ("productPageViews", "product"),
    ] {
        if n(field) > 0 {
            parts.push(format!("{label} ×{}", n(field)));
        }
    }
    match n("formSubmissions") {
        0 => {}
        1 => parts.push("form submitted".into()),
        forms => parts.push(format!("{forms} forms submitted")),
    }
    match n("videosCompleted") {
        0 => {}
        1 => parts.push("video watched".into()),
        videos => parts.push(format!("{videos} videos watched")),
    }
    match n("totalSessions") {
        0 => {}
        1 => parts.push("1 visit".into()),
        visits => parts.push(format!("{visits} visits")),
    }
    parts.join(" · ")
}

/// `{{pages lead.topPages}}`: "/pricing ×3 · /customers/acme ×1" (paths cut to 80 characters).
pub fn top_pages(pages: &serde_json::Value) -> String {
    pages
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let path: String = url_path(p.get("path")?.as_str()?)
                .chars()
                .take(80)
                .collect();
            Some(format!("{path} ×{}", p.get("views")?.as_i64()?))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The path of `text` as a URL (a bare path stays as it is, without query or fragment).
pub fn url_path(text: &str) -> String {
    let path = match url::Url::parse(text) {
        Ok(u) => u.path().to_string(),
        Err(_) => text
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    path.chars().take(200).collect()
}

/// `{{#if (gt a b)}}`: numeric comparison.
fn gt_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut HbsRenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let n = |i: usize| h.param(i).and_then(|p| p.value().as_f64()).unwrap_or(0.0);
    if n(0) > n(1) {
        out.write("true")?;
    }
    Ok(())
}

/// Escapes text for the inside of a JSON string literal. Never HTML-escapes.
pub fn json_escape(text: &str) -> String {
    let quoted = serde_json::Value::from(text).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// `{{{json value}}}` writes any value as JSON.
fn json_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut HbsRenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let param = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("json", 0))?;
    out.write(&param.value().to_string())?;
    Ok(())
}

fn hbs_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "hbs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `dir/webhook/default.json.hbs` → `webhook/default`.
fn template_name(dir: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(dir).unwrap_or(file);
    let text = relative.to_string_lossy().replace('\\', "/");
    let stem_end = text.rfind('/').map(|slash| slash + 1).unwrap_or(0);
    let base = &text[stem_end..];
    let base = base.split('.').next().unwrap_or(base);
    format!("{}{}", &text[..stem_end], base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> RenderContext {
        RenderContext::new(json!({
            "route": "hot",
            "trigger": {"kind": "hot_lead", "at": "2026-11-26T10:00:00Z", "previousLevel": "warm", "level": "hot"},
            "lead": {"visitorId": "v1", "firstName": "Jane \"JJ\" <Doe>", "company": null, "intentScore": 72}
        }))
    }

    #[test]
    fn default_webhook_payload_is_json_with_lead_and_trigger() {
        let set = TemplateSet::defaults();
        let text = set.render_json("webhook/default", &context()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "oie.hot_lead");
        assert_eq!(v["data"]["lead"]["firstName"], "Jane \"JJ\" <Doe>");
        assert_eq!(v["data"]["lead"]["company"], serde_json::Value::Null);
        assert_eq!(v["data"]["trigger"]["previousLevel"], "warm");
    }

    #[test]
    fn escaping_is_json_not_html() {
        let mut set = TemplateSet::defaults();
        set.add("t", r#"{"name": "{{lead.firstName}}"}"#).unwrap();
        let text = set.render_json("t", &context()).unwrap();
        assert_eq!(text, r#"{"name": "Jane \"JJ\" <Doe>"}"#);
    }

    #[test]
    fn strict_mode_rejects_missing_fields() {
        let mut set = TemplateSet::defaults();
        set.add("t", r#"{"x": "{{lead.nope}}"}"#).unwrap();
        let err = set.render_json("t", &context()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn output_that_is_not_json_is_an_error() {
        let mut set = TemplateSet::defaults();
        set.add("t", r#"{"x": {{lead.firstName}}}"#).unwrap();
        assert!(matches!(
            set.render_json("t", &context()),
            Err(RenderError::InvalidJson { .. })
        ));
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let mut set = TemplateSet::defaults();
        let problem = set.add("t", "{\n  \"x\": \"{{#if lead}}\"\n}").unwrap_err();
        assert!(problem.line.is_some(), "{problem:?}");
    }

    #[test]
    fn files_override_defaults_and_are_named_by_path() {
        let dir = std::env::temp_dir().join(format!("oie-tpl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("webhook")).unwrap();
        std::fs::write(dir.join("webhook/default.json.hbs"), r#"{"v": 2}"#).unwrap();
        std::fs::write(
            dir.join("webhook/crm.json.hbs"),
            r#"{"id": "{{lead.visitorId}}"}"#,
        )
        .unwrap();
        let (set, problems) = TemplateSet::load(Some(&dir));
        assert!(problems.is_empty());
        assert_eq!(
            set.render_json("webhook/default", &context()).unwrap(),
            r#"{"v": 2}"#
        );
        assert_eq!(
            set.render_json("webhook/crm", &context()).unwrap(),
            r#"{"id": "v1"}"#
        );
        std::fs::write(dir.join("webhook/bad.json.hbs"), "{{#each}}").unwrap();
        let (_, problems) = TemplateSet::load(Some(&dir));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].file.ends_with("webhook/bad.json.hbs"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
