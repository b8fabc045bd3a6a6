//! The report or export under the prefix, as discovery sees it: kind
//! (CUR1 / CUR2 / FOCUS), format, compression, versioning, newest period and
//! how long ago it was delivered.

use super::recent::{recent_manifests, ManifestSeen};
use super::CallError;
use super::{classify, AccessReport, Cause, CheckItem, Outcome};
use crate::discover::{
    delivery_from_manifest, discover, Delivery, DiscoverError, Discovery, Source,
};
use crate::fields::Dialect;
use crate::manifest::DeliveryKind;
use crate::read::{open_data, ReadOptions};
use crate::store::{key_prefix, S3Store, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

const REPORT: (&str, &str) = ("report", "A report or export under the prefix");
pub(super) const ITEMS: &[(&str, &str)] = &[REPORT];

/// A delivery older than this is reported as stale (AWS refreshes at least daily).
const STALE_HOURS: i64 = 72;

/// One report or export found under the prefix (its newest period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundReport {
    pub name: String,
    /// `CUR1`, `CUR2`, `FOCUS`, or `CUR2/FOCUS` when the header could not be read.
    pub kind: String,
    /// `CSV` or `Parquet`.
    pub format: String,
    /// `gzip`, `zip`, `none`, or the Parquet codec named in the file name.
    pub compression: String,
    /// `overwrite` or `new version per delivery` (`none` for bare files).
    pub versioning: String,
    pub newest_period: Option<String>,
    pub delivered_at: DateTime<Utc>,
    pub age_hours: i64,
}

fn item(outcome: Outcome, detail: impl Into<String>) -> CheckItem {
    CheckItem::new(REPORT.0, REPORT.1, outcome, detail)
}

/// The cause inside a store error's message (`Code: message`).
fn store_cause(e: &StoreError) -> Cause {
    match e {
        StoreError::Service { message, .. } | StoreError::Access { message, .. } => {
            let code = message.split_once(": ").map_or("", |(c, _)| c);
            classify(code, message, None)
        }
        StoreError::NotFound { .. } => Cause::NotFound,
        _ => Cause::Other,
    }
}

/// Run discovery under the prefix and add the `report` item.
pub(super) async fn find(
    client: aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    wanted: Option<&str>,
    report: &mut AccessReport,
) {
    let store = Store::S3(S3Store::new(client.clone(), bucket));
    let source = Source {
        store,
        prefix: prefix.to_owned(),
    };
    let now = Utc::now();
    let found = match recent_deliveries(&client, &source, bucket, wanted, now).await {
        Ok(Some(found)) => found,
        Ok(None) => match small_prefix(&client, bucket, prefix).await {
            Ok(true) => match discover(&source).await {
                Ok(d) => d,
                Err(DiscoverError::Nothing { .. }) => {
                    report.items.push(item(
                        Outcome::Warn,
                        "nothing delivered under the prefix yet (AWS delivers the first report or export within 24 hours)",
                    ));
                    return;
                }
                Err(DiscoverError::List { source, .. }) => {
                    let cause = store_cause(&source);
                    report
                        .items
                        .push(item(Outcome::Fail, source.to_string()).because(cause));
                    return;
                }
            },
            Ok(false) => {
                report.items.push(item(
                    Outcome::Warn,
                    format!(
                        "no manifest of the open or the previous billing period under the prefix, and over {SMALL_PREFIX_KEYS} objects there, so older deliveries were not searched: check that the report or export is still active and delivers here"
                    ),
                ));
                return;
            }
            Err(e) => {
                report
                    .items
                    .push(item(Outcome::Fail, e.to_string()).because(e.cause));
                return;
            }
        },
        Err(e) => {
            report
                .items
                .push(item(Outcome::Fail, e.to_string()).because(e.cause));
            return;
        }
    };
    if found.deliveries.is_empty() {
        let why = found
            .errors
            .first()
            .cloned()
            .unwrap_or_else(|| found.warnings.join("; "));
        let cause = classify("", &why, None);
        report
            .items
            .push(item(Outcome::Fail, format!("no usable manifest: {why}")).because(cause));
        return;
    }
    // The newest period of each report.
    let mut newest: BTreeMap<&str, &Delivery> = BTreeMap::new();
    for d in &found.deliveries {
        let e = newest.entry(d.report.as_str()).or_insert(d);
        if (&d.period, &d.revision) > (&e.period, &e.revision) {
            *e = d;
        }
    }
    for d in newest.values() {
        report.reports.push(describe(&client, bucket, d, now).await);
    }
    let names: Vec<String> = report.reports.iter().map(|r| r.name.clone()).collect();
    if let Some(w) = wanted {
        report.reports.retain(|r| r.name == w);
        if report.reports.is_empty() {
            report.items.push(item(
                Outcome::Warn,
                format!(
                    "{w:?} not found under the prefix; found: {}",
                    names.join(", ")
                ),
            ));
            return;
        }
    }
    let mut outcome = Outcome::Pass;
    let lines: Vec<String> = report
        .reports
        .iter()
        .map(|r| {
            let mut s = format!(
                "{} {}: {} ({}), {}, newest period {}, delivered {}",
                r.kind,
                r.name,
                r.format,
                r.compression,
                r.versioning,
                r.newest_period.as_deref().unwrap_or("-"),
                ago(now - r.delivered_at)
            );
            if r.age_hours > STALE_HOURS {
                outcome = Outcome::Warn;
                s.push_str(" (stale: check the report/export is still active)");
            }
            s
        })
        .collect();
    let mut detail = lines.join("; ");
    if !found.errors.is_empty() {
        detail.push_str(&format!("; {} manifest(s) unusable", found.errors.len()));
    }
    report.items.push(item(outcome, detail));
}

