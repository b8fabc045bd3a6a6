//! The ingestion pipeline: plan -> parts -> commit, the same code locally (a
//! task pool) and in Lambda (SNS/SQS between the steps).
//!
//! - [`process_part`] streams one data file into a partial rollup (CPU work on
//!   a blocking thread) and [`stage_part`] stores it under the revision's staging dir;
//! - [`commit_revision`] re-checks the manifest, merges the staged parts,
//!   writes the rollup and summary under `revision=R/` and swaps CURRENT.

use crate::discover::{discover, Delivery, DiscoverError, Source};
use crate::fields::Dialect;
use crate::ledger::{CommitOutcome, Current, Ledger, LedgerError};
use crate::manifest::DeliveryKind;
use crate::output::{write_rollup, InputFile, OutputError, SourceInfo, Summary};
use crate::read::{read_path, read_stream, ReadError, ReadOptions};
use crate::rollup::{PeriodRollup, RollupBuilder};
use crate::store::{ObjectMeta, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub tenant: String,
    /// Connected usage accounts; `None` attributes all.
    pub accounts: Option<BTreeSet<String>>,
    /// Skip billing periods before this `YYYY-MM` (the bill processing start date).
    pub since: Option<String>,
    /// Only this report/export (when a root holds several).
    pub report: Option<String>,
    /// Data files read at once.
    pub parallelism: usize,
    pub threaded_decompression: bool,
    pub progress: Option<Arc<AtomicU64>>,
}

