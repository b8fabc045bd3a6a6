//! Helpers the CLI test binaries share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Upload every file below `dir` to `bucket` under `prefix` (keys keep the
/// relative paths).
pub async fn upload_dir(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, dir: &Path) {
    for f in walk(dir) {
        let rel = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        client
            .put_object()
            .bucket(bucket)
            .key(format!("{prefix}{rel}"))
            .body(std::fs::read(&f).unwrap().into())
            .send()
            .await
            .unwrap();
    }
}
