//! Bounded looks at a billing bucket, for the sweep's re-verification and the
//! access proof's delivery check alike: its region, the manifests of the open
//! and the previous billing period only (never a listing of years of
//! deliveries: a constant number of requests however old the report), and a
//! read of the newest one. Raw S3 calls, so every failure keeps AWS's status,
//! headers and wording for the sweep's `diagnose`.

use crate::access::CallError;
use crate::store::key_prefix;
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// Keys and subfolders listed per period folder at most (its manifest, its
/// data files in the overwrite layout, one subfolder per create-new delivery).
const MAX_KEYS_PER_FOLDER: i32 = 1000;
/// Report folders looked at when the connection names no report.
const MAX_REPORTS: i32 = 20;

/// A manifest seen under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSeen {
    pub key: String,
    pub last_modified: DateTime<Utc>,
}

/// The bucket's region (GetBucketLocation: empty means us-east-1, `EU` is
/// eu-west-1).
pub async fn locate(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<String, CallError> {
    let out = s3
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    Ok(match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".into(),
        Some("EU") => "eu-west-1".into(),
        Some(r) => r.to_owned(),
    })
}

/// The folders a report's manifests of the period starting `first` live in:
/// legacy CUR (`<r>/yyyymmdd-yyyymmdd/`, with its assembly copies below) and
/// Data Exports (`<r>/metadata/BILLING_PERIOD=YYYY-MM/`).
fn period_folders(first: NaiveDate) -> [String; 2] {
    let next = first + Months::new(1);
    [
        format!("{}-{}/", first.format("%Y%m%d"), next.format("%Y%m%d")),
        format!("metadata/BILLING_PERIOD={}/", first.format("%Y-%m")),
    ]
}

/// The first days of the open and the previous billing period at `now`.
pub fn recent_periods(now: DateTime<Utc>) -> [NaiveDate; 2] {
    let open = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).expect("first of month");
    [open - Months::new(1), open]
}

/// Every manifest of the recent periods, oldest first.
pub async fn recent_manifests(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    report: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ManifestSeen>, CallError> {
    let p = key_prefix(prefix);
    let reports = match report {
        Some(r) => vec![format!("{p}{r}/")],
        None => report_folders(s3, bucket, &p).await?,
    };
    let mut out = Vec::new();
    for r in &reports {
        for first in recent_periods(now) {
            for folder in period_folders(first) {
                list_manifests(s3, bucket, &format!("{r}{folder}"), &mut out).await?;
            }
        }
    }
    out.sort_by(|a, b| (a.last_modified, &a.key).cmp(&(b.last_modified, &b.key)));
    Ok(out)
}

/// The report folders right under the prefix (one delimited listing).
async fn report_folders(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, CallError> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .max_keys(MAX_REPORTS)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    Ok(out
        .common_prefixes()
        .iter()
        .filter_map(|c| c.prefix().map(str::to_owned))
        .collect())
}

async fn list_manifests(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    folder: &str,
    out: &mut Vec<ManifestSeen>,
) -> Result<(), CallError> {
    // Only the folder's own keys (the delimiter folds each assembly or
    // execution folder into one common prefix): the top-level manifest of a
    // month of create-new deliveries is never pushed past the page by the
    // thousands of data files below it.
    let page = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(folder)
        .delimiter("/")
        .max_keys(MAX_KEYS_PER_FOLDER)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    out.extend(page.contents().iter().filter_map(|o| {
        let key = o.key()?;
        let t = o.last_modified()?;
        if !key.ends_with("-Manifest.json") {
            return None;
        }
        Some(ManifestSeen {
            key: key.to_owned(),
            last_modified: DateTime::from_timestamp(t.secs(), t.subsec_nanos())?,
        })
    }));
    Ok(())
}

/// Read `key` (the newest manifest): proves read access, KMS included.
pub async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<(), CallError> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    out.body.collect().await.map_err(|e| CallError {
        cause: crate::access::Cause::Network,
        message: format!("reading {key}: {e}"),
        ..CallError::default()
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_and_previous_periods_and_their_folders() {
        let now = DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let [prev, open] = recent_periods(now);
        assert_eq!(
            (prev.to_string(), open.to_string()),
            ("2025-12-01".into(), "2026-01-01".into())
        );
        assert_eq!(
            period_folders(prev),
            [
                "20251201-20260101/".to_owned(),
                "metadata/BILLING_PERIOD=2025-12/".to_owned()
            ]
        );
    }
}
