//! Discovery: from a root (a bucket prefix or a directory standing in for one)
//! to the newest revision of every (report, billing period), from manifests only.
//!
//! Layouts handled, all by the manifests' own contents:
//! - legacy CUR, overwrite: `<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json`;
//! - legacy CUR, new version: the same top-level copy plus `<period>/<assemblyId>/<report>-Manifest.json`;
//! - legacy CUR Parquet (`year=YYYY/month=M/`);
//! - Data Exports: `<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`.
//!
//! With no manifest at all under the root, every data file is taken as one
//! "bare" delivery, with a warning that nothing vouches for completeness.

use crate::manifest::{parse_manifest, DeliveryKind, Manifest};
use crate::store::{ObjectMeta, Store, StoreError};
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use std::collections::{BTreeMap, HashMap};

/// Where billing data is read from: a store and a key prefix within it.
#[derive(Debug, Clone)]
pub struct Source {
    pub store: Store,
    pub prefix: String,
}

/// A revision's identity; revisions order by manifest time, then id.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Revision {
    pub time: DateTime<Utc>,
    pub id: String,
}

impl Revision {
    /// The path segment: sortable time, then a filesystem-safe id.
    pub fn name(&self) -> String {
        let id: String = self
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        format!("{}-{}", self.time.format("%Y%m%dT%H%M%SZ"), id)
    }
}

/// One revision of one report/export to ingest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub kind: DeliveryKind,
    pub report: String,
    /// `YYYY-MM`; `None` for bare files (periods come from the rows).
    pub period: Option<String>,
    pub revision: Revision,
    /// The manifest (key, ETag) that vouches for this revision.
    pub manifest: Option<(String, String)>,
    /// Data files, as keys in the source store, in manifest order.
    pub files: Vec<ObjectMeta>,
    /// Keys the manifest names that the store does not have (yet).
    pub missing: Vec<String>,
    /// The payer account the manifest names (legacy `account`, export ARN).
    #[serde(default)]
    pub account: Option<String>,
    /// Why AWS says this report is not ready (the Athena layout's status
    /// table saying UPDATING); planning holds such a delivery back.
    #[serde(default)]
    pub hold: Option<String>,
}

