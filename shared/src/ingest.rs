//! `curlew ingest`: the [`crate::pipeline`] run in one process — discovery
//! stands in for the S3 events, a bounded task pool for SQS. Every decision
//! is the pipeline's; this module only orchestrates and reports.

use crate::dimensions::Dimensions;
use crate::discover::{discover, Delivery, Source};
use crate::ledger::{CommitOutcome, Ledger, SourceId};
use crate::manifest::DeliveryKind;
use crate::pipeline::{
    clear_staging, finish_with, plan_delivery, read_or_stage, record_failure, stage_one,
    stage_plan, Decision, FailureRecord, InHand, JobOutcome, Notify, PeriodCommit, PipelineError,
    Plan, Scope, Skip,
};
use crate::read::ReadOptions;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub use crate::pipeline::PipelineError as IngestError;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub tenant: String,
    /// The payer account the data belongs to; `None`: the manifest's account, else `unknown`.
    pub payer: Option<String>,
    /// Connected usage accounts; `None` attributes all.
    pub accounts: Option<BTreeSet<String>>,
    /// Skip billing periods before this `YYYY-MM` (the bill processing start date).
    pub since: Option<String>,
    /// Only this report/export (when a root holds several).
    pub report: Option<String>,
    /// Tag and cost category dimensions of the rollups.
    pub dimensions: Dimensions,
    /// Data files read at once.
    pub parallelism: usize,
    pub threaded_decompression: bool,
    pub progress: Option<Arc<AtomicU64>>,
}

impl IngestOptions {
    pub fn new(tenant: &str) -> Self {
        IngestOptions {
            tenant: tenant.into(),
            payer: None,
            accounts: None,
            since: None,
            report: None,
            dimensions: Dimensions::default(),
            parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
            threaded_decompression: true,
            progress: None,
        }
    }

    /// The pipeline scope these flags describe.
    pub fn scope(&self) -> Scope {
        let mut s = Scope::new(&self.tenant);
        s.payer = self.payer.clone();
        s.report = self.report.clone();
        s.accounts = self.accounts.clone();
        s.since = self.since.clone();
        s.dimensions = self.dimensions.clone();
        s
    }
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
    /// Another report than the one asked for.
    OtherReport,
    /// AWS is rewriting the report; a later run picks it up.
    Held(String),
    /// A file or the manifest changed while reading: nothing committed.
    Abandoned(String),
    /// Failed for good: recorded in the store and announced once.
    Failed(Box<FailureRecord>),
    /// Failed in a way a later run may get past (nothing committed).
    Retry(IngestError),
}

#[derive(Debug)]
pub struct DeliveryResult {
    pub source: SourceId,
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
            || self.deliveries.iter().any(|d| {
                matches!(
                    d.status,
                    DeliveryStatus::Failed(_) | DeliveryStatus::Retry(_)
                )
            })
    }
}

/// Ingest everything new under `source` into `ledger`.
pub async fn ingest(
    source: &Source,
    ledger: &Ledger,
    opts: &IngestOptions,
    notify: &dyn Notify,
) -> Result<IngestReport, IngestError> {
    let found = discover(source).await?;
    let mut report = IngestReport {
        warnings: found.warnings,
        errors: found.errors,
        ..IngestReport::default()
    };
    let scope = opts.scope();
    // Which reports deliver each (payer, period): the pipeline refuses a
    // period two reports claim unless one is named.
    let mut reports_of: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for d in &found.deliveries {
        if let Some(p) = &d.period {
            reports_of
                .entry((scope.source_of(d).payer, p.clone()))
                .or_default()
                .insert(d.report.clone());
        }
    }
    let mut deliveries: Vec<Delivery> = found.deliveries;
    deliveries.sort_by(|a, b| (&a.period, &a.report).cmp(&(&b.period, &b.report)));
    let empty = BTreeSet::new();
    for d in deliveries {
        let others = d
            .period
            .as_ref()
            .and_then(|p| reports_of.get(&(scope.source_of(&d).payer, p.clone())))
            .unwrap_or(&empty)
            .clone();
        let (result, problem) = ingest_delivery(source, ledger, opts, notify, d, &others).await;
        report.errors.extend(problem);
        report.deliveries.push(result);
    }
    Ok(report)
}

