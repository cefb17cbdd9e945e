//! The registry of connector kinds: one line each. The config loader reads `kind = "..."` by
//! it, `oie check` and its messages name what it holds, and the docs test holds
//! `docs/configuration.md` to every kind in it. A kind itself is a folder in `connectors/`
//! with a `kind.rs` implementing [`oie_connectors::Kind`].

use std::fmt;
use std::sync::Arc;

use oie_connectors::cloudflare_kv::CloudflareKv;
use oie_connectors::file::FileSink;
use oie_connectors::hubspot::HubSpot;
use oie_connectors::pubsub::PubSub;
use oie_connectors::salesforce::Salesforce;
use oie_connectors::slack::Slack;
use oie_connectors::webhook::Webhook;
use oie_connectors::{Build, Connector, Kind};
use toml::de::DeValue;
use toml::Spanned;

use super::spanned::{read, Ctx};

/// Every connector kind `config.toml` can name.
pub const KINDS: &[Registered] = &[
    Registered::of::<Webhook>(),
    Registered::of::<FileSink>(),
    Registered::of::<Slack>(),
    Registered::of::<HubSpot>(),
    Registered::of::<Salesforce>(),
    Registered::of::<PubSub>(),
    Registered::of::<CloudflareKv>(),
];

/// Reads a kind's own keys into settings waiting to be built.
type ReadFn = fn(&mut Ctx, &str, Spanned<DeValue>) -> Option<Box<dyn Settings>>;

/// One kind in the registry.
pub struct Registered {
    pub name: &'static str,
    /// Whether routes with `group_wait` can send to it.
    pub digests: bool,
    /// The least config it accepts, as TOML (for docs and tests).
    pub example: &'static str,
    read: ReadFn,
    describe: fn(&str) -> Result<String, String>,
}

impl Registered {
    const fn of<K: Kind>() -> Registered {
        Registered {
            name: K::NAME,
            digests: K::DIGESTS,
            example: K::EXAMPLE,
            read: read_settings::<K>,
            describe: describe::<K>,
        }
    }

    /// The kind named `name`.
    pub fn find(name: &str) -> Option<&'static Registered> {
        KINDS.iter().find(|k| k.name == name)
    }

    /// Reads the kind's keys from `own`, reporting problems with their location.
    pub(super) fn read(
        &'static self,
        ctx: &mut Ctx,
        label: &str,
        own: Spanned<DeValue>,
    ) -> Option<ConnectorSettings> {
        (self.read)(ctx, label, own).map(|pending| ConnectorSettings {
            kind: self,
            pending,
        })
    }

    /// The config `toml` gives this kind, as `Debug` text: how the docs test compares a
    /// documented default with the real one, and learns the keys from serde's message.
    pub fn describe(&self, toml: &str) -> Result<String, String> {
        (self.describe)(toml)
    }
}

/// The kinds' names, for messages: "webhook, file, slack, …".
pub fn names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The names of the kinds that send digests.
pub fn digest_kinds() -> String {
    KINDS
        .iter()
        .filter(|k| k.digests)
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A connector's own keys, read and waiting to be built.
pub struct ConnectorSettings {
    pub kind: &'static Registered,
    pending: Box<dyn Settings>,
}

impl ConnectorSettings {
    pub fn build(self, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        self.pending.build(with)
    }
}

impl fmt::Debug for ConnectorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind.name)?;
        self.pending.fmt(f)
    }
}

trait Settings: fmt::Debug + Send {
    fn build(self: Box<Self>, with: &mut Build) -> Result<Arc<dyn Connector>, String>;
}

struct Pending<K: Kind>(K::Config);

impl<K: Kind> fmt::Debug for Pending<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<K: Kind> Settings for Pending<K> {
    fn build(self: Box<Self>, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        K::build(self.0, with)
    }
}

fn read_settings<K: Kind>(
    ctx: &mut Ctx,
    label: &str,
    own: Spanned<DeValue>,
) -> Option<Box<dyn Settings>> {
    read::<K::Config>(ctx, label, own).map(|c| Box::new(Pending::<K>(c)) as Box<dyn Settings>)
}

