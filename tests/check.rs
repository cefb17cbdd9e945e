//! Black-box: `oie check` reports each kind of mistake with its message and line, all at once.

mod common;

use common::Workspace;

const GOOD: &str = r#"[engine]
data_dir = "data"

[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["out"]

[connectors.out]
kind = "file"
path = "data/out.jsonl"
"#;

/// Runs `oie check` on `config` (after `setup`), returns (exit code, stdout lines).
fn check(config: &str, setup: impl FnOnce(&Workspace)) -> (i32, Vec<String>) {
    let ws = Workspace::new(config);
    setup(&ws);
    let out = ws.oie(&["check"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("{}", ws.config().parent().unwrap().display());
    let lines = text.lines().map(|l| l.replace(&prefix, "DIR")).collect();
    (out.status.code().unwrap(), lines)
}

fn expect_one(config: &str, line: usize, message: &str) {
    let (code, lines) = check(config, |_| {});
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(lines.len(), 2, "exactly one problem expected: {lines:?}");
    let expected = format!("DIR/config.toml:{line}: {message}");
    assert!(
        lines[0].starts_with(&expected),
        "\n got: {}\nwant: {expected}",
        lines[0]
    );
    assert_eq!(lines[1], "1 problem(s) found");
}

#[test]
fn a_good_config_passes_with_a_summary() {
    let (code, lines) = check(GOOD, |_| {});
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("OK — 1 route(s), 1 connector(s): out (file)"),
        "{lines:?}"
    );
}

#[test]
fn the_shipped_config_passes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(common::bin())
        .args(["check", "--config", &format!("{root}/config.toml")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn unknown_key() {
    let config = GOOD.replace(
        "path = \"data/out.jsonl\"",
        "path = \"data/out.jsonl\"\npaht = \"x\"",
    );
    expect_one(
        &config,
        12,
        "connectors.out: unknown field `paht`, expected `path` or `template`",
    );
}

#[test]
fn unknown_section() {
    expect_one(
        &format!("{GOOD}\n[engin]\nx = 1\n"),
        13,
        "unknown section `engin`",
    );
}

#[test]
fn missing_env_var() {
    let config = format!(
        "{GOOD}\n[connectors.hook]\nkind = \"webhook\"\nurl = \"${{OIE_TEST_UNSET_URL}}\"\n"
    );
    expect_one(
        &config,
        15,
        "connectors.hook: environment variable OIE_TEST_UNSET_URL is not set",
    );
}

#[test]
fn literal_secret() {
    let config = format!(
        "{GOOD}\n[connectors.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"whsec_abc\"\n"
    );
    expect_one(
        &config,
        16,
        "connectors.hook: secrets must be an environment variable reference",
    );
}

#[test]
fn route_to_missing_connector() {
    let config = GOOD.replace("to = [\"out\"]", "to = [\"out\", \"slack\"]");
    expect_one(
        &config,
        7,
        "route `hot` sends to connector `slack`, which is not defined; defined: out",
    );
}

#[test]
fn cel_syntax_error() {
    let config = GOOD.replace(
        "when = 'trigger.kind == \"hot_lead\"'",
        "when = 'trigger.kind == '",
    );
    expect_one(&config, 6, "route `hot`: CEL syntax error in `when`");
}

#[test]
fn cel_unknown_field() {
    let config = GOOD.replace("trigger.kind == \"hot_lead\"", "lead.score > 50");
    expect_one(
        &config,
        6,
        "route `hot`: `when` refers to unknown field `lead.score`",
    );
}

#[test]
fn template_syntax_error() {
    let config = GOOD.replace(
        "path = \"data/out.jsonl\"",
        "path = \"data/out.jsonl\"\ntemplate = \"webhook/mine\"",
    );
    let (code, lines) = check(&config, |ws| {
        std::fs::create_dir_all(ws.path("templates/webhook")).unwrap();
        std::fs::write(
            ws.path("templates/webhook/mine.json.hbs"),
            "{\n  \"a\": \"{{#if lead}}\"\n}\n",
        )
        .unwrap();
    });
    assert_eq!(code, 1);
    assert_eq!(
        lines.len(),
        2,
        "only the syntax error, not a missing-template echo: {lines:?}"
    );
    assert!(
        lines[0].starts_with("DIR/templates/webhook/mine.json.hbs:4: "),
        "{lines:?}"
    );
    assert!(lines[0].contains("template syntax error"), "{lines:?}");
}

#[test]
fn missing_template() {
    let config = GOOD.replace(
        "path = \"data/out.jsonl\"",
        "path = \"data/out.jsonl\"\ntemplate = \"webhook/nope\"",
    );
    expect_one(
        &config,
        9,
        "connectors.out: template `webhook/nope` does not exist",
    );
}

#[test]
fn bad_duration() {
    let config = format!("{GOOD}\n[sources.leads]\ninterval = \"5 fortnights\"\n");
    expect_one(&config, 14, "sources: invalid duration \"5 fortnights\"");
}

#[test]
fn invalid_toml() {
    expect_one(&GOOD.replace("[engine]", "[engine"), 1, "invalid TOML");
}

#[test]
fn every_problem_is_reported_at_once() {
    let config = format!(
        "{}\n[sources.leads]\ninterval = \"soon\"\n",
        GOOD.replace("to = [\"out\"]", "to = [\"nope\"]")
            .replace("data_dir = \"data\"", "data_dir = \"data\"\ncolour = 1")
            .replace("trigger.kind", "trigger.knid")
    );
    let (code, lines) = check(&config, |_| {});
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let located: Vec<&str> = lines
        .iter()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        located,
        vec![
            "DIR/config.toml:3",
            "DIR/config.toml:7",
            "DIR/config.toml:8",
            "DIR/config.toml:15",
            "4 problem(s) found"
        ]
    );
}

#[test]
fn crm_connector_mistakes() {
    let hubspot =
        format!("{GOOD}\n[connectors.hs]\nkind = \"hubspot\"\ntoken = \"pat-na1-literal\"\n");
    expect_one(
        &hubspot,
        15,
        "connectors.hs: secrets must be an environment variable reference",
    );
    let salesforce = format!(
        "{GOOD}\n[connectors.sf]\nkind = \"salesforce\"\nclient_id = \"3MVG9\"\nusername = \"int@acme.example\"\nprivate_key_file = \"missing.pem\"\n"
    );
    expect_one(
        &salesforce,
        13,
        "connectors.sf: private_key_file DIR/missing.pem:",
    );
    let no_flow =
        format!("{GOOD}\n[connectors.sf]\nkind = \"salesforce\"\nclient_id = \"3MVG9\"\n");
    expect_one(
        &no_flow,
        13,
        "connectors.sf: set the JWT bearer keys (username, private_key_file or private_key) or the client-credentials keys",
    );
    let bad_field = format!(
        "{GOOD}\n[connectors.hs]\nkind = \"hubspot\"\ntoken = \"${{PATH}}\"\n\n[connectors.hs.properties]\noie_intent_score = \"{{{{#if}}}}\"\n"
    );
    expect_one(
        &bad_field,
        13,
        "connectors.hs: properties: field `oie_intent_score`: template syntax error",
    );
}

#[test]
fn cloud_mode_mistakes() {
    let pubsub = format!("{GOOD}\n[sources.pubsub]\nsubscription = \"oie-hot-leads\"\n");
    expect_one(
        &pubsub,
        13,
        "[sources.pubsub]: subscription \"oie-hot-leads\" must be a full name like \"projects/my-project/subscriptions/oie-hot-leads\"",
    );
    let store = format!("{GOOD}\n[store]\nkind = \"bigquery\"\n");
    expect_one(&store, 13, "[store] kind = \"bigquery\" needs `project`");
    let topic = format!("{GOOD}\n[connectors.fan]\nkind = \"pubsub\"\ntopic = \"hot-leads\"\n");
    expect_one(
        &topic,
        13,
        "connectors.fan: topic \"hot-leads\" must be a full name",
    );
}

/// Secrets and personal data that other users can read are warned about, not refused.
#[test]
fn readable_key_files_and_databases_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fakes/keys/test_private.pem"
    ))
    .unwrap();
    let config = format!(
        "{GOOD}\n[connectors.sf]\nkind = \"salesforce\"\nclient_id = \"3MVG9\"\nusername = \"int@acme.example\"\nprivate_key_file = \"sf.pem\"\n"
    );
    let mode = |ws: &Workspace, name: &str, mode: u32| {
        std::fs::set_permissions(ws.path(name), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let (code, lines) = check(&config, |ws| {
        std::fs::write(ws.path("sf.pem"), &key).unwrap();
        mode(ws, "sf.pem", 0o644);
        std::fs::create_dir_all(ws.path("data")).unwrap();
        std::fs::write(ws.path("data/outbox.db"), "").unwrap();
        mode(ws, "data/outbox.db", 0o640);
    });
    assert_eq!(code, 0, "warnings do not fail the check: {lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0],
        "warning: key file DIR/sf.pem can be read by other users of this machine (mode 0644); run `chmod 600 DIR/sf.pem`"
    );
    assert!(
        lines[1].starts_with("warning: DIR/data/outbox.db holds personal data"),
        "{lines:?}"
    );
    let (code, lines) = check(&config, |ws| {
        std::fs::write(ws.path("sf.pem"), &key).unwrap();
        mode(ws, "sf.pem", 0o600);
    });
    assert_eq!((code, lines.len()), (0, 1), "{lines:?}");
}

#[test]
fn retention_shorter_than_the_scoring_window_is_warned_about() {
    let config = GOOD.replace(
        "[engine]\ndata_dir = \"data\"",
        "[engine]\ndata_dir = \"data\"\n\n[store]\nevents_retention = \"30d\"",
    );
    let (code, lines) = check(&config, |_| {});
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "warning: [store] events_retention = \"30days\" is shorter than the 90 days"
        ),
        "{lines:?}"
    );
}

