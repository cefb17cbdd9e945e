//! The Cloudflare API fake (`oie_fakes::cloudflare`) as a process, for tests in other languages
//! (the Worker's end-to-end script): it prints `listening BASE ACCOUNT TOKEN` once serving and
//! runs until killed.
//!
//! Usage: `oie-fake-cloudflare NAMESPACE_ID [NAMESPACE_ID …]`

use std::io::Write;

use oie_fakes::cloudflare::{CloudflareFake, ACCOUNT, TOKEN};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let namespaces: Vec<String> = std::env::args().skip(1).collect();
    if namespaces.is_empty() {
        eprintln!("usage: oie-fake-cloudflare NAMESPACE_ID [NAMESPACE_ID …]");
        std::process::exit(2);
    }
    let refs: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let fake = CloudflareFake::start(&refs).await;
    println!("listening {} {ACCOUNT} {TOKEN}", fake.base);
    let _ = std::io::stdout().flush();
    std::future::pending::<()>().await;
}
