//! `kind = "file"`: a relative path is relative to the config's folder; `-` is stdout.

use std::sync::Arc;

use super::{FileConfig, FileSink};
use crate::{Build, Connector, Kind};

impl Kind for FileSink {
    const NAME: &'static str = "file";
    const EXAMPLE: &'static str = "path = \"-\"";
    type Config = FileConfig;

    fn build(mut config: FileConfig, with: &mut Build) -> Result<Arc<dyn Connector>, String> {
        if config.path != "-" {
            config.path = with.path(&config.path).to_string_lossy().into_owned();
        }
        Ok(Arc::new(FileSink::new(config, with.templates.clone())?))
    }
}