/// A catch-all route before an erasure route would swallow every erasure: warned about.
#[test]
fn a_catch_all_route_before_an_erasure_route_is_warned_about() {
    let config = GOOD.replace(
        "[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"out\"]",
        "[[routes]]\nname = \"all\"\nto = [\"out\"]\n\n[[routes]]\nname = \"forget\"\nwhen = 'trigger.kind == \"erasure\"'\nto = [\"out\"]",
    );
    assert!(config.contains("name = \"forget\""));
    let (code, lines) = check(&config, |_| {});
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines[0].starts_with("warning: route `all` matches every trigger and stops there, so route `forget` never sees an erasure"),
        "{lines:?}"
    );
    let (_, lines) = check(
        &config.replace("name = \"all\"", "name = \"all\"\ncontinue = true"),
        |_| {},
    );
    assert!(
        !lines.iter().any(|l| l.contains("never sees an erasure")),
        "{lines:?}"
    );
}

/// `oie check` changes nothing: no data dir, no output file.
#[test]
fn check_has_no_side_effects_and_names_the_store() {
    let (code, lines) = check(GOOD, |_| {});
    assert_eq!(code, 0, "{lines:?}");
    let ws = Workspace::new(GOOD);
    let out = ws.oie(&["check"]);
    assert!(out.status.success());
    assert!(!ws.path("data").exists(), "the data dir was created");
    let bigquery = format!(
        "{GOOD}\n[store]\nkind = \"bigquery\"\nproject = \"acme-prod\"\ndataset = \"intent\"\n"
    );
    let (code, lines) = check(&bigquery, |_| {});
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("store bigquery acme-prod.intent (outbox in DIR/data)"),
        "{lines:?}"
    );
}

