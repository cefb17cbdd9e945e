//! The vendors' own client libraries, for tests to check oie's output with (TESTING.md):
//! Python packages in the venv `scripts/test` makes (`$OIE_VENV`, default
//! `/var/tmp/oie-venv`), such as slack-sdk.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// The venv's Python when it can `import module`; else `None` and the caller skips its test —
/// except in CI (`CI=true`), where a missing library is a failure.
pub fn python_with(module: &str) -> Option<String> {
    let venv = std::env::var("OIE_VENV").unwrap_or_else(|_| "/var/tmp/oie-venv".into());
    let python = format!("{venv}/bin/python");
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{module} is missing from {venv}"
        );
        eprintln!("{module} is not installed in {venv}: skipped");
    }
    ok.then_some(python)
}

/// Runs `script` with `python`, its arguments `args` and `stdin` on its standard input.
pub fn run(python: &str, script: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin)
        .expect("python reads its input");
    child.wait_with_output().expect("python finishes")
}
