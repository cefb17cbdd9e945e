//! `kind = "hubspot"`.

use std::sync::Arc;

use super::{HubSpot, HubSpotConfig};
use crate::{Build, Connector, Kind};

impl Kind for HubSpot {
    const NAME: &'static str = "hubspot";
    const EXAMPLE: &'static str = "token = \"${HUBSPOT_TOKEN}\"";
    type Config = HubSpotConfig;

    fn build(config: HubSpotConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(HubSpot::new(
            config,
            with.templates.clone(),
            with.name,
        )?))
    }
}
