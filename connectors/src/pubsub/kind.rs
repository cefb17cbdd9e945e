//! `kind = "pubsub"`: a `credentials_file` is relative to the config's folder.

use std::sync::Arc;

use super::{PubSub, PubSubConfig};
use crate::{Build, Connector, Kind};

impl Kind for PubSub {
    const NAME: &'static str = "pubsub";
    const EXAMPLE: &'static str = "topic = \"projects/acme/topics/hot-leads\"";
    type Config = PubSubConfig;

    fn build(mut config: PubSubConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        with.key_file("credentials_file", &mut config.credentials_file)?;
        Ok(Arc::new(PubSub::new(config)?))
    }
}