/// Slack alerts carry buttons: without a signing secret their clicks would fail, so check
/// says what to set; with one, nothing is said.
#[test]
fn slack_buttons_without_a_signing_secret_are_warned_about() {
    let config = |server: &str| {
        format!("[server]\n{server}\n[[routes]]\nname = \"hot\"\nto = [\"sales\"]\n\n[connectors.sales]\nkind = \"slack\"\nwebhook_url = \"${{OIE_TEST_CHECK_HOOK}}\"\n")
    };
    let env = |ws: &Workspace| {
        ws.env(
            "OIE_TEST_CHECK_HOOK",
            "https://hooks.slack.com/services/T/B/x",
        );
        ws.env("OIE_TEST_CHECK_SIGNING", "s3cr3t");
    };
    let (code, lines) = check(&config(""), env);
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("warning: connectors.sales: the default Slack alert carries Claim, Snooze and Not a fit buttons, but [server] slack_signing_secret is not set")),
        "{lines:?}"
    );
    let (code, lines) = check(
        &config("slack_signing_secret = \"${OIE_TEST_CHECK_SIGNING}\""),
        env,
    );
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("slack_signing_secret")),
        "{lines:?}"
    );
}

/// `recipient = "owner"` takes owners from the CRM records oie syncs: without a CRM connector,
/// check says every alert would go to the fallback channel; with one, nothing is said. A
/// recipient mistake is an error with its location.
#[test]
fn owner_alerts_without_a_crm_are_warned_about() {
    let config = |crm: &str| {
        format!("[server]\nslack_signing_secret = \"${{OIE_TEST_CHECK_SIGNING}}\"\n[[routes]]\nname = \"hot\"\nto = [\"sales-dm\"]\n\n[connectors.sales-dm]\nkind = \"slack\"\ntoken = \"${{OIE_TEST_CHECK_BOT}}\"\nrecipient = \"owner\"\nfallback_channel = \"C0FALL\"\n{crm}")
    };
    let env = |ws: &Workspace| {
        ws.env("OIE_TEST_CHECK_BOT", "xoxb-check");
        ws.env("OIE_TEST_CHECK_SIGNING", "s3cr3t");
        ws.env("OIE_TEST_CHECK_HS", "pat-check");
    };
    let (code, lines) = check(&config(""), env);
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("warning: connectors.sales-dm: recipient = \"owner\" takes owners from the CRM records oie syncs, and no CRM connector")),
        "{lines:?}"
    );
    let (code, lines) = check(
        &config("\n[connectors.crm]\nkind = \"hubspot\"\ntoken = \"${OIE_TEST_CHECK_HS}\"\n"),
        env,
    );
    assert_eq!(code, 0, "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("recipient")), "{lines:?}");
    let (code, lines) = check(
        &config("").replace("fallback_channel = \"C0FALL\"\n", "channel = \"C0FALL\"\n"),
        env,
    );
    assert_ne!(code, 0, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("connectors.sales-dm: recipient = \"owner\" sends direct messages: set `fallback_channel`")),
        "{lines:?}"
    );
}
