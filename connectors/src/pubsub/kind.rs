//! `kind = "pubsub"`: a `credentials_file` is relative to the config's folder.

use std::sync::Arc;

use super::{PubSub, PubSubConfig};
use crate::{Build, Connector, Kind};

impl Kind for PubSub {
    const NAME: &'static str = "pubsub";
    const EXAMPLE: &'static str = "topic = \"projects/acme/topics/hot-leads\"";
    type Config = PubSubConfig;

    fn build(mut config: PubSubConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        if let Some(file) = &config.credentials_file {
            let full = with.key_file("credentials_file", file)?;
            config.credentials_file = Some(full.to_string_lossy().into_owned());
        }
        Ok(Arc::new(PubSub::new(config)?))
    }
}
