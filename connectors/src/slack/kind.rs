//! `kind = "slack"`: the one kind that sends digests.

use std::sync::Arc;

use super::{Slack, SlackConfig};
use crate::{Build, Connector, Kind};

impl Kind for Slack {
    const NAME: &'static str = "slack";
    const EXAMPLE: &'static str = "webhook_url = \"${SLACK_WEBHOOK_URL}\"";
    const DIGESTS: bool = true;
    type Config = SlackConfig;

    fn build(config: SlackConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(Slack::new(
            config,
            with.templates.clone(),
            with.state.clone(),
        )?))
    }
}