/// What discovery found under a root.
#[derive(Debug, Default)]
pub struct Discovery {
    pub deliveries: Vec<Delivery>,
    /// Manifests that could not be used (not JSON, no file list, ...), with why.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Older revisions seen and passed over: (report, period, revision name).
    pub superseded: Vec<(String, String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot list {root}: {source}")]
    List { root: String, source: StoreError },
    #[error("no billing data under {root}: no *-Manifest.json and no .csv/.csv.gz/.zip/.parquet files. What to do: point curlew at the report's S3 prefix (or a copy of it), or at a directory of data files")]
    Nothing { root: String },
}

const DATA_SUFFIXES: &[&str] = &[".csv", ".csv.gz", ".csv.zip", ".zip", ".gz", ".parquet"];

fn is_manifest(key: &str) -> bool {
    key.ends_with("-Manifest.json") && !key.contains("cost_and_usage_data_status/")
}

fn is_data(key: &str) -> bool {
    !key.contains("cost_and_usage_data_status/") && DATA_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// Collapse empty segments (`a//b` -> `a/b`) so doubled slashes compare equal.
fn norm(key: &str) -> String {
    key.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// A manifest seen for a (report, period): revision, key, ETag, contents.
type Candidate = (Revision, String, String, Manifest);

/// Discover the newest revision per (report, period) under `source`.
pub async fn discover(source: &Source) -> Result<Discovery, DiscoverError> {
    let root = source.store.describe(&source.prefix);
    let listing = source
        .store
        .list(&source.prefix)
        .await
        .map_err(|e| DiscoverError::List {
            root: root.clone(),
            source: e,
        })?;
    let by_norm: HashMap<String, &ObjectMeta> = listing.iter().map(|m| (norm(&m.key), m)).collect();
    let mut out = Discovery::default();

    let manifests: Vec<&ObjectMeta> = listing.iter().filter(|m| is_manifest(&m.key)).collect();
    if manifests.is_empty() {
        let files: Vec<ObjectMeta> = listing
            .iter()
            .filter(|m| is_data(&m.key))
            .cloned()
            .collect();
        if files.is_empty() {
            return Err(DiscoverError::Nothing { root });
        }
        out.warnings.push(format!(
            "{root}: no manifest found; ingesting {} data file(s) as they are. No manifest vouches that this is a complete delivery",
            files.len()
        ));
        out.deliveries.push(bare_delivery(files));
        return Ok(out);
    }

    // (report, period) -> candidates (revision, manifest key, etag, manifest)
    let mut candidates: BTreeMap<(String, String), Vec<Candidate>> = BTreeMap::new();
    for meta in manifests {
        let bytes = match source.store.get_bytes(&meta.key).await {
            Ok((_, b)) => b,
            Err(e) => {
                out.errors
                    .push(format!("{}: cannot read manifest: {e}", meta.key));
                continue;
            }
        };
        match parse_manifest(&meta.key, &bytes) {
            Ok(m) => {
                let id = if m.assembly.is_empty() {
                    short_hash(&[&bytes])
                } else {
                    m.assembly.clone()
                };
                let rev = Revision {
                    time: meta.last_modified,
                    id,
                };
                candidates
                    .entry((m.report.clone(), m.period.clone()))
                    .or_default()
                    .push((rev, meta.key.clone(), meta.etag.clone(), m));
            }
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    for ((report, period), mut cands) in candidates {
        // Newest first. The top-level copy and the assembly copy share an id: prefer
        // the assembly copy, which AWS never rewrites, so its ETag check stays stable.
        cands.sort_by(|a, b| b.0.cmp(&a.0));
        let newest = cands[0].3.assembly.clone();
        let pick = cands
            .iter()
            .position(|c| {
                c.3.assembly == newest && !newest.is_empty() && c.1.contains(&format!("/{newest}/"))
            })
            .unwrap_or(0);
        let (rev, key, etag, manifest) = cands.remove(pick);
        for (r, ..) in cands.iter().filter(|c| c.3.assembly != manifest.assembly) {
            out.superseded
                .push((report.clone(), period.clone(), r.name()));
        }
        let (files, missing) = resolve_files(&source.prefix, &manifest.data_keys, &by_norm);
        out.deliveries.push(Delivery {
            kind: manifest.kind,
            report,
            period: Some(period),
            revision: Revision {
                time: rev.time,
                id: rev.id,
            },
            manifest: Some((key, etag)),
            files,
            missing,
            account: manifest.account.clone(),
            hold: None,
        });
    }
    hold_reports_being_updated(source, &listing, &mut out).await;
    Ok(out)
}

const STATUS_FILE: &str = "cost_and_usage_data_status/cost_and_usage_data_status.parquet";

/// The Athena layout's status table says `UPDATING` while AWS rewrites a
/// report: mark that report's deliveries held (planning skips them; a later
/// run picks them up).
async fn hold_reports_being_updated(source: &Source, listing: &[ObjectMeta], out: &mut Discovery) {
    for status in listing.iter().filter(|m| m.key.ends_with(STATUS_FILE)) {
        let root = &status.key[..status.key.len() - STATUS_FILE.len()];
        match status_hold(source, &status.key).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                for d in out.deliveries.iter_mut().filter(|d| {
                    d.manifest
                        .as_ref()
                        .is_some_and(|(k, _)| k.starts_with(root))
                }) {
                    d.hold = Some(why.clone());
                }
            }
            Err(e) => out.warnings.push(format!(
                "{}: unreadable status table ({e}); ignored",
                status.key
            )),
        }
    }
}

/// `Some(why)` when the status table at `key` says the report is being rewritten.
async fn status_hold(source: &Source, key: &str) -> Result<Option<String>, String> {
    let bytes = match source.store.get_bytes(key).await {
        Ok((_, bytes)) => bytes,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let v = read_status(bytes)?;
    Ok((!v.eq_ignore_ascii_case("READY")).then(|| {
        format!("{key}: status {v}: AWS is rewriting this report; held back until it says READY")
    }))
}

/// The status table of an Athena-layout report whose manifest is `manifest_key`
/// (`<prefix>/<report>/year=Y/month=M/<report>-Manifest.json`).
fn status_key_for(manifest_key: &str) -> Option<String> {
    let i = manifest_key.find("/year=")?;
    Some(format!("{}/{STATUS_FILE}", &manifest_key[..i]))
}

/// The first `status` value of a cost_and_usage_data_status Parquet file.
fn read_status(bytes: Vec<u8>) -> Result<String, String> {
    use arrow_array::cast::AsArray;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .and_then(|b| b.build())
    .map_err(|e| e.to_string())?;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let col = batch.column_by_name("status").ok_or("no status column")?;
        let col =
            arrow_cast::cast(col, &arrow_schema::DataType::Utf8).map_err(|e| e.to_string())?;
        if let Some(v) = col.as_string::<i32>().iter().flatten().next() {
            return Ok(v.to_owned());
        }
    }
    Err("no status value".into())
}

/// Why one announced manifest could not become a delivery.
#[derive(Debug, thiserror::Error)]
pub enum ManifestDeliveryError {
    #[error("reading manifest {key}: {source}")]
    Store { key: String, source: StoreError },
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
}

impl ManifestDeliveryError {
    pub fn class(&self) -> crate::failure::Class {
        match self {
            ManifestDeliveryError::Store { source, .. } => source.class(),
            ManifestDeliveryError::Manifest(_) => crate::failure::Class::Permanent,
        }
    }
}

/// HEADs in flight at once while planning one manifest.
pub const HEAD_CONCURRENCY: usize = 64;

/// The delivery one manifest describes, as an event announced it (no listing):
/// each data file is looked up with HEAD ([`HEAD_CONCURRENCY`] at once);
/// absent ones are reported in `missing`. Under the generated read policy a
/// HEAD of a key S3 does not have yet answers 403, not 404: a 403 on a
/// manifest-listed key counts as missing (retried), while the manifest's
/// own read decides whether access works at all.
/// A manifest listing more than `max_files`, or any key outside the source's
/// prefix, is returned without a single HEAD (its keys unchecked, ETags
/// empty): planning refuses it, and nothing outside the prefix is probed.
pub async fn delivery_from_manifest(
    source: &Source,
    manifest_key: &str,
    max_files: usize,
) -> Result<Delivery, ManifestDeliveryError> {
    use futures_util::stream::{self, StreamExt};
    let store_err = |e| ManifestDeliveryError::Store {
        key: manifest_key.to_owned(),
        source: e,
    };
    let (mut meta, bytes) = source
        .store
        .get_bytes(manifest_key)
        .await
        .map_err(store_err)?;
    let m = parse_manifest(manifest_key, &bytes)?;
    // A top-level copy of a "new version" manifest: use the assembly's own copy
    // (never rewritten), so both S3 events of one delivery name the same revision.
    let mut manifest_key = manifest_key.to_owned();
    if !m.assembly.is_empty() && !manifest_key.contains(&format!("/{}/", m.assembly)) {
        if let Some((dir, file)) = manifest_key.rsplit_once('/') {
            let copy = format!("{dir}/{}/{file}", m.assembly);
            if let Ok(c) = source.store.head(&copy).await {
                meta = c;
                manifest_key = copy;
            }
        }
    }
    let manifest_key = manifest_key.as_str();
    let id = if m.assembly.is_empty() {
        short_hash(&[&bytes])
    } else {
        m.assembly.clone()
    };
    let refused = m.data_keys.len() > max_files
        || (!source.prefix.trim_matches('/').is_empty()
            && m.data_keys
                .iter()
                .any(|k| !crate::pipeline::within_prefix(k, &source.prefix)));
    let unchecked = |k: &String| ObjectMeta {
        key: k.clone(),
        size: 0,
        etag: String::new(),
        last_modified: meta.last_modified,
    };
    let heads: Vec<(String, Result<ObjectMeta, StoreError>)> = if refused {
        m.data_keys
            .iter()
            .map(|k| (k.clone(), Ok(unchecked(k))))
            .collect()
    } else {
        // Owned keys: a future borrowing them would not be Send for every
        // lifetime, which callers inside a Send future (the proof) need.
        stream::iter(m.data_keys.iter().cloned())
            .map(|k| async move {
                let head = source.store.head(&k).await;
                (k, head)
            })
            .buffered(HEAD_CONCURRENCY)
            .collect()
            .await
    };
    let mut files = Vec::with_capacity(heads.len());
    let mut missing = Vec::new();
    for (k, r) in heads {
        match r {
            Ok(f) => files.push(f),
            Err(StoreError::NotFound { .. } | StoreError::Access { .. }) => missing.push(k),
            Err(e) => {
                return Err(ManifestDeliveryError::Store { key: k, source: e });
            }
        }
    }
    let hold = match status_key_for(manifest_key) {
        Some(k) => status_hold(source, &k)
            .await
            .map_err(|e| ManifestDeliveryError::Store {
                key: k.clone(),
                source: StoreError::Service {
                    key: k,
                    message: e,
                    retryable: true,
                },
            })?,
        None => None,
    };
    Ok(Delivery {
        kind: m.kind,
        report: m.report,
        period: Some(m.period),
        revision: Revision {
            time: meta.last_modified,
            id,
        },
        manifest: Some((manifest_key.to_owned(), meta.etag)),
        files,
        missing,
        account: m.account,
        hold,
    })
}

/// Map manifest keys (full bucket keys) onto the listing. A copy of
/// `s3://bucket/prefix` may lack the prefix, or sit under another one: find,
/// from the first key that resolves, how many leading segments to drop, then
/// apply that to all keys (each looked up bare and under the source prefix).
fn resolve_files(
    source_prefix: &str,
    keys: &[String],
    by_norm: &HashMap<String, &ObjectMeta>,
) -> (Vec<ObjectMeta>, Vec<String>) {
    let base = norm(source_prefix);
    let lookup = |rest: &str| -> Option<&ObjectMeta> {
        by_norm
            .get(rest)
            .or_else(|| {
                (!base.is_empty())
                    .then(|| by_norm.get(&format!("{base}/{rest}")))
                    .flatten()
            })
            .copied()
    };
    let normed: Vec<String> = keys.iter().map(|k| norm(k)).collect();
    let mut strip = None;
    'outer: for k in &normed {
        let mut rest = k.as_str();
        let mut dropped = 0;
        loop {
            if lookup(rest).is_some() {
                strip = Some(dropped);
                break 'outer;
            }
            match rest.find('/') {
                Some(i) => {
                    dropped += i + 1;
                    rest = &rest[i + 1..];
                }
                None => break,
            }
        }
    }
    let mut files = Vec::new();
    let mut missing = Vec::new();
    for (k, raw) in normed.iter().zip(keys) {
        let found = strip.and_then(|n| k.get(n..)).and_then(lookup);
        match found {
            Some(m) => files.push(m.clone()),
            None => missing.push(raw.clone()),
        }
    }
    (files, missing)
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bare_delivery(files: Vec<ObjectMeta>) -> Delivery {
    let ids: Vec<String> = files
        .iter()
        .map(|f| format!("{}|{}|{}", f.key, f.size, f.etag))
        .collect();
    let refs: Vec<&[u8]> = ids.iter().map(|s| s.as_bytes()).collect();
    let time = files
        .iter()
        .map(|f| f.last_modified)
        .max()
        .unwrap_or_default();
    Delivery {
        kind: DeliveryKind::Bare,
        report: String::new(),
        period: None,
        revision: Revision {
            time,
            id: format!("bare-{}", short_hash(&refs)),
        },
        manifest: None,
        files,
        missing: Vec::new(),
        account: None,
        hold: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 1,
            etag: "e".into(),
            last_modified: DateTime::<Utc>::default(),
        }
    }

    #[test]
    fn resolves_keys_of_a_prefixed_bucket_in_a_local_copy() {
        let listing = [
            meta("rep/20231101-20231201/a1/rep-1.csv.gz"),
            meta("rep/20231101-20231201/a1/rep-2.csv.gz"),
        ];
        let by: HashMap<String, &ObjectMeta> = listing.iter().map(|m| (norm(&m.key), m)).collect();
        let keys = vec![
            "my/prefix/rep/20231101-20231201/a1/rep-1.csv.gz".to_string(),
            "my/prefix//rep/20231101-20231201/a1/rep-2.csv.gz".to_string(),
            "my/prefix/rep/20231101-20231201/a1/rep-3.csv.gz".to_string(),
        ];
        let (files, missing) = resolve_files("", &keys, &by);
        assert_eq!(files.len(), 2);
        assert_eq!(missing, vec![keys[2].clone()]);
    }

    #[test]
    fn resolves_keys_under_a_source_prefix() {
        let listing = [meta("billing/cur/r/20240101-20240201/a1/r-1.csv.gz")];
        let by: HashMap<String, &ObjectMeta> = listing.iter().map(|m| (norm(&m.key), m)).collect();
        let keys = vec!["cur/r/20240101-20240201/a1/r-1.csv.gz".to_string()];
        let (files, missing) = resolve_files("billing/", &keys, &by);
        assert_eq!((files.len(), missing.len()), (1, 0));
    }

    #[test]
    fn revision_names_sort_by_time() {
        let t1 = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = Revision {
            time: t1,
            id: "zz".into(),
        };
        let b = Revision {
            time: t1 + chrono::Duration::seconds(1),
            id: "aa".into(),
        };
        assert!(a < b && a.name() < b.name());
        assert_eq!(a.name(), "20240102T030405Z-zz");
    }
}
