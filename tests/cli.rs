//! Black-box: `oie routes test`, `oie leads import`.

mod common;

use common::Workspace;

const CONFIG: &str = r#"
[[routes]]
name = "burning"
when = 'trigger.kind == "hot_lead" && lead.intentScore >= 80'
to = ["hook"]
continue = true

[[routes]]
name = "all-hot"
when = 'trigger.kind == "hot_lead"'
to = ["out"]

[connectors.hook]
kind = "webhook"
url = "http://127.0.0.1:9/never-called"
template = "webhook/custom"

[connectors.out]
kind = "file"
path = "data/out.jsonl"
"#;

#[test]
fn routes_test_shows_matches_and_exact_payloads_and_sends_nothing() {
    let ws = Workspace::new(CONFIG);
    std::fs::create_dir_all(ws.path("templates/webhook")).unwrap();
    std::fs::write(
        ws.path("templates/webhook/custom.json.hbs"),
        r#"{"who": "{{lead.firstName}} from {{lead.company}}", "score": {{lead.intentScore}}}"#,
    )
    .unwrap();
    std::fs::write(
        ws.path("lead.json"),
        r#"{"visitorId": "ab3f9", "firstName": "Jane \"JJ\"", "company": "Acme", "intentScore": 86}"#,
    )
    .unwrap();
    let out = ws.oie(&[
        "routes",
        "test",
        "--lead",
        ws.path("lead.json").to_str().unwrap(),
        "--previous-level",
        "warm",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("route `burning` matches"), "{text}");
    assert!(text.contains("route `all-hot` matches"), "{text}");
    assert!(text.contains(r#""who": "Jane \"JJ\" from Acme""#), "{text}");
    assert!(text.contains(r#""score": 86"#), "{text}");
    assert!(text.contains(r#""previousLevel":"warm""#), "{text}");
    assert!(text.contains("→ connector `out` (file)"), "{text}");
    assert_eq!(
        common::read(&ws.path("data/out.jsonl")),
        "",
        "nothing was written"
    );

    let sync = ws.oie(&[
        "routes",
        "test",
        "--lead",
        ws.path("lead.json").to_str().unwrap(),
        "--trigger",
        "sync",
    ]);
    assert!(String::from_utf8(sync.stdout)
        .unwrap()
        .contains("no route matches"));
}

#[test]
fn leads_import_reports_bad_rows_by_line_and_loads_the_rest() {
    let ws = Workspace::new(&CONFIG.replace("template = \"webhook/custom\"", ""));
    std::fs::write(
        ws.path("leads.csv"),
        "visitorId,intentScore\nv1,50\nv2,500\nv3,10\n",
    )
    .unwrap();
    let out = ws.oie(&["leads", "import", ws.path("leads.csv").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("leads.csv: line 3: intentScore must be between 0 and 100, got 500"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "imported 2 lead(s), rejected 1 row(s)"
    );
}

/// Logs to a file carry no terminal colour codes; `--log-format json` gives JSON lines.
#[test]
fn logs_to_a_file_are_plain_and_json_on_request() {
    use std::process::{Command, Stdio};
    let ws = Workspace::new(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[routes]]\nname = \"h\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"out\"]\n[connectors.out]\nkind = \"file\"\npath = \"data/out.jsonl\"\n",
    );
    for (format, json) in [(None, false), (Some("json"), true)] {
        let log = std::fs::File::create(ws.path("run.log")).unwrap();
        let mut args = vec![
            "run",
            "--config",
            ws.config().to_str().unwrap().to_string().leak(),
        ];
        if let Some(f) = format {
            args.extend(["--log-format", f]);
        }
        let mut child = Command::new(common::bin())
            .args(&args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !common::read(&ws.path("run.log")).contains("oie is running") {
            assert!(start.elapsed().as_secs() < 20, "oie did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let text = common::read(&ws.path("run.log"));
        assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
        let first = text.lines().next().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(first).is_ok(),
            json,
            "{first}"
        );
        std::fs::remove_file(ws.path("data/server.addr")).ok();
    }
}
