//! The sample events of `events/` (the same files feed `cargo lambda invoke`).

use serde_json::Value;
use std::path::PathBuf;

pub fn dir() -> PathBuf {
    crate::data::workspace_root().join("events")
}

/// Every file of `events/`, sorted by name.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .expect("events/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    v.sort();
    v
}

/// The raw text of `events/<name>`.
pub fn text(name: &str) -> String {
    let p = dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `events/<name>` as JSON.
pub fn event(name: &str) -> Value {
    serde_json::from_str(&text(name)).unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

/// An events/ S3 notification re-pointed at `bucket`/`key` (key URL-encoded as S3 does).
pub fn s3_event(name: &str, bucket: &str, key: &str) -> Value {
    let mut v = event(name);
    let rec = &mut v["Records"][0]["s3"];
    rec["bucket"]["name"] = bucket.into();
    rec["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    rec["object"]["key"] = key.replace('=', "%3D").into();
    v
}

/// The message inside an SNS envelope as SQS receives it (or the body itself).
pub fn sns_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).expect("body is JSON");
    match v.get("Message").and_then(Value::as_str) {
        Some(m) if v.get("Type").and_then(Value::as_str) == Some("Notification") => m.to_owned(),
        _ => body.to_owned(),
    }
}
