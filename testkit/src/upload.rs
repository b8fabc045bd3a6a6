//! Local trees into emulated buckets.

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
    out.sort();
    out
}

/// Upload every file below `dir` to `bucket` under `prefix` (keys keep the relative paths).
pub async fn upload_dir(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, dir: &Path) {
    for f in walk(dir) {
        let rel = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        put(
            client,
            bucket,
            &format!("{prefix}{rel}"),
            std::fs::read(&f).unwrap(),
        )
        .await;
    }
}

/// Upload the given keys of a local tree (the generator's manifests name full bucket keys).
pub async fn upload_keys<'a>(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    dir: &Path,
    keys: impl IntoIterator<Item = &'a String>,
) {
    for key in keys {
        put(client, bucket, key, std::fs::read(dir.join(key)).unwrap()).await;
    }
}

pub async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
}
