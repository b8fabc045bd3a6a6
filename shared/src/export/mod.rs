//! `curlew export focus`: billing input (legacy CUR CSV/Parquet, CUR 2.0,
//! FOCUS) to line-level FOCUS 1.2 Parquet, Hive-partitioned by billing
//! period (`DIR/billing_period=YYYY-MM/<input file>.parquet`), one output
//! file per input file and period, exact DECIMAL(38,18) money.
//!
//! Discovery is ingestion's ([`crate::discover`]: the manifests decide the
//! revision); each row's key and measures are [`crate::read::Normaliser`]'s,
//! so the export's totals are the rollup's. Files are streamed batch by batch
//! and written in bounded row groups.

pub mod columns;
mod sink;
pub mod time;
pub mod writer;

pub use sink::legacy_tag_key;
pub use writer::WriteError;

use crate::discover::{discover, DiscoverError, Source};
use crate::fields::Dialect;
use crate::money::Money;
use crate::read::{escaped, read_path, ReadError, ReadOptions};
use md5::{Digest, Md5};
use sink::FocusSink;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only this report/export (when a root holds several).
    pub report: Option<String>,
}

/// Sums of one billing period's exported rows, in units of 1e-18 (exactly
/// what the files hold).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub rows: u64,
    pub billed: i128,
    pub effective: i128,
    pub list: i128,
    pub contracted: i128,
    pub consumed: i128,
}

impl Totals {
    fn add(&mut self, billed: i128, effective: i128, list: i128, contracted: i128, consumed: i128) {
        self.rows += 1;
        self.billed += billed;
        self.effective += effective;
        self.list += list;
        self.contracted += contracted;
        self.consumed += consumed;
    }

    fn merge(&mut self, o: &Totals) {
        self.rows += o.rows;
        self.billed += o.billed;
        self.effective += o.effective;
        self.list += o.list;
        self.contracted += o.contracted;
        self.consumed += o.consumed;
    }
}

/// Units of 1e-18 as an exact decimal string (trailing zeros removed).
pub fn units_text(v: i128) -> String {
    let neg = v < 0;
    let a = v.unsigned_abs();
    let scale = 10u128.pow(writer::SCALE as u32);
    let (int, frac) = (a / scale, a % scale);
    let mut s = format!("{}{int}", if neg { "-" } else { "" });
    if frac != 0 {
        let f = format!("{frac:018}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// Units of 1e-18 as a [`Money`] (`None` beyond its 28 digits).
pub fn units_money(v: i128) -> Option<Money> {
    Money::try_from_i128_with_scale(v, writer::SCALE as u32)
        .ok()
        .map(|m| m.normalize())
}

/// FOCUS rows of another provider: counted, never exported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherProviderRows {
    pub rows: u64,
    pub billed_cost: Money,
}

/// One input file's export.
#[derive(Debug, Clone)]
pub struct FileExport {
    /// The input's key under the root.
    pub input: String,
    pub dialect: Dialect,
    /// (billing period, output file, rows) of each file written.
    pub written: Vec<(String, PathBuf, u64)>,
    pub other_provider_rows: u64,
    pub off_period_rows: u64,
}

/// Everything an export did.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub files: Vec<FileExport>,
    /// Per billing period, the exported rows' sums.
    pub periods: BTreeMap<String, Totals>,
    /// Per provider, the FOCUS rows not exported.
    pub other_providers: BTreeMap<String, OtherProviderRows>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("manifest problems under the root: {}. What to do: fix or remove those manifests (curlew ingest refuses them too)", .0.join("; "))]
    Manifests(Vec<String>),
    #[error("{report} {period}: the manifest lists files that are not there: {}. What to do: copy the whole delivery (every file its manifest names), then re-run", .missing.join(", "))]
    Missing {
        report: String,
        period: String,
        missing: Vec<String>,
    },
    #[error("{key} is not a local file. What to do: export from a local copy of the bucket")]
    NotLocal { key: String },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("export task failed: {0}")]
    Task(String),
}

/// An input key's file name without its data suffixes (`.csv.gz`,
/// `.snappy.parquet`, ...).
pub fn stem(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let mut s = name;
    for suffix in [
        ".gz", ".zip", ".csv", ".parquet", ".snappy", ".zstd", ".gzip",
    ] {
        s = s.strip_suffix(suffix).unwrap_or(s);
    }
    for suffix in [".csv", ".parquet", ".snappy"] {
        s = s.strip_suffix(suffix).unwrap_or(s);
    }
    if s.is_empty() {
        name
    } else {
        s
    }
}

