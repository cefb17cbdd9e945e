//! `kind = "webhook"`.

use std::sync::Arc;

use super::{Webhook, WebhookConfig};
use crate::{Build, Connector, Kind};

impl Kind for Webhook {
    const NAME: &'static str = "webhook";
    const EXAMPLE: &'static str = "url = \"https://hooks.example.com/oie\"";
    type Config = WebhookConfig;

    fn build(config: WebhookConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(Webhook::new(config, with.templates.clone())?))
    }
}