impl IngestOptions {
    pub fn new(tenant: &str) -> Self {
        IngestOptions {
            tenant: tenant.into(),
            accounts: None,
            since: None,
            report: None,
            parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
            threaded_decompression: true,
            progress: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{manifest} names {} file(s) that do not exist (yet): {}. What to do: AWS may still be uploading; retry in a few minutes. Nothing was committed", .keys.len(), .keys.join(", "))]
    MissingFiles { manifest: String, keys: Vec<String> },
    #[error("{manifest} changed while its files were being read (ETag {before} -> {after}); revision abandoned, nothing committed. A newer delivery is on its way")]
    ManifestChanged {
        manifest: String,
        before: String,
        after: String,
    },
    #[error("staged part {key} is not readable ({problem}). What to do: re-run the ingest; staging is rebuilt")]
    BadStaging { key: String, problem: String },
    #[error("a parallel task failed: {0}")]
    Task(String),
}

impl IngestError {
    /// Whether trying again later may succeed (missing files, transient I/O).
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::MissingFiles { .. } | IngestError::ManifestChanged { .. } => true,
            IngestError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// One data file's contribution, as staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub file: InputFile,
    pub dialect: Dialect,
    pub other_provider_rows: u64,
    pub periods: BTreeMap<String, PeriodRollup>,
}

/// Stream one data file of `source` into a partial rollup.
pub async fn process_part(
    source: &Source,
    meta: &ObjectMeta,
    accounts: Option<&BTreeSet<String>>,
    read_opts: &ReadOptions,
) -> Result<Part, IngestError> {
    let name = meta.key.clone();
    let accounts = accounts.cloned();
    let opts = read_opts.clone();
    let (observed, job): (ObjectMeta, Box<dyn FnOnce() -> Result<_, ReadError> + Send>) =
        match source.store.local_path(&meta.key) {
            Some(path) => {
                let observed = source.store.head(&meta.key).await?;
                (
                    observed,
                    Box::new(move || {
                        let mut b = RollupBuilder::new(accounts.as_ref());
                        let r = read_path(&name, &path, &mut b, &opts)?;
                        Ok((r, b.finish()))
                    }),
                )
            }
            None => {
                let (observed, reader) = source.store.get(&meta.key).await?;
                (
                    observed,
                    Box::new(move || {
                        let mut b = RollupBuilder::new(accounts.as_ref());
                        let r = if is_parquet_key(&name) {
                            // Parquet needs seeks: spool the object to a local temp file first.
                            let tmp = spool(&name, reader)?;
                            read_path(&name, tmp.path(), &mut b, &opts)?
                        } else {
                            read_stream(&name, reader, &mut b, &opts)?
                        };
                        Ok((r, b.finish()))
                    }),
                )
            }
        };
    let (report, periods) = tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| IngestError::Task(e.to_string()))??;
    Ok(Part {
        file: InputFile {
            key: observed.key,
            size: observed.size,
            etag: observed.etag,
            rows: report.rows,
        },
        dialect: report.dialect,
        other_provider_rows: report.other_provider_rows,
        periods,
    })
}

fn is_parquet_key(key: &str) -> bool {
    key.ends_with(".parquet")
}

fn spool(
    name: &str,
    mut reader: Box<dyn std::io::Read + Send>,
) -> Result<tempfile::NamedTempFile, ReadError> {
    let mut tmp = tempfile::NamedTempFile::new().map_err(|e| ReadError::io(name, e))?;
    std::io::copy(&mut reader, &mut tmp).map_err(|e| ReadError::io(name, e))?;
    Ok(tmp)
}

fn part_key(ledger: &Ledger, tenant: &str, revision: &str, index: usize) -> String {
    format!(
        "{}part-{index:05}.json",
        ledger.layout.staging_dir(tenant, revision)
    )
}

/// Stage a processed part under the revision's staging directory.
pub async fn stage_part(
    ledger: &Ledger,
    tenant: &str,
    revision: &str,
    index: usize,
    part: &Part,
) -> Result<(), IngestError> {
    let body = serde_json::to_vec(part).expect("part serialises");
    ledger
        .store
        .put(&part_key(ledger, tenant, revision, index), body)
        .await?;
    Ok(())
}

/// Load the staged parts `0..count` of a revision; `None` if any is not staged yet.
pub async fn load_parts(
    ledger: &Ledger,
    tenant: &str,
    revision: &str,
    count: usize,
) -> Result<Option<Vec<Part>>, IngestError> {
    let mut parts = Vec::with_capacity(count);
    for i in 0..count {
        let key = part_key(ledger, tenant, revision, i);
        match ledger.store.get_bytes(&key).await {
            Ok((_, bytes)) => {
                parts.push(
                    serde_json::from_slice(&bytes).map_err(|e| IngestError::BadStaging {
                        key,
                        problem: e.to_string(),
                    })?,
                )
            }
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(parts))
}

/// The result of committing one billing period of a revision.
#[derive(Debug, Clone)]
pub struct PeriodCommit {
    pub period: String,
    pub outcome: CommitOutcome,
    pub summary: Summary,
}

/// Commit a revision whose parts are all processed: re-check the manifest,
/// write rollup + summary per period under `revision=R/`, swap CURRENT.
pub async fn commit_revision(
    source: &Source,
    ledger: &Ledger,
    tenant: &str,
    delivery: &Delivery,
    parts: &[Part],
) -> Result<Vec<PeriodCommit>, IngestError> {
    if let Some((key, etag)) = &delivery.manifest {
        let now = source.store.head(key).await?;
        if &now.etag != etag {
            tracing::warn!(manifest = %key, "manifest changed while reading; revision abandoned");
            return Err(IngestError::ManifestChanged {
                manifest: key.clone(),
                before: etag.clone(),
                after: now.etag,
            });
        }
    }
    let rev_name = delivery.revision.name();
    let mut merged: BTreeMap<String, PeriodRollup> = BTreeMap::new();
    let mut files_per_period: BTreeMap<String, Vec<InputFile>> = BTreeMap::new();
    for part in parts {
        for (period, r) in &part.periods {
            merged.entry(period.clone()).or_default().merge(r);
            let mut f = part.file.clone();
            f.rows = r.totals.rows;
            files_per_period.entry(period.clone()).or_default().push(f);
        }
    }
    if let Some(p) = &delivery.period {
        // A manifest's files may all be header-only: the period still gets an (empty) revision.
        merged.entry(p.clone()).or_default();
    }
    let dialects: BTreeSet<String> = parts
        .iter()
        .map(|p| {
            serde_json::to_value(p.dialect)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    let mut out = Vec::new();
    for (period, rollup) in merged {
        let dir = ledger.layout.revision_dir(tenant, &period, &rev_name);
        let rollup_key = format!("{dir}rollup.parquet");
        let summary_key = format!("{dir}summary.json");
        let info = SourceInfo {
            kind: serde_json::to_value(delivery.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            report: delivery.report.clone(),
            manifest_key: delivery.manifest.as_ref().map(|m| m.0.clone()),
            manifest_etag: delivery.manifest.as_ref().map(|m| m.1.clone()),
            vouched_by_manifest: delivery.kind != DeliveryKind::Bare,
            dialects: dialects.iter().cloned().collect(),
        };
        let files = files_per_period.remove(&period).unwrap_or_default();
        let summary = Summary::new(
            tenant,
            &period,
            &rev_name,
            delivery.kind,
            info,
            files,
            &rollup,
        );
        let current = Current {
            revision: rev_name.clone(),
            time: delivery.revision.time,
            id: delivery.revision.id.clone(),
            rollup_key: rollup_key.clone(),
            summary_key: summary_key.clone(),
        };
        // One read of CURRENT decides; the conditional commit below re-checks anyway.
        if let Some((cur, _)) = ledger.current(tenant, &period).await? {
            if delivery.revision <= cur.rev() {
                out.push(PeriodCommit {
                    period,
                    outcome: CommitOutcome::NotNewer {
                        current: cur.revision,
                    },
                    summary,
                });
                continue;
            }
        }
        ledger
            .store
            .put(&rollup_key, write_rollup(&period, &rollup)?)
            .await?;
        ledger
            .store
            .put(
                &summary_key,
                serde_json::to_vec_pretty(&summary).expect("summary serialises"),
            )
            .await?;
        let outcome = ledger.commit(tenant, &period, &current).await?;
        tracing::info!(tenant, period = %period, revision = %rev_name, ?outcome, "commit");
        out.push(PeriodCommit {
            period,
            outcome,
            summary,
        });
    }
    Ok(out)
}

/// What happened to one delivery in a local ingest.
#[derive(Debug)]
pub enum DeliveryStatus {
    Committed(Vec<PeriodCommit>),
    /// The ledger already holds this or a newer revision.
    AlreadyCurrent {
        current: String,
    },
    BeforeSince,
    Failed(IngestError),
}

#[derive(Debug)]
pub struct DeliveryResult {
    pub report: String,
    pub period: Option<String>,
    pub revision: String,
    pub kind: DeliveryKind,
    pub files: usize,
    pub status: DeliveryStatus,
}

/// Everything a local ingest did.
#[derive(Debug, Default)]
pub struct IngestReport {
    pub deliveries: Vec<DeliveryResult>,
    pub warnings: Vec<String>,
    /// Unusable manifests and other problems that did not stop the run.
    pub errors: Vec<String>,
}

impl IngestReport {
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
            || self
                .deliveries
                .iter()
                .any(|d| matches!(d.status, DeliveryStatus::Failed(_)))
    }
}

/// Ingest everything new under `source` into `ledger`: discovery, then per
/// delivery parts in parallel, staging, commit.
pub async fn ingest(
    source: &Source,
    ledger: &Ledger,
    opts: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let found = discover(source).await?;
    let mut report = IngestReport {
        warnings: found.warnings,
        errors: found.errors,
        ..IngestReport::default()
    };
    let mut deliveries: Vec<Delivery> = found.deliveries;
    if let Some(r) = &opts.report {
        deliveries.retain(|d| &d.report == r);
    }
    // Two reports of one period would fight over one CURRENT: refuse, name them.
    let mut by_period: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in &deliveries {
        if let Some(p) = &d.period {
            by_period
                .entry(p.clone())
                .or_default()
                .insert(d.report.clone());
        }
    }
    let clashes: BTreeMap<String, BTreeSet<String>> =
        by_period.into_iter().filter(|(_, r)| r.len() > 1).collect();
    if !clashes.is_empty() {
        for (p, reports) in &clashes {
            report.errors.push(format!(
                "billing period {p} is delivered by several reports ({}); pass --report NAME to pick the one to ingest",
                reports.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        deliveries.retain(|d| d.period.as_ref().is_none_or(|p| !clashes.contains_key(p)));
    }
    deliveries.sort_by(|a, b| (&a.period, &a.report).cmp(&(&b.period, &b.report)));
    for d in deliveries {
        let status = ingest_delivery(source, ledger, opts, &d).await;
        report.deliveries.push(DeliveryResult {
            report: d.report.clone(),
            period: d.period.clone(),
            revision: d.revision.name(),
            kind: d.kind,
            files: d.files.len(),
            status,
        });
    }
    Ok(report)
}

pub async fn ingest_delivery(
    source: &Source,
    ledger: &Ledger,
    opts: &IngestOptions,
    d: &Delivery,
) -> DeliveryStatus {
    if let (Some(since), Some(p)) = (&opts.since, &d.period) {
        if p < since {
            return DeliveryStatus::BeforeSince;
        }
    }
    if !d.missing.is_empty() {
        let manifest = d.manifest.as_ref().map(|m| m.0.clone()).unwrap_or_default();
        return DeliveryStatus::Failed(IngestError::MissingFiles {
            manifest,
            keys: d.missing.clone(),
        });
    }
    if let Some(p) = &d.period {
        match ledger.current(&opts.tenant, p).await {
            Ok(Some((cur, _))) if d.revision <= cur.rev() => {
                return DeliveryStatus::AlreadyCurrent {
                    current: cur.revision,
                }
            }
            Ok(_) => {}
            Err(e) => return DeliveryStatus::Failed(e.into()),
        }
    }
    match run_parts(source, ledger, opts, d).await {
        Ok(parts) => {
            let mut parts = parts;
            if let Some(since) = &opts.since {
                for p in &mut parts {
                    p.periods.retain(|period, _| period >= since);
                }
            }
            match commit_revision(source, ledger, &opts.tenant, d, &parts).await {
                Ok(c) => {
                    clear_staging(ledger, &opts.tenant, &d.revision.name()).await;
                    DeliveryStatus::Committed(c)
                }
                Err(e) => DeliveryStatus::Failed(e),
            }
        }
        Err(e) => DeliveryStatus::Failed(e),
    }
}

/// Process every file of a delivery, at most `parallelism` at once, staging each.
async fn run_parts(
    source: &Source,
    ledger: &Ledger,
    opts: &IngestOptions,
    d: &Delivery,
) -> Result<Vec<Part>, IngestError> {
    let read_opts = ReadOptions {
        threaded_decompression: opts.threaded_decompression,
        progress: opts.progress.clone(),
    };
    let rev = d.revision.name();
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.parallelism.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, meta) in d.files.iter().enumerate() {
        let (source, ledger, meta, read_opts, sem) = (
            source.clone(),
            ledger.clone(),
            meta.clone(),
            read_opts.clone(),
            sem.clone(),
        );
        let (accounts, tenant, rev) = (opts.accounts.clone(), opts.tenant.clone(), rev.clone());
        set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|e| IngestError::Task(e.to_string()))?;
            let part = process_part(&source, &meta, accounts.as_ref(), &read_opts).await?;
            stage_part(&ledger, &tenant, &rev, i, &part).await?;
            Ok::<_, IngestError>((i, part))
        });
    }
    let mut parts = Vec::with_capacity(d.files.len());
    while let Some(r) = set.join_next().await {
        match r.map_err(|e| IngestError::Task(e.to_string()))? {
            Ok(p) => parts.push(p),
            Err(e) => {
                set.abort_all();
                return Err(e);
            }
        }
    }
    parts.sort_by_key(|(i, _)| *i);
    Ok(parts.into_iter().map(|(_, p)| p).collect())
}

async fn clear_staging(ledger: &Ledger, tenant: &str, revision: &str) {
    let dir = ledger.layout.staging_dir(tenant, revision);
    if let Ok(list) = ledger.store.list(&dir).await {
        for m in list {
            let _ = ledger.store.delete(&m.key).await;
        }
    }
}