/// Export every current revision under `source` (a local directory) into
/// `out`.
pub async fn export_focus(
    source: &Source,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let found = discover(source).await?;
    if !found.errors.is_empty() {
        return Err(ExportError::Manifests(found.errors));
    }
    let mut report = ExportReport {
        warnings: found.warnings,
        ..ExportReport::default()
    };
    let mut deliveries = found.deliveries;
    deliveries.sort_by(|a, b| (&a.period, &a.report).cmp(&(&b.period, &b.report)));
    let mut names: BTreeSet<String> = BTreeSet::new();
    for d in deliveries {
        if opts.report.as_ref().is_some_and(|r| *r != d.report) {
            continue;
        }
        let period = d.period.clone();
        if let Some(why) = &d.hold {
            report.warnings.push(format!(
                "{} {}: not exported, AWS is still writing it ({why}); re-run later",
                d.report,
                period.as_deref().unwrap_or("")
            ));
            continue;
        }
        if !d.missing.is_empty() {
            return Err(ExportError::Missing {
                report: d.report.clone(),
                period: period.unwrap_or_default(),
                missing: d.missing.iter().map(|k| escaped(k).into_owned()).collect(),
            });
        }
        for f in &d.files {
            let path = source
                .store
                .local_path(&f.key)
                .ok_or_else(|| ExportError::NotLocal {
                    key: escaped(&f.key).into_owned(),
                })?;
            let mut name = format!("{}.parquet", stem(&f.key));
            if !names.insert(name.clone()) {
                let digest = Md5::digest(f.key.as_bytes());
                let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
                name = format!("{}-{short}.parquet", stem(&f.key));
                names.insert(name.clone());
            }
            let (key, out, period) = (f.key.clone(), out.to_path_buf(), period.clone());
            let (file, totals, others) = tokio::task::spawn_blocking(move || {
                export_file(&key, &path, &out, &name, period.as_deref())
            })
            .await
            .map_err(|e| ExportError::Task(e.to_string()))??;
            for (p, t) in totals {
                report.periods.entry(p).or_default().merge(&t);
            }
            for (p, o) in others {
                let e = report.other_providers.entry(p).or_default();
                e.rows += o.rows;
                e.billed_cost += o.billed_cost;
            }
            report.files.push(file);
        }
    }
    Ok(report)
}

type FileResult = (
    FileExport,
    BTreeMap<String, Totals>,
    BTreeMap<String, OtherProviderRows>,
);

/// Export one local data file; on failure nothing of it is left in `out`.
pub fn export_file(
    key: &str,
    path: &Path,
    out: &Path,
    file_name: &str,
    period: Option<&str>,
) -> Result<FileResult, ExportError> {
    let mut sink = FocusSink::new(out, file_name, period);
    let read = read_path(key, path, &mut sink, &ReadOptions::default());
    let read = match read {
        Ok(r) => r,
        Err(e) => {
            sink.abandon();
            return Err(match sink.error.take() {
                Some(w) => w.into(),
                None => e.into(),
            });
        }
    };
    let written = sink.finish()?;
    Ok((
        FileExport {
            input: key.to_owned(),
            dialect: read.dialect,
            written,
            other_provider_rows: read.other_provider_rows,
            off_period_rows: sink.off_period_rows,
        },
        std::mem::take(&mut sink.totals),
        std::mem::take(&mut sink.other_providers),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_units() {
        assert_eq!(stem("a/b/report-00001.csv.gz"), "report-00001");
        assert_eq!(
            stem("x/Oct2018-WorkshopCUR-00001.snappy.parquet"),
            "Oct2018-WorkshopCUR-00001"
        );
        assert_eq!(stem("focus_sample.csv"), "focus_sample");
        assert_eq!(stem("data.zip"), "data");
        assert_eq!(units_text(1_500_000_000_000_000_000), "1.5");
        assert_eq!(units_text(-1), "-0.000000000000000001");
        assert_eq!(units_text(0), "0");
        assert_eq!(legacy_tag_key("resourceTags/user:team"), "user_team");
        assert_eq!(
            legacy_tag_key("resourceTags/user:CostCenter"),
            "user_cost_center"
        );
        assert_eq!(
            legacy_tag_key("resource_tags_user_cost_center"),
            "user_cost_center"
        );
        assert_eq!(
            legacy_tag_key("resourceTags/aws:createdBy"),
            "aws_created_by"
        );
    }
}