/// A prefix this small is searched whole when no recent manifest is there
/// (a report delivered months ago, files copied by hand): one listing page.
const SMALL_PREFIX_KEYS: i32 = 1000;

/// The newest delivery of each report from the manifests of the open and
/// the previous billing period only (`recent::recent_manifests`: at most 20
/// report folders, four listings each) and one read of each report's newest
/// manifest and one HEAD of its first file: a constant number of requests
/// however many years of deliveries the prefix holds. `None`: no manifest of
/// those periods.
async fn recent_deliveries(
    client: &aws_sdk_s3::Client,
    source: &Source,
    bucket: &str,
    wanted: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Discovery>, CallError> {
    let seen = recent_manifests(client, bucket, &source.prefix, wanted, now).await?;
    if seen.is_empty() {
        return Ok(None);
    }
    // Oldest first: the last one seen of a report folder is its newest.
    let root = key_prefix(&source.prefix);
    let mut newest: BTreeMap<&str, &ManifestSeen> = BTreeMap::new();
    for m in &seen {
        let folder = m.key[root.len()..].split('/').next().unwrap_or_default();
        newest.insert(folder, m);
    }
    let mut found = Discovery::default();
    for m in newest.values() {
        // No HEAD of every data file (max_files 0): the first one is enough
        // to tell the format.
        match delivery_from_manifest(source, &m.key, 0).await {
            Ok(mut d) => {
                if let Some(first) = d.files.first_mut() {
                    if let Ok(h) = source.store.head(&first.key).await {
                        *first = h;
                    }
                }
                found.deliveries.push(d);
            }
            Err(e) => found.errors.push(e.to_string()),
        }
    }
    Ok(Some(found))
}

/// Whether the whole prefix fits in one listing page.
async fn small_prefix(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<bool, CallError> {
    let page = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key_prefix(prefix))
        .max_keys(SMALL_PREFIX_KEYS)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    Ok(!page.is_truncated().unwrap_or(false))
}

async fn describe(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    d: &Delivery,
    now: DateTime<Utc>,
) -> FoundReport {
    let first = d.files.first().map(|f| f.key.as_str()).unwrap_or_default();
    let (format, compression) = format_of(first);
    let kind = match d.kind {
        DeliveryKind::Cur1 => "CUR1".to_owned(),
        DeliveryKind::DataExport | DeliveryKind::Bare => {
            let size = d.files.first().map_or(0, |f| f.size);
            match sniff(client, bucket, first, size).await {
                Some(Dialect::Cur1Slash | Dialect::Cur1Snake) => "CUR1".into(),
                Some(Dialect::Cur2) => "CUR2".into(),
                Some(Dialect::Focus) => "FOCUS".into(),
                None => "CUR2/FOCUS".into(),
            }
        }
    };
    let versioning = match d.kind {
        DeliveryKind::Bare => "none",
        DeliveryKind::Cur1 => {
            let key = d.manifest.as_ref().map_or("", |(k, _)| k.as_str());
            if !d.revision.id.is_empty() && key.contains(&format!("/{}/", d.revision.id)) {
                "new version per delivery"
            } else {
                "overwrite"
            }
        }
        DeliveryKind::DataExport => {
            // New versions put each execution's files in a folder below BILLING_PERIOD=.
            let segs: Vec<&str> = first.split('/').collect();
            match segs.iter().position(|s| s.starts_with("BILLING_PERIOD=")) {
                Some(i) if i + 2 < segs.len() => "new version per delivery",
                _ => "overwrite",
            }
        }
    };
    let delivered_at = match d.kind {
        DeliveryKind::Bare => d
            .files
            .iter()
            .map(|f| f.last_modified)
            .max()
            .unwrap_or(d.revision.time),
        _ => d.revision.time,
    };
    FoundReport {
        name: d.report.clone(),
        kind,
        format: format.into(),
        compression: compression.into(),
        versioning: versioning.into(),
        newest_period: d.period.clone(),
        delivered_at,
        age_hours: (now - delivered_at).num_hours().max(0),
    }
}

/// `12 min ago`, `5 h ago`, `3 days ago`.
fn ago(age: chrono::Duration) -> String {
    let m = age.num_minutes().max(0);
    match m {
        0..60 => format!("{m} min ago"),
        60..2880 => format!("{} h ago", m / 60),
        _ => format!("{} days ago", m / 1440),
    }
}

/// Format and compression from a data file's name.
fn format_of(key: &str) -> (&'static str, &'static str) {
    if key.ends_with(".parquet") {
        let codec = ["snappy", "gzip", "zstd", "lz4", "brotli"]
            .into_iter()
            .find(|c| key.contains(&format!(".{c}.")))
            .unwrap_or("in-file");
        ("Parquet", codec)
    } else if key.ends_with(".gz") {
        ("CSV", "gzip")
    } else if key.ends_with(".zip") {
        ("CSV", "zip")
    } else {
        ("CSV", "none")
    }
}

/// The dialect of a data file from its header (CSV) or footer (Parquet),
/// reading only the bytes needed. `None` when it cannot be read or told.
async fn sniff(client: &aws_sdk_s3::Client, bucket: &str, key: &str, size: u64) -> Option<Dialect> {
    if size == 0 {
        return None;
    }
    let names = if key.ends_with(".parquet") {
        parquet_columns(client, bucket, key).await?
    } else {
        let head = get_range(client, bucket, key, "bytes=0-262143").await?;
        csv_header(key, head)?
    };
    Dialect::detect(names.iter().map(String::as_str))
}

async fn get_range(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    range: &str,
) -> Option<Vec<u8>> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(range)
        .send()
        .await
        .ok()?;
    Some(out.body.collect().await.ok()?.into_bytes().to_vec())
}

