use std::sync::Arc;

use super::*;
use crate::{Connector, Delivery, Outcome, TemplateSet};

#[tokio::test]
async fn appends_one_json_line_per_delivery() {
    let dir = std::env::temp_dir().join(format!("oie-file-{}", std::process::id()));
    let path = dir.join("sub/out.jsonl");
    let config = FileConfig {
        path: path.to_string_lossy().into_owned(),
        template: "webhook/default".into(),
    };
    let sink = FileSink::new(config, Arc::new(TemplateSet::defaults())).unwrap();
    let batch: Vec<Delivery> = (0..3)
        .map(|i| Delivery {
            key: format!("k{i}"),
            visitor_id: format!("v{i}"),
            payload: format!("{{\n  \"n\": {i}\n}}"),
            attempt: 1,
        })
        .collect();
    let outcomes = sink.send(&batch).await;
    assert!(outcomes
        .iter()
        .all(|o| *o == Outcome::Delivered { record_id: None }));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["id"], "k2");
    assert_eq!(lines[2]["visitorId"], "v2");
    assert_eq!(lines[2]["payload"]["n"], 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Built without touching the file system (`oie check`); `oie run` prepares it and stops on a
/// path it cannot write.
#[test]
fn unwritable_path_fails_at_start() {
    let config = FileConfig {
        path: "/proc/oie/cannot/out.jsonl".into(),
        template: "webhook/default".into(),
    };
    let sink = FileSink::new(config, Arc::new(TemplateSet::defaults())).unwrap();
    let error = sink.prepare().unwrap_err();
    assert!(
        error.contains("cannot open /proc/oie/cannot/out.jsonl"),
        "{error}"
    );
    let folder = FileConfig {
        path: "/tmp".into(),
        template: "webhook/default".into(),
    };
    assert!(FileSink::new(folder, Arc::new(TemplateSet::defaults())).is_err());
}
