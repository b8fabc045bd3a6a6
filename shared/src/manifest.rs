//! Manifests: the only list of the files that make up a revision.
//!
//! Legacy CUR (`<report>-Manifest.json` with `reportKeys`, `assemblyId`,
//! `billingPeriod.start` as `20231101T000000.000Z`) and Data Exports (CUR 2.0 /
//! FOCUS: `dataFiles` as `s3://` URIs, `executionId`, period from
//! `BILLING_PERIOD=YYYY-MM` in the manifest's key). Unknown fields are ignored.

use crate::read::escaped;
use serde::Deserialize;

/// Which kind of delivery a manifest describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryKind {
    /// Legacy Cost and Usage Report (CSV or Parquet).
    Cur1,
    /// Data Exports: CUR 2.0 or FOCUS.
    DataExport,
    /// Bare data files with no manifest.
    Bare,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub kind: DeliveryKind,
    /// Report or export name.
    pub report: String,
    /// `YYYY-MM`.
    pub period: String,
    /// assemblyId / executionId: the delivery's identity.
    pub assembly: String,
    /// The data files, as keys in the bucket (`s3://bucket/` stripped).
    pub data_keys: Vec<String>,
    /// The account that owns the report (legacy `account`, or the export ARN's account).
    pub account: Option<String>,
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The parser's message may quote the input: shown escaped and cut.
    #[error("{}: not a JSON manifest ({}). What to do: check the file is an AWS billing manifest and not cut; a manifest being uploaded may be retried", escaped(.key), escaped(&.source.to_string()))]
    NotJson {
        key: String,
        source: serde_json::Error,
    },
    #[error("{}: {problem}. What to do: {hint}", escaped(.key))]
    Invalid {
        key: String,
        problem: String,
        hint: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    assembly_id: Option<String>,
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default)]
    report_name: Option<String>,
    #[serde(default)]
    export_name: Option<String>,
    #[serde(default)]
    export_arn: Option<String>,
    #[serde(default)]
    billing_period: Option<RawPeriod>,
    #[serde(default)]
    report_keys: Option<Vec<String>>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    data_files: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawPeriod {
    #[serde(default)]
    start: Option<String>,
}

/// `20231101T000000.000Z` or `2023-11-01T00:00:00.000Z` -> `2023-11`.
fn period_of(s: &str) -> Option<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).take(6).collect();
    (digits.len() == 6).then(|| format!("{}-{}", &digits[..4], &digits[4..6]))
}

/// `.../BILLING_PERIOD=2024-01/...` -> `2024-01`.
pub fn billing_period_segment(key: &str) -> Option<String> {
    key.split('/')
        .find_map(|seg| seg.strip_prefix("BILLING_PERIOD="))
        .and_then(|p| {
            let ok = p.len() == 7
                && p.as_bytes()[4] == b'-'
                && p[..4].chars().all(|c| c.is_ascii_digit());
            ok.then(|| p.to_owned())
        })
}

/// The billing period a manifest's key names: `BILLING_PERIOD=YYYY-MM`
/// (Data Exports), `<yyyymmdd-yyyymmdd>` (legacy CUR) or `year=Y/month=M`
/// (Athena layout). For messages about manifests that could not be parsed.
pub fn period_of_key(key: &str) -> Option<String> {
    if let Some(p) = billing_period_segment(key) {
        return Some(p);
    }
    let segs: Vec<&str> = key.split('/').collect();
    for s in &segs {
        let b = s.as_bytes();
        if b.len() == 17 && b[8] == b'-' && s.chars().filter(char::is_ascii_digit).count() == 16 {
            return Some(format!("{}-{}", &s[..4], &s[4..6]));
        }
    }
    let y = segs.iter().find_map(|s| s.strip_prefix("year="))?;
    let m: u32 = segs
        .iter()
        .find_map(|s| s.strip_prefix("month="))?
        .parse()
        .ok()?;
    Some(format!("{y}-{m:02}"))
}

/// `s3://bucket/a/b` -> `a/b`; a bare key is returned as is.
fn strip_s3(uri: &str) -> String {
    match uri.strip_prefix("s3://") {
        Some(rest) => rest.split_once('/').map_or("", |(_, k)| k).to_owned(),
        None => uri.to_owned(),
    }
}

