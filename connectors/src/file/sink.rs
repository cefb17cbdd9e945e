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
    /// `None` for stdout.
    path: Option<std::path::PathBuf>,
    /// Opened by [`Connector::prepare`] (`oie run`), or at the first write.
    out: Mutex<Option<Box<dyn Write + Send>>>,
    template: String,
    templates: Arc<TemplateSet>,
}

impl FileSink {
    /// Checks the template and the path without touching the file system beyond reading it:
    /// `oie check` builds connectors too. `oie run` opens the file at start ([`Connector::prepare`]).
    pub fn new(config: FileConfig, templates: Arc<TemplateSet>) -> Result<Self, String> {
        if !templates.has(&config.template) {
            return Err(format!("template `{}` does not exist", config.template));
        }
        let path = (config.path != "-").then(|| std::path::PathBuf::from(&config.path));
        if let Some(path) = &path {
            if path.is_dir() {
                return Err(format!("{} is a folder, not a file", path.display()));
            }
            let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = parent.filter(|d| d.exists() && !d.is_dir()) {
                return Err(format!("{} is not a folder", dir.display()));
            }
        }
        Ok(FileSink {
            path,
            out: Mutex::new(None),
            template: config.template,
            templates,
        })
    }

    /// The output, opened (and its folder created) on first use.
    fn open(&self) -> std::io::Result<Box<dyn Write + Send>> {
        let Some(path) = &self.path else {
            return Ok(Box::new(std::io::stdout()));
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // The output holds personal data: readable by its owner only when created here.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Box::new(file))
    }

    fn with_out<T>(
        &self,
        f: impl FnOnce(&mut Box<dyn Write + Send>) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        // A poisoned lock only means another write panicked; the file itself is still usable.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.is_none() {
            *out = Some(self.open()?);
        }
        // Set just above.
        f(out.as_mut().expect("the output is open"))
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
        self.with_out(|out| {
            out.write_all(text.as_bytes())?;
            out.flush()
        })
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

    fn prepare(&self) -> Result<(), String> {
        self.with_out(|_| Ok(())).map_err(|e| match &self.path {
            Some(p) => format!("cannot open {}: {e}", p.display()),
            None => format!("cannot use stdout: {e}"),
        })
    }

    async fn check(&self) -> Result<String, Failure> {
        self.prepare()
            .map(|()| "opened for appending".into())
            .map_err(|e| Failure::new(Reason::NotFound, e))
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