fn describe<K: Kind>(text: &str) -> Result<String, String> {
    toml::from_str::<K::Config>(text)
        .map(|c| format!("{c:?}"))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are unique, each example builds, and the built connector calls itself by the
    /// kind's name.
    /// The variables the kinds' examples name.
    fn env() -> std::collections::HashMap<String, String> {
        [
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T0/B0/x",
            ),
            ("HUBSPOT_TOKEN", "pat-na1-example"),
            ("SALESFORCE_CLIENT_SECRET", "example-secret"),
            ("CLOUDFLARE_API_TOKEN", "example-token"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Names are unique, each example builds, and the built connector calls itself by the
    /// kind's name; only Slack sends digests.
    #[test]
    fn every_kind_builds_from_its_example() {
        oie_connectors::secret::with_env(&env(), || {
            let dir = tempfile::tempdir().unwrap();
            let templates = Arc::new(oie_connectors::TemplateSet::defaults());
            let mut seen = std::collections::BTreeSet::new();
            for kind in KINDS {
                assert!(seen.insert(kind.name), "{} twice", kind.name);
                let text = format!("{}\n", kind.example);
                assert!(
                    kind.describe(&text).is_ok(),
                    "{}: {:?}",
                    kind.name,
                    kind.describe(&text)
                );
                let root = toml::de::DeTable::parse(&text).unwrap();
                let own = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
                let path = dir.path().join("config.toml");
                let mut problems = Vec::new();
                let mut ctx = Ctx::new(&path, &text, &mut problems);
                let settings = Registered::find(kind.name)
                    .unwrap()
                    .read(&mut ctx, kind.name, own);
                let settings = settings.unwrap_or_else(|| panic!("{}: {problems:?}", kind.name));
                let mut key_files = Vec::new();
                let mut with = Build {
                    name: kind.name,
                    base: dir.path(),
                    templates: templates.clone(),
                    key_files: &mut key_files,
                    state: Arc::new(oie_connectors::MemoryState::default()),
                };
                let connector = settings
                    .build(&mut with)
                    .unwrap_or_else(|e| panic!("{}: {e}", kind.name));
                assert_eq!(connector.kind(), kind.name);
            }
        });
        assert_eq!(digest_kinds(), "slack");
        assert!(Registered::find("kinesis").is_none());
    }

    /// A kind made in this test: one `Registered::of` line is all the registry needs to read
    /// its keys (unknown ones refused with their line) and build it.
    #[test]
    fn one_line_registers_a_kind() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct EchoConfig {
            greeting: String,
        }
        struct Echo(String);
        #[async_trait::async_trait]
        impl Connector for Echo {
            fn kind(&self) -> &'static str {
                "echo"
            }
            fn render(
                &self,
                _: &oie_connectors::RenderContext,
            ) -> Result<String, oie_connectors::RenderError> {
                Ok(self.0.clone())
            }
            async fn send(
                &self,
                batch: &[oie_connectors::Delivery],
            ) -> Vec<oie_connectors::Outcome> {
                batch
                    .iter()
                    .map(|_| oie_connectors::Outcome::Delivered { record_id: None })
                    .collect()
            }
        }
        impl Kind for Echo {
            const NAME: &'static str = "echo";
            const EXAMPLE: &'static str = "greeting = \"hello\"";
            type Config = EchoConfig;
            fn build(config: EchoConfig, _: &mut Build) -> Result<Arc<dyn Connector>, String> {
                Ok(Arc::new(Echo(config.greeting)))
            }
        }
        static ECHO: Registered = Registered::of::<Echo>();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let read = |text: &str, problems: &mut Vec<crate::config::Problem>| {
            let root = toml::de::DeTable::parse(text).unwrap();
            let own = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
            let mut ctx = Ctx::new(&path, text, problems);
            ECHO.read(&mut ctx, "connectors.hello", own)
        };
        let mut problems = Vec::new();
        let settings = read("greeting = \"hello\"\n", &mut problems).unwrap();
        let mut key_files = Vec::new();
        let mut with = Build {
            name: "hello",
            base: dir.path(),
            templates: Arc::new(oie_connectors::TemplateSet::defaults()),
            key_files: &mut key_files,
            state: Arc::new(oie_connectors::MemoryState::default()),
        };
        let connector = settings.build(&mut with).unwrap();
        assert_eq!(connector.kind(), "echo");
        let data = oie_connectors::RenderContext::new(serde_json::json!({}));
        assert_eq!(connector.render(&data).unwrap(), "hello");

        // The unknown key is reported with its line and set aside (the loader then builds
        // nothing, as for any kind).
        let mut problems = Vec::new();
        read("greeting = \"hi\"\nvolume = 11\n", &mut problems);
        let text = format!("{problems:?}");
        assert!(
            text.contains("unknown field `volume`") && text.contains("line: 2"),
            "{text}"
        );
    }
}
