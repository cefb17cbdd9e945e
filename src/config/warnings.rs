//! What `oie check` and `oie run` warn about without refusing to start: secrets and personal
//! data that other users of the machine can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Loaded;

/// The data files `oie` keeps personal data in, relative to the data dir.
const DATA_FILES: &[&str] = &["oie.db", "outbox.db"];

impl Loaded {
    /// One line per file that group or other users can read: key files the config names, and
    /// the databases that already exist.
    pub fn warnings(&self) -> Vec<String> {
        let keys = self.key_files.iter().filter_map(|key| {
            let mode = shared_mode(key)?;
            Some(format!(
                "key file {} can be read by other users of this machine (mode {mode:04o}); run `chmod 600 {}`",
                key.display(),
                key.display()
            ))
        });
        let data = DATA_FILES.iter().filter_map(|name| {
            let file = self.data_dir.join(name);
            let mode = shared_mode(&file)?;
            Some(format!(
                "{} holds personal data and can be read by other users of this machine (mode {mode:04o}); run `chmod 600 {}*`",
                file.display(),
                file.display()
            ))
        });
        let store = &self.config.store;
        let window = std::time::Duration::from_secs(90 * 86_400);
        let short = (store.kind == super::StoreKind::Sqlite && store.events_retention < window)
            .then(|| format!(
                "[store] events_retention = \"{}\" is shorter than the 90 days scores look back: scores will fall as events are pruned",
                humantime::format_duration(store.events_retention)
            ));
        let slack = self
            .connectors
            .values()
            .find(|h| h.connector.kind() == "slack");
        let buttons = (slack.is_some() && self.config.server.slack_signing_secret.is_none())
            .then(|| format!(
                "connectors.{}: the default Slack alert carries Claim, Snooze and Not a fit buttons, but [server] slack_signing_secret is not set, so clicks fail; set it and the Slack app's Request URL (https://<this oie>/slack/actions), or use a template without them",
                slack.map(|h| h.name.as_str()).unwrap_or_default()
            ));
        let crm = self.connectors.values().any(|h| h.connector.is_crm());
        let ownerless = self
            .connectors
            .values()
            .filter(|h| h.connector.sends_to_owners() && !crm)
            .map(|h| format!(
                "connectors.{}: recipient = \"owner\" takes owners from the CRM records oie syncs, and no CRM connector (hubspot, salesforce) is configured: every alert goes to the fallback channel",
                h.name
            ));
        keys.chain(data)
            .chain(short)
            .chain(buttons)
            .chain(ownerless)
            .chain(self.hidden_erasure_routes())
            .collect()
    }

    /// Routes are first-match: a route that matches everything and does not `continue` hides
    /// every later route from `erasure` triggers, so a later erasure route would never fire.
    fn hidden_erasure_routes(&self) -> Vec<String> {
        let routes = &self.config.routes;
        let mut out = Vec::new();
        for (j, later) in routes.iter().enumerate() {
            if !later.when.get_ref().contains("erasure") {
                continue;
            }
            let catch_all = routes[..j]
                .iter()
                .find(|r| r.when.get_ref().trim() == "true" && !r.continue_matching);
            if let Some(first) = catch_all {
                out.push(format!(
                    "route `{}` matches every trigger and stops there, so route `{}` never sees an erasure: put `{}` first, or give `{}` continue = true",
                    first.name.get_ref(),
                    later.name.get_ref(),
                    later.name.get_ref(),
                    first.name.get_ref()
                ));
            }
        }
        out
    }
}

/// The file's permission bits when group or others may read or write it.
pub fn shared_mode(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}
