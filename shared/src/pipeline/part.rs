//! Parts: one data file of a plan, read pinned to the ETag the plan recorded,
//! streamed into a partial rollup of the plan's period, staged compactly.

use super::{PipelineError, Plan, WIRE_VERSION};
use crate::dimensions::Dimensions;
use crate::discover::Source;
use crate::fields::Dialect;
use crate::ledger::Ledger;
use crate::money::Money;
use crate::output::InputFile;
use crate::read::{
    read_parquet_ranges, read_path, read_stream, FileReport, RangedError, ReadOptions,
};
use crate::rollup::{PeriodRollup, RollupBuilder};
use crate::store::{S3Ranges, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One data file to process (one message on the parts topic). Versioned like [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartJob {
    pub version: u32,
    pub tenant: String,
    pub payer: String,
    pub revision: String,
    /// Key of the [`Plan`] in curlew's store.
    pub plan_key: String,
    pub index: usize,
    pub count: usize,
    pub key: String,
    /// The data file's ETag when the manifest was planned; the read is pinned to it.
    pub etag: String,
}

impl PartJob {
    pub fn from_json(text: &str) -> Result<PartJob, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match v.get("version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(WIRE_VERSION) => {}
            other => {
                return Err(format!(
                    "part job version {other:?}; this curlew reads version {WIRE_VERSION}"
                ))
            }
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
}

/// Rows a file held for a period other than the one its manifest is for:
/// counted, never committed into that other period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffPeriod {
    pub rows: u64,
    pub billed_cost: Money,
}

impl OffPeriod {
    pub fn merge(&mut self, o: &OffPeriod) {
        self.rows += o.rows;
        self.billed_cost += o.billed_cost;
    }
}

/// One data file's contribution, as staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub file: InputFile,
    pub dialect: Dialect,
    pub other_provider_rows: u64,
    /// The plan's period only (bare files: every period their rows name).
    pub periods: BTreeMap<String, PeriodRollup>,
    #[serde(default)]
    pub off_period: BTreeMap<String, OffPeriod>,
}

/// What reading a part came to.
#[derive(Debug)]
pub enum PartRead {
    Read(Part),
    /// The file is not the version the plan pinned: AWS rewrote it (overwrite
    /// mode); the revision must not commit a mixture.
    Rewritten {
        key: String,
    },
}

fn is_parquet_key(key: &str) -> bool {
    key.ends_with(".parquet")
}

/// How a part's bytes reach the reader.
enum Input {
    /// A local file (the filesystem store): read in place.
    Path(std::path::PathBuf),
    /// Parquet in S3: by byte ranges, every GET pinned to the planned ETag.
    Ranges(S3Ranges),
    /// CSV in S3: one GET pinned to the planned ETag, streamed.
    Stream(Box<dyn std::io::Read + Send>),
}

/// A pinned open: `None` if the object is no longer the planned version.
fn pinned<T>(opened: Result<T, StoreError>) -> Result<Option<T>, PipelineError> {
    match opened {
        Ok(x) => Ok(Some(x)),
        Err(StoreError::PreconditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Read `input` into a partial rollup (on a blocking thread). A ranged read
/// keeps the store's error: a 412 from any of its GETs is a rewrite.
fn read_input(
    name: &str,
    input: Input,
    accounts: Option<&BTreeSet<String>>,
    dims: Dimensions,
    opts: &ReadOptions,
) -> Result<(FileReport, BTreeMap<String, PeriodRollup>), PipelineError> {
    let mut b = RollupBuilder::new(accounts).with_dimensions(dims);
    let report = match input {
        Input::Path(path) => read_path(name, &path, &mut b, opts)?,
        Input::Stream(reader) => read_stream(name, reader, &mut b, opts)?,
        Input::Ranges(mut ranges) => {
            let read = read_parquet_ranges(name, &mut ranges, &mut b, opts);
            let stats = ranges.stats();
            tracing::debug!(
                key = name,
                size = ranges.meta().size,
                requests = stats.requests(),
                fetched = stats.bytes(),
                "Parquet read by ranges"
            );
            read.map_err(|e| match e {
                RangedError::Source(e) => PipelineError::Store(e),
                RangedError::Read(e) => PipelineError::Read(e),
            })?
        }
    };
    Ok((report, b.finish()))
}

/// Stream data file `index` of `plan` into a partial rollup (CPU work on a
/// blocking thread), read only if it is still the version the plan pinned:
/// a local file is checked by its tag first; an S3 object is read with
/// If-Match on every GET (one for CSV; for Parquet the tail, then the
/// projected column chunks of each row group, never the whole object).
pub async fn process_part(
    source: &Source,
    plan: &Plan,
    index: usize,
    read_opts: &ReadOptions,
) -> Result<PartRead, PipelineError> {
    let meta = plan
        .delivery
        .files
        .get(index)
        .ok_or_else(|| PipelineError::BadPlan {
            key: plan.revision(),
            problem: format!("has no file {index}"),
        })?;
    let name = meta.key.clone();
    let rewritten = || Ok(PartRead::Rewritten { key: name.clone() });
    let (observed, input) = match (&source.store, source.store.local_path(&meta.key)) {
        (_, Some(path)) => {
            let observed = source.store.head(&meta.key).await?;
            if observed.etag != meta.etag {
                return rewritten();
            }
            (observed, Input::Path(path))
        }
        (Store::S3(s3), None) if is_parquet_key(&meta.key) => {
            let Some(ranges) = pinned(s3.ranges_if_match(&meta.key, &meta.etag).await)? else {
                return rewritten();
            };
            (ranges.meta().clone(), Input::Ranges(ranges))
        }
        (store, None) => {
            let Some((observed, reader)) = pinned(store.get_if_match(&meta.key, &meta.etag).await)?
            else {
                return rewritten();
            };
            (observed, Input::Stream(reader))
        }
    };
    let accounts = plan.accounts.clone();
    let dims = plan.dimensions.clone();
    let opts = read_opts.clone();
    let job = move || read_input(&name, input, accounts.as_ref(), dims, &opts);
    let (report, mut periods) = match tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| PipelineError::Task(e.to_string()))?
    {
        Ok(read) => read,
        // A later ranged GET found the object rewritten mid-read.
        Err(PipelineError::Store(StoreError::PreconditionFailed { key })) => {
            return Ok(PartRead::Rewritten { key })
        }
        Err(e) => return Err(e),
    };
    let mut off_period = BTreeMap::new();
    match &plan.delivery.period {
        // The manifest decides the period: rows of any other are counted only.
        Some(p) => {
            let mine = periods.remove(p).unwrap_or_default();
            for (other, r) in std::mem::take(&mut periods) {
                off_period.insert(
                    other,
                    OffPeriod {
                        rows: r.totals.rows,
                        billed_cost: r.totals.billed_cost,
                    },
                );
            }
            periods.insert(p.clone(), mine);
        }
        None => {
            if let Some(since) = &plan.since {
                periods.retain(|period, _| period >= since);
            }
        }
    }
    Ok(PartRead::Read(Part {
        file: InputFile {
            key: observed.key,
            size: observed.size,
            etag: observed.etag,
            rows: report.rows,
        },
        dialect: report.dialect,
        other_provider_rows: report.other_provider_rows,
        periods,
        off_period,
    }))
}

fn parts_dir(ledger: &Ledger, plan: &Plan) -> String {
    format!(
        "{}parts/",
        ledger.layout.staging_dir(&plan.source, &plan.revision())
    )
}

fn part_key(ledger: &Ledger, plan: &Plan, index: usize) -> String {
    format!("{}part-{index:06}.msgpack", parts_dir(ledger, plan))
}

/// Stage a processed part (MessagePack: compact, and read back one at a time).
pub async fn stage_part(
    ledger: &Ledger,
    plan: &Plan,
    index: usize,
    part: &Part,
) -> Result<(), PipelineError> {
    let body = rmp_serde::to_vec_named(part).expect("part serialises");
    ledger
        .store
        .put(&part_key(ledger, plan, index), body)
        .await?;
    Ok(())
}

/// Which parts are staged: one listing of the staging prefix (the commit
/// barrier costs a list per finished part, never a read of every part).
pub async fn staged_indexes(
    ledger: &Ledger,
    plan: &Plan,
) -> Result<BTreeSet<usize>, PipelineError> {
    let dir = parts_dir(ledger, plan);
    Ok(ledger
        .store
        .list(&dir)
        .await?
        .iter()
        .filter_map(|m| {
            m.key
                .strip_prefix(&dir)?
                .strip_prefix("part-")?
                .strip_suffix(".msgpack")?
                .parse()
                .ok()
        })
        .collect())
}

/// Read staged part `index` back.
pub async fn load_part(ledger: &Ledger, plan: &Plan, index: usize) -> Result<Part, PipelineError> {
    let key = part_key(ledger, plan, index);
    let (_, bytes) = ledger.store.get_bytes(&key).await?;
    rmp_serde::from_slice(&bytes).map_err(|e| PipelineError::BadStaging {
        key,
        problem: e.to_string(),
    })
}

fn abandoned_key(ledger: &Ledger, plan: &Plan) -> String {
    format!(
        "{}ABANDONED",
        ledger.layout.staging_dir(&plan.source, &plan.revision())
    )
}

/// Mark the revision abandoned (a file was rewritten under it): no worker commits it.
pub async fn abandon(ledger: &Ledger, plan: &Plan, why: &str) -> Result<(), PipelineError> {
    match ledger
        .store
        .put_if_absent(&abandoned_key(ledger, plan), why.as_bytes().to_vec())
        .await
    {
        Ok(_) | Err(StoreError::PreconditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Why the revision was abandoned, if it was.
pub async fn abandoned(ledger: &Ledger, plan: &Plan) -> Result<Option<String>, PipelineError> {
    match ledger.store.get_bytes(&abandoned_key(ledger, plan)).await {
        Ok((_, b)) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Remove a revision's staging once it is committed or abandoned.
pub async fn clear_staging(ledger: &Ledger, plan: &Plan) {
    let dir = ledger.layout.staging_dir(&plan.source, &plan.revision());
    if let Ok(list) = ledger.store.list(&dir).await {
        for m in list {
            let _ = ledger.store.delete(&m.key).await;
        }
    }
}
