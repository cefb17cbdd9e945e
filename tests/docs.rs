//! The documentation holds to what it documents: the README opens with the two commands and
//! stays short, every link between the docs resolves, and `docs/configuration.md` lists every
//! key of the config model with its real default.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_readme_opens_with_the_two_commands_and_stays_short() {
    let readme = read(&root().join("README.md"));
    assert!(
        readme.lines().count() <= 200,
        "{} lines",
        readme.lines().count()
    );
    let block = readme.split("```sh\n").nth(1).unwrap();
    let code: Vec<&str> = block.lines().take(2).collect();
    assert!(
        code[0].starts_with("cargo run --release -- run"),
        "{code:?}"
    );
    assert!(code[1].starts_with("./scripts/test"), "{code:?}");
}

/// Markdown files of the project (not dependencies').
fn docs() -> Vec<PathBuf> {
    let mut out = vec![
        root().join("README.md"),
        root().join("CONTRIBUTING.md"),
        root().join("BENCHMARKS.md"),
        root().join("sql/README.md"),
        root().join("pixel/README.md"),
        root().join("contract/README.md"),
    ];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_link_between_the_docs_resolves() {
    let mut broken = Vec::new();
    for file in docs() {
        let text = read(&file);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            rest = &rest[end..];
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target}", file.display()));
                continue;
            }
            if !fragment.is_empty() && resolved.extension().is_some_and(|e| e == "md") {
                let headings: BTreeSet<String> = read(&resolved)
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .map(|l| anchor(l.trim_start_matches('#')))
                    .collect();
                if !headings.contains(fragment) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The keys a config takes: serde lists them when it meets an unknown one.
fn keys(base: &str, parse: &dyn Fn(&str) -> Result<String, String>) -> BTreeSet<String> {
    let error = match parse(&format!("{base}\nzz_not_a_key = 1")) {
        Ok(_) => panic!("an unknown key was accepted"),
        Err(e) => e,
    };
    let listed = error
        .split("expected one of ")
        .nth(1)
        .or_else(|| error.split("expected ").nth(1))
        .unwrap_or_else(|| panic!("{error}"));
    listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Rows of the table under `## \`title\``: (key, default).
fn documented(page: &str, title: &str) -> Vec<(String, String)> {
    let heading = format!("## `{title}`");
    let section = page
        .split(&heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no section {heading}"));
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            (
                cells[0]
                    .trim_start_matches("| ")
                    .trim_matches('`')
                    .to_string(),
                cells[1].to_string(),
            )
        })
        .collect()
}

/// Every key of `T` is documented under `title`, and each documented TOML default is what `T`
/// gets without the key (`base` holds the required keys).
fn holds<T: DeserializeOwned + std::fmt::Debug>(page: &str, title: &str, base: &str) {
    let parse = |text: &str| {
        toml::from_str::<T>(text)
            .map(|v| format!("{v:?}"))
            .map_err(|e| e.to_string())
    };
    holds_by(page, title, base, &parse);
}

/// [`holds`] for a config known by `parse` (TOML → its `Debug` text).
fn holds_by(page: &str, title: &str, base: &str, parse: &dyn Fn(&str) -> Result<String, String>) {
    let rows = documented(page, title);
    let doc_keys: BTreeSet<String> = rows.iter().map(|(k, _)| k.clone()).collect();
    let model = keys(base, parse);
    assert_eq!(
        doc_keys, model,
        "keys of `{title}`: documented vs the model"
    );
    let plain = unspanned(&parse(base).unwrap());
    for (key, default) in rows {
        let Some(literal) = default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) else {
            continue; // none, required, table
        };
        let with = parse(&format!("{base}\n{key} = {literal}"))
            .unwrap_or_else(|e| panic!("`{title}` {key} = {literal}: {e}"));
        assert_eq!(
            unspanned(&with),
            plain,
            "`{title}` {key}: the documented default {literal} is not the real one"
        );
    }
}

/// Debug text without `span: a..b, ` (where in the text a value was, not what it is).
fn unspanned(debug: &str) -> String {
    let mut out = String::new();
    let mut rest = debug;
    while let Some(i) = rest.find("span: ") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        rest = rest.find(", ").map_or("", |j| &rest[j + 2..]);
    }
    out.push_str(rest);
    out
}

#[test]
fn the_configuration_reference_holds_to_the_model() {
    use oie::config::*;
    let page = read(&root().join("docs/configuration.md"));
    holds::<EngineConfig>(&page, "[engine]", "");
    holds::<ServerConfig>(&page, "[server]", "");
    holds::<RateLimits>(&page, "[server.rate_limits]", "");
    holds::<StoreConfig>(&page, "[store]", "");
    holds::<ScoringConfig>(&page, "[scoring]", "");
    holds::<LeadsSourceConfig>(&page, "[sources.leads]", "");
    holds::<PubSubSourceConfig>(
        &page,
        "[sources.pubsub]",
        "subscription = \"projects/p/subscriptions/s\"",
    );
    holds::<DeliveryConfig>(&page, "[delivery]", "");
    holds::<RouteConfig>(&page, "[[routes]]", "name = \"r\"\nto = [\"c\"]");
    holds::<ConnectorDelivery>(&page, "[connectors.NAME] (every kind)", "");
    // Every kind in the registry has its section, built from the kind's own example.
    let env: std::collections::HashMap<String, String> = [
        "SLACK_WEBHOOK_URL",
        "HUBSPOT_TOKEN",
        "SALESFORCE_CLIENT_SECRET",
        "CLOUDFLARE_API_TOKEN",
    ]
    .iter()
    .map(|k| (k.to_string(), "from-the-environment".to_string()))
    .collect();
    oie_connectors::secret::with_env(&env, || {
        for kind in KINDS {
            let title = format!("[connectors.NAME] kind = \"{}\"", kind.name);
            holds_by(&page, &title, kind.example, &|text| kind.describe(text));
        }
    });
}
