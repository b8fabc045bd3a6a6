//! An S3 object read by byte ranges, every GET pinned to one ETag with
//! If-Match: an object rewritten mid-read fails the next GET with 412
//! (`PreconditionFailed`, the pipeline's "rewritten"), never mixes versions.

use super::s3::{map_err, to_chrono};
use super::{ObjectMeta, StoreError};
use crate::read::{RangeSource, TAIL_BYTES};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Ranged GETs of one fetch in flight at once.
const IN_FLIGHT: usize = 8;

/// What a ranged read fetched: every GET (the tail included) and its bytes.
#[derive(Debug, Default)]
pub struct FetchStats {
    requests: AtomicU64,
    bytes: AtomicU64,
    ranges: Mutex<Vec<Range<u64>>>,
}

impl FetchStats {
    /// GETs sent (each one range).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The ranges requested, in the order sent.
    pub fn ranges(&self) -> Vec<Range<u64>> {
        self.ranges.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn record(&self, range: Range<u64>, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Ok(mut r) = self.ranges.lock() {
            r.push(range);
        }
    }
}

/// One version of an S3 object, opened for reading by ranges (see
/// [`super::S3Store::ranges_if_match`]). The [`RangeSource`] side is blocking:
/// use it on a blocking thread; the GETs run on the runtime it was opened on.
#[derive(Debug)]
pub struct S3Ranges {
    client: Client,
    bucket: String,
    etag: String,
    meta: ObjectMeta,
    tail_start: u64,
    tail: Bytes,
    runtime: tokio::runtime::Handle,
    stats: Arc<FetchStats>,
}

/// `bytes START-END/TOTAL` (Content-Range of a 206) -> (START, TOTAL).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// Whether an ETag the server answered is the one pinned (quotes and a weak
/// prefix ignored).
fn same_etag(got: &str, pinned: &str) -> bool {
    let norm = |e: &str| e.trim_start_matches("W/").trim_matches('"').to_owned();
    norm(got) == norm(pinned)
}

fn service(key: &str, message: String, retryable: bool) -> StoreError {
    StoreError::Service {
        key: key.into(),
        message,
        retryable,
    }
}

impl super::S3Store {
    /// Open `key` for reading by ranges, only if its ETag is still `etag`:
    /// one GET of the last [`TAIL_BYTES`] (footer and, mostly, the metadata),
    /// which also gives the size. `PreconditionFailed` if rewritten since.
    /// Call on the runtime the later GETs are to run on.
    pub async fn ranges_if_match(&self, key: &str, etag: &str) -> Result<S3Ranges, StoreError> {
        let o = self
            .client()
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .if_match(etag)
            .range(format!("bytes=-{TAIL_BYTES}"))
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        if o.e_tag().is_some_and(|got| !same_etag(got, etag)) {
            return Err(StoreError::PreconditionFailed { key: key.into() });
        }
        let length = o.content_length().unwrap_or(0).max(0) as u64;
        let (tail_start, size) = match o.content_range().and_then(parse_content_range) {
            Some(r) => r,
            // No Content-Range: the whole object came back (it is empty, or
            // the server ignored Range; only acceptable when it is small).
            None if length <= TAIL_BYTES => (0, length),
            None => {
                return Err(service(
                    key,
                    format!("GET with Range answered the whole object ({length} bytes) without Content-Range"),
                    false,
                ))
            }
        };
        let meta = ObjectMeta {
            key: key.into(),
            size,
            etag: o.e_tag().unwrap_or(etag).to_owned(),
            last_modified: to_chrono(o.last_modified()),
        };
        let tail = o
            .body
            .collect()
            .await
            .map_err(|e| service(key, format!("reading the last bytes: {e}"), true))?
            .into_bytes();
        let stats = Arc::new(FetchStats::default());
        stats.record(tail_start..tail_start + tail.len() as u64, tail.len());
        if tail_start + tail.len() as u64 != size {
            return Err(service(
                key,
                format!(
                    "short body: {} bytes from offset {tail_start} of a {size}-byte object",
                    tail.len()
                ),
                true,
            ));
        }
        Ok(S3Ranges {
            client: self.client().clone(),
            bucket: self.bucket().to_owned(),
            etag: etag.to_owned(),
            meta,
            tail_start,
            tail,
            runtime: tokio::runtime::Handle::current(),
            stats,
        })
    }
}

impl S3Ranges {
    /// The object as the first GET saw it (the pinned version).
    pub fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    /// What was fetched so far.
    pub fn stats(&self) -> Arc<FetchStats> {
        self.stats.clone()
    }
}

/// One ranged GET pinned to `etag`, its body whole.
async fn get_range(
    client: Client,
    bucket: String,
    key: String,
    etag: String,
    range: Range<u64>,
    stats: Arc<FetchStats>,
) -> Result<Bytes, StoreError> {
    let o = client
        .get_object()
        .bucket(bucket)
        .key(&key)
        .if_match(&etag)
        .range(format!("bytes={}-{}", range.start, range.end - 1))
        .send()
        .await
        .map_err(|e| map_err(&key, e))?;
    if o.e_tag().is_some_and(|got| !same_etag(got, &etag)) {
        return Err(StoreError::PreconditionFailed { key });
    }
    let body = o
        .body
        .collect()
        .await
        .map_err(|e| {
            service(
                &key,
                format!("reading bytes {}..{}: {e}", range.start, range.end),
                true,
            )
        })?
        .into_bytes();
    stats.record(range.clone(), body.len());
    if body.len() as u64 != range.end - range.start {
        return Err(service(
            &key,
            format!(
                "short body: {} of bytes {}..{}",
                body.len(),
                range.start,
                range.end
            ),
            true,
        ));
    }
    Ok(body)
}

impl RangeSource for S3Ranges {
    type Error = StoreError;

    fn file_len(&self) -> u64 {
        self.meta.size
    }

    fn prefetched(&self) -> (u64, Bytes) {
        (self.tail_start, self.tail.clone())
    }

    fn fetch(&mut self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, StoreError> {
        let gets: Vec<_> = ranges
            .iter()
            .map(|r| {
                get_range(
                    self.client.clone(),
                    self.bucket.clone(),
                    self.meta.key.clone(),
                    self.etag.clone(),
                    r.clone(),
                    self.stats.clone(),
                )
            })
            .collect();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Run on the runtime (its IO driver), wait here on the blocking thread.
        // The first failure drops the GETs still in flight.
        self.runtime.spawn(async move {
            let got = futures_util::stream::iter(gets)
                .buffered(IN_FLIGHT)
                .try_collect::<Vec<Bytes>>()
                .await;
            let _ = tx.send(got);
        });
        rx.blocking_recv().unwrap_or_else(|_| {
            Err(service(
                &self.meta.key,
                "the runtime stopped during a ranged read".into(),
                true,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_and_etags() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, 200)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 1)));
        assert_eq!(parse_content_range("bytes 0-9/*"), None);
        assert_eq!(parse_content_range("items 0-9/10"), None);
        assert!(same_etag("\"abc\"", "abc"));
        assert!(same_etag("W/\"abc\"", "\"abc\""));
        assert!(!same_etag("\"abc\"", "\"abd\""));
    }
}