/// Parse the manifest stored at `key`.
pub fn parse_manifest(key: &str, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson {
        key: key.into(),
        source: e,
    })?;
    let invalid = |problem: &str, hint: &'static str| ManifestError::Invalid {
        key: key.into(),
        problem: problem.into(),
        hint,
    };
    if let Some(files) = raw.data_files {
        let period = billing_period_segment(key)
            .or_else(|| raw.billing_period.as_ref().and_then(|p| p.start.as_deref()).and_then(period_of))
            .ok_or_else(|| invalid("no billing period (no BILLING_PERIOD=YYYY-MM in its key, no billingPeriod.start)", "keep the export's key layout unchanged"))?;
        let report = raw
            .export_name
            .or_else(|| {
                raw.export_arn
                    .as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    .map(str::to_owned)
            })
            .or_else(|| export_name_from_key(key))
            .unwrap_or_default();
        let assembly = raw.execution_id.unwrap_or_default();
        let account = raw.account.filter(|a| is_account_id(a)).or_else(|| {
            // arn:aws:bcm-data-exports:<region>:<account>:export/<name>
            raw.export_arn
                .as_deref()
                .and_then(|a| a.split(':').nth(4))
                .filter(|a| is_account_id(a))
                .map(str::to_owned)
        });
        return Ok(Manifest {
            kind: DeliveryKind::DataExport,
            report,
            period,
            assembly,
            data_keys: files.iter().map(|f| strip_s3(f)).collect(),
            account,
        });
    }
    if let Some(keys) = raw.report_keys {
        let period = raw
            .billing_period
            .as_ref()
            .and_then(|p| p.start.as_deref())
            .and_then(period_of)
            .ok_or_else(|| {
                invalid(
                    "billingPeriod.start is missing or not a date",
                    "check the manifest is complete",
                )
            })?;
        return Ok(Manifest {
            kind: DeliveryKind::Cur1,
            report: raw.report_name.unwrap_or_default(),
            period,
            assembly: raw.assembly_id.unwrap_or_default(),
            data_keys: keys.iter().map(|k| strip_s3(k)).collect(),
            account: raw.account.filter(|a| is_account_id(a)),
        });
    }
    Err(invalid(
        "neither reportKeys (CUR) nor dataFiles (Data Exports) is present",
        "point curlew at an AWS CUR or Data Exports manifest",
    ))
}

/// Twelve digits, as AWS writes account ids.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `<prefix>/<export>/metadata/BILLING_PERIOD=...` -> `<export>`.
fn export_name_from_key(key: &str) -> Option<String> {
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let i = segs.iter().position(|s| *s == "metadata")?;
    i.checked_sub(1).map(|j| segs[j].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_manifest() {
        let m = parse_manifest(
            "p/r/20231101-20231201/r-Manifest.json",
            br#"{"assemblyId":"aa1","reportName":"r","billingPeriod":{"start":"20231101T000000.000Z","end":"20231201T000000.000Z"},
               "reportKeys":["p/r/20231101-20231201/aa1/r-1.csv.gz"],"additionalArtifactKeys":[{"artifactType":"x","name":"y"}]}"#,
        )
        .unwrap();
        assert_eq!(m.kind, DeliveryKind::Cur1);
        assert_eq!(m.period, "2023-11");
        assert_eq!(m.assembly, "aa1");
        assert_eq!(m.data_keys, vec!["p/r/20231101-20231201/aa1/r-1.csv.gz"]);
    }

    #[test]
    fn data_export_manifest() {
        let m = parse_manifest(
            "p//cur2/metadata/BILLING_PERIOD=2024-01/cur2-Manifest.json",
            br#"{"executionId":"e1","exportArn":"arn:aws:bcm-data-exports:us-east-1:1:export/cur2-abc",
               "dataFiles":["s3://b/p//cur2/data/BILLING_PERIOD=2024-01/cur2-00001.snappy.parquet"]}"#,
        )
        .unwrap();
        assert_eq!(m.kind, DeliveryKind::DataExport);
        assert_eq!(m.period, "2024-01");
        assert_eq!(m.report, "cur2-abc");
        assert_eq!(m.account, None, "the ARN's account is not twelve digits");
        assert_eq!(
            m.data_keys,
            vec!["p//cur2/data/BILLING_PERIOD=2024-01/cur2-00001.snappy.parquet"]
        );
    }

    #[test]
    fn periods_from_manifest_keys_of_every_layout() {
        assert_eq!(
            period_of_key("p/r/20231101-20231201/r-Manifest.json").as_deref(),
            Some("2023-11")
        );
        assert_eq!(
            period_of_key("p/e/metadata/BILLING_PERIOD=2024-02/e-Manifest.json").as_deref(),
            Some("2024-02")
        );
        assert_eq!(
            period_of_key("p/r/r/year=2018/month=9/r-Manifest.json").as_deref(),
            Some("2018-09")
        );
        assert_eq!(period_of_key("x/y-Manifest.json"), None);
    }

    #[test]
    fn bad_manifests_say_why() {
        let e = parse_manifest("k-Manifest.json", b"not json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k-Manifest.json") && e.contains("not a JSON manifest"),
            "{e}"
        );
        let e = parse_manifest("k-Manifest.json", b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither reportKeys"), "{e}");
    }
}