/// The first line of a (possibly compressed, possibly cut) CSV file, split.
fn csv_header(key: &str, head: Vec<u8>) -> Option<Vec<String>> {
    let stream = open_data(
        key,
        Box::new(std::io::Cursor::new(head)),
        &ReadOptions::default(),
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(stream.reader).read_line(&mut line).ok()?;
    let names = line
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|c| c.trim_matches('"').to_owned())
        .collect();
    Some(names)
}

/// Top-level column names from a Parquet footer (one or two ranged GETs).
async fn parquet_columns(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Option<Vec<String>> {
    let mut tail = get_range(client, bucket, key, "bytes=-65536").await?;
    let n = tail.len();
    if n < 12 || &tail[n - 4..] != b"PAR1" {
        return None;
    }
    let len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().ok()?) as usize;
    if len + 8 > n {
        tail = get_range(client, bucket, key, &format!("bytes=-{}", len + 8)).await?;
    }
    let n = tail.len();
    let meta = tail.get(n.checked_sub(len + 8)?..n - 8)?;
    let md = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(meta).ok()?;
    let root = md.file_metadata().schema_descr().root_schema();
    Some(
        root.get_fields()
            .iter()
            .map(|f| f.name().to_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(chrono::Duration::minutes(12)), "12 min ago");
        assert_eq!(ago(chrono::Duration::minutes(-3)), "0 min ago");
        assert_eq!(ago(chrono::Duration::hours(5)), "5 h ago");
        assert_eq!(ago(chrono::Duration::hours(80)), "3 days ago");
    }

    #[test]
    fn formats_from_names() {
        assert_eq!(format_of("a/b-00001.snappy.parquet"), ("Parquet", "snappy"));
        assert_eq!(format_of("a/b-1.csv.gz"), ("CSV", "gzip"));
        assert_eq!(format_of("a/b-1.csv.zip"), ("CSV", "zip"));
        assert_eq!(format_of("a/b-1.csv"), ("CSV", "none"));
    }

    #[test]
    fn csv_headers_through_gzip() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"\"BilledCost\",ChargeCategory,x\n1,Usage,2\n")
            .unwrap();
        let bytes = gz.finish().unwrap();
        // Cut short, as a ranged GET of a large file would be.
        let cut = bytes[..bytes.len() - 4].to_vec();
        let names = csv_header("k.csv.gz", cut).unwrap();
        assert_eq!(names, ["BilledCost", "ChargeCategory", "x"]);
        assert_eq!(
            Dialect::detect(names.iter().map(String::as_str)),
            Some(Dialect::Focus)
        );
    }
}
