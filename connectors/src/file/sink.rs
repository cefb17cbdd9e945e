use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::FileConfig;
use crate::{
    Connector, Delivery, Failure, Outcome, Reason, RenderContext, RenderError, TemplateSet,
};

/// Appends `{"id": key, "visitorId": …, "payload": …}` lines.
pub struct FileSink {
    out: Mutex<Box<dyn Write + Send>>,
    template: String,
    templates: Arc<TemplateSet>,
}

impl FileSink {
    /// Opens (or creates) the file now, so a bad path fails at start-up.
    pub fn new(config: FileConfig, templates: Arc<TemplateSet>) -> Result<Self, String> {
        if !templates.has(&config.template) {
            return Err(format!("template `{}` does not exist", config.template));
        }
        let out: Box<dyn Write + Send> = if config.path == "-" {
            Box::new(std::io::stdout())
        } else {
            let path = std::path::Path::new(&config.path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            // The output holds personal data: readable by its owner only when created here.
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            Box::new(file)
        };
        Ok(FileSink {
            out: Mutex::new(out),
            template: config.template,
            templates,
        })
    }

    fn write_all(&self, batch: &[Delivery]) -> std::io::Result<()> {
        let mut text = String::new();
        for d in batch {
            let payload = one_line(&d.payload);
            let line = format!(
                "{{\"id\":{},\"visitorId\":{},\"payload\":{}}}\n",
                serde_json::Value::from(d.key.as_str()),
                serde_json::Value::from(d.visitor_id.as_str()),
                payload
            );
            text.push_str(&line);
        }
        // A poisoned lock only means another write panicked; the file itself is still usable.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

/// A JSON line must not contain a newline: templates may be pretty-printed.
fn one_line(payload: &str) -> std::borrow::Cow<'_, str> {
    if !payload.contains('\n') {
        return payload.into();
    }
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(v) => v.to_string().into(),
        Err(_) => payload.replace('\n', " ").into(),
    }
}

#[async_trait]
impl Connector for FileSink {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn max_batch(&self) -> usize {
        100
    }

    async fn check(&self) -> Result<String, Failure> {
        Ok("opened for appending".into())
    }

    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        self.templates.render_json(&self.template, context)
    }

    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let outcome = match self.write_all(batch) {
            Ok(()) => Outcome::Delivered { record_id: None },
            Err(e) => Outcome::failed(Reason::Transport, format!("cannot write: {e}")),
        };
        vec![outcome; batch.len()]
    }
}