/// Ingest one delivery through the pipeline: plan, stage every file, commit.
/// `other_reports`: the reports known to deliver the same payer's period.
/// The second value is a problem that did not stop the run (a failure record
/// that could not be written).
pub async fn ingest_delivery(
    source: &Source,
    ledger: &Ledger,
    opts: &IngestOptions,
    notify: &dyn Notify,
    d: Delivery,
    other_reports: &BTreeSet<String>,
) -> (DeliveryResult, Option<String>) {
    let scope = opts.scope();
    let id = scope.source_of(&d);
    let mut result = DeliveryResult {
        source: id.clone(),
        report: d.report.clone(),
        period: d.period.clone(),
        revision: d.revision.name(),
        kind: d.kind,
        files: d.files.len(),
        status: DeliveryStatus::BeforeSince,
    };
    let period = d.period.clone().unwrap_or_else(|| "bare".into());
    let mut problem = None;
    result.status = match plan_delivery(source, ledger, &scope, d, other_reports).await {
        Ok(Decision::Planned(plan)) => run_plan(source, ledger, opts, notify, &plan).await,
        Ok(Decision::Skipped { skip, .. }) => match skip {
            Skip::NotNewer { current } => DeliveryStatus::AlreadyCurrent { current },
            Skip::BeforeSince { .. } => DeliveryStatus::BeforeSince,
            Skip::OtherReport { .. } => DeliveryStatus::OtherReport,
            Skip::Held { why } => DeliveryStatus::Held(why),
        },
        Err(e) if e.class() == crate::failure::Class::Permanent => {
            match record_failure(ledger, notify, &id, None, &period, &result.revision, &e).await {
                Ok(rec) => DeliveryStatus::Failed(Box::new(rec)),
                Err(re) => {
                    problem = Some(format!("recording the failure of {id} {period}: {re}"));
                    DeliveryStatus::Retry(e)
                }
            }
        }
        Err(e) => DeliveryStatus::Retry(e),
    };
    (result, problem)
}

/// Stage every file of a plan (at most `parallelism` at once), then commit.
async fn run_plan(
    source: &Source,
    ledger: &Ledger,
    opts: &IngestOptions,
    notify: &dyn Notify,
    plan: &Plan,
) -> DeliveryStatus {
    let status = match stage_all(source, ledger, opts, notify, plan).await {
        Ok(Ok(in_hand)) => match finish_with(source, ledger, notify, plan, in_hand).await {
            Ok(JobOutcome::Committed(c)) => {
                if !c.is_empty()
                    && c.iter()
                        .all(|p| matches!(p.outcome, CommitOutcome::NotNewer { .. }))
                {
                    let current = match &c.first().map(|p| &p.outcome) {
                        Some(CommitOutcome::NotNewer { current }) => current.clone(),
                        _ => String::new(),
                    };
                    DeliveryStatus::AlreadyCurrent { current }
                } else {
                    DeliveryStatus::Committed(c)
                }
            }
            Ok(other) => outcome_status(other),
            Err(e) => DeliveryStatus::Retry(e),
        },
        Ok(Err(outcome)) => outcome_status(outcome),
        Err(e) => DeliveryStatus::Retry(e),
    };
    clear_staging(ledger, plan).await;
    status
}

fn outcome_status(o: JobOutcome) -> DeliveryStatus {
    match o {
        JobOutcome::Abandoned { why } => DeliveryStatus::Abandoned(why),
        JobOutcome::Failed(rec) => DeliveryStatus::Failed(rec),
        JobOutcome::Committed(c) => DeliveryStatus::Committed(c),
        JobOutcome::Staged => {
            DeliveryStatus::Retry(PipelineError::Task("parts missing after staging".into()))
        }
    }
}

/// Read every file of the plan (at most `parallelism` at once). `Ok(Ok(in_hand))`
/// when every part is staged or, for a one-file plan, in hand (never staged);
/// `Ok(Err(outcome))` when a part ended the revision (abandoned, failed for good).
async fn stage_all(
    source: &Source,
    ledger: &Ledger,
    opts: &IngestOptions,
    notify: &dyn Notify,
    plan: &Plan,
) -> Result<Result<Option<InHand>, JobOutcome>, IngestError> {
    use futures_util::stream::{self, StreamExt};
    let jobs = stage_plan(ledger, plan).await?;
    let read_opts = ReadOptions {
        threaded_decompression: opts.threaded_decompression,
        progress: opts.progress.clone(),
    };
    if let [job] = jobs.as_slice() {
        if plan.delivery.files.len() == 1 {
            let r = read_or_stage(source, ledger, notify, plan, job.index, &read_opts).await?;
            return Ok(r);
        }
    }
    // The parsing runs on blocking threads inside `stage_one`; this polls at
    // most `parallelism` of them at once.
    let mut results = stream::iter(jobs)
        .map(|job| {
            let read_opts = &read_opts;
            async move { stage_one(source, ledger, notify, plan, job.index, read_opts).await }
        })
        .buffer_unordered(opts.parallelism.max(1));
    while let Some(r) = results.next().await {
        match r? {
            JobOutcome::Staged => {}
            other => return Ok(Err(other)),
        }
    }
    Ok(Ok(None))
}
