//! `kind = "salesforce"`: the JWT key comes from `private_key_file` (read now) or
//! `private_key`, not both.

use std::sync::Arc;

use super::{Salesforce, SalesforceConfig};
use crate::{Build, Connector, Kind, Secret};

impl Kind for Salesforce {
    const NAME: &'static str = "salesforce";
    const EXAMPLE: &'static str = "client_id = \"3MVG9example\"\nclient_secret = \"${SALESFORCE_CLIENT_SECRET}\"\ntoken_url = \"https://acme.my.salesforce.com/services/oauth2/token\"";
    type Config = SalesforceConfig;

    fn build(config: SalesforceConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        let key = match (&config.private_key_file, &config.private_key) {
            (Some(_), Some(_)) => {
                return Err("set `private_key_file` or `private_key`, not both".into())
            }
            (Some(file), None) => Some(Secret::new(with.read_key_file("private_key_file", file)?)),
            (None, key) => key.clone(),
        };
        Ok(Arc::new(Salesforce::new(config, key, with.name)?))
    }
}
