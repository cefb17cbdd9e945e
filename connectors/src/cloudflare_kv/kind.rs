//! `kind = "cloudflare_kv"`.

use std::sync::Arc;

use super::{CloudflareKv, CloudflareKvConfig};
use crate::{Build, Connector, Kind};

impl Kind for CloudflareKv {
    const NAME: &'static str = "cloudflare_kv";
    const EXAMPLE: &'static str = "account_id = \"0123456789abcdef0123456789abcdef\"\nnamespace_id = \"5a3f0c1e9b7d4e2f8a6c1b0d9e8f7a6b\"\napi_token = \"${CLOUDFLARE_API_TOKEN}\"";
    type Config = CloudflareKvConfig;

    fn build(config: CloudflareKvConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(CloudflareKv::new(config, with.templates.clone())?))
    }
}
