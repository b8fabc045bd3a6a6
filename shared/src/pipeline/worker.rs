//! One part job, start to end, as the part worker Lambda runs it and as
//! `curlew ingest` runs each file: read + stage, then (whoever completes the
//! set) commit and notify. The job that completes the set merges its own part
//! from memory, and a one-file plan is never staged at all: its only job reads
//! and commits (a retry reads again, as it would had the read failed). Permanent failures become one failure record and
//! one `delivery-failed` notice; transient and access failures go back to the
//! caller, whose transport retries them.

use super::commit::{commit_parts, CommitResult, PeriodCommit};
use super::notice::{deliver_notices, record_failure, FailureRecord, Notify};
use super::part::{abandon, abandoned, process_part, stage_part, staged_indexes, Part, PartRead};
use super::{PipelineError, Plan};
use crate::discover::Source;
use crate::failure::Class;
use crate::ledger::Ledger;
use crate::read::ReadOptions;

/// What one job (or one commit attempt) came to.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    /// The part is staged; other parts are still to come.
    Staged,
    /// Every part was staged and the commit ran (each period's outcome inside).
    Committed(Vec<PeriodCommit>),
    /// A file or the manifest changed under the revision: nothing committed,
    /// a newer delivery is on its way.
    Abandoned { why: String },
    /// Failed for good: recorded and announced once; the revision will not commit.
    Failed(Box<FailureRecord>),
}

async fn fail(
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    err: PipelineError,
) -> Result<JobOutcome, PipelineError> {
    if err.class() != Class::Permanent {
        return Err(err);
    }
    let rec = record_failure(
        ledger,
        notify,
        &plan.source,
        Some(plan),
        plan.period_label(),
        &plan.revision(),
        &err,
    )
    .await?;
    abandon(ledger, plan, &rec.error).await?;
    tracing::error!(source = %plan.source, revision = %plan.revision(), error = %rec.error, "delivery failed; recorded");
    Ok(JobOutcome::Failed(Box::new(rec)))
}

/// A part read by this job (data file `index`), handed to the commit so it is
/// not loaded back from staging.
pub struct InHand {
    pub index: usize,
    pub part: Part,
}

/// What reading one data file came to.
enum ReadOne {
    Read(InHand),
    /// The job ended the revision (abandoned, failed for good).
    Ended(JobOutcome),
}

/// Read data file `index` of `plan` (not staged).
async fn read_one(
    source: &Source,
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    index: usize,
    read_opts: &ReadOptions,
) -> Result<ReadOne, PipelineError> {
    if let Some(why) = abandoned(ledger, plan).await? {
        return Ok(ReadOne::Ended(JobOutcome::Abandoned { why }));
    }
    let t = std::time::Instant::now();
    match process_part(source, plan, index, read_opts).await {
        Ok(PartRead::Read(part)) => {
            tracing::debug!(index, read = ?t.elapsed(), "part read");
            Ok(ReadOne::Read(InHand { index, part }))
        }
        Ok(PartRead::Rewritten { key }) => {
            let why = format!(
                "{key} was rewritten after the revision was planned (its ETag changed); revision abandoned, a newer delivery is on its way"
            );
            tracing::warn!(%key, revision = %plan.revision(), "data file rewritten; revision abandoned");
            abandon(ledger, plan, &why).await?;
            Ok(ReadOne::Ended(JobOutcome::Abandoned { why }))
        }
        Err(e) => fail(ledger, notify, plan, e).await.map(ReadOne::Ended),
    }
}

/// Read and stage data file `index` of `plan`.
pub async fn stage_one(
    source: &Source,
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    index: usize,
    read_opts: &ReadOptions,
) -> Result<JobOutcome, PipelineError> {
    match read_one(source, ledger, notify, plan, index, read_opts).await? {
        ReadOne::Read(h) => {
            stage_part(ledger, plan, index, &h.part).await?;
            Ok(JobOutcome::Staged)
        }
        ReadOne::Ended(o) => Ok(o),
    }
}

/// Read data file `index` and, when the plan has only that file, keep it in
/// hand for the commit instead of staging it. `Ok(Err(outcome))` when the
/// job ended the revision.
pub async fn read_or_stage(
    source: &Source,
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    index: usize,
    read_opts: &ReadOptions,
) -> Result<Result<Option<InHand>, JobOutcome>, PipelineError> {
    match read_one(source, ledger, notify, plan, index, read_opts).await? {
        ReadOne::Read(h) if plan.delivery.files.len() == 1 => Ok(Ok(Some(h))),
        ReadOne::Read(h) => {
            let t = std::time::Instant::now();
            stage_part(ledger, plan, index, &h.part).await?;
            tracing::debug!(index, staged = ?t.elapsed(), "part staged");
            Ok(Ok(Some(h)))
        }
        ReadOne::Ended(o) => Ok(Err(o)),
    }
}

/// If every part is staged: commit and publish the notices (the outbox makes
/// a repeat publish what a failed one left).
pub async fn finish(
    source: &Source,
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
) -> Result<JobOutcome, PipelineError> {
    finish_with(source, ledger, notify, plan, None).await
}

/// [`finish`], with the part this job read in hand (staged unless it is the
/// plan's only file).
pub async fn finish_with(
    source: &Source,
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    in_hand: Option<InHand>,
) -> Result<JobOutcome, PipelineError> {
    let only_file = plan.delivery.files.len() == 1 && in_hand.is_some();
    if !only_file && staged_indexes(ledger, plan).await?.len() < plan.delivery.files.len() {
        return Ok(JobOutcome::Staged);
    }
    match commit_parts(source, ledger, plan, in_hand).await {
        Ok(CommitResult::Abandoned { why }) => Ok(JobOutcome::Abandoned { why }),
        Ok(CommitResult::Committed(commits)) => {
            let periods: Vec<String> = commits.iter().map(|c| c.period.clone()).collect();
            deliver_notices(ledger, notify, plan, &periods).await?;
            Ok(JobOutcome::Committed(commits))
        }
        Err(e) => fail(ledger, notify, plan, e).await,
    }
}

/// A part job from start to end: read it (staged unless it is the plan's only
/// file), then commit if it completed the set.
pub async fn run_job(
    source: &Source,
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    index: usize,
    read_opts: &ReadOptions,
) -> Result<JobOutcome, PipelineError> {
    // A redelivered job of a revision already committed: only the notice may
    // still be owed (its first publish failed). Nothing else is redone.
    if let Some(p) = &plan.delivery.period {
        if let Some((cur, _)) = ledger.current(&plan.source, p).await? {
            if cur.revision == plan.revision() {
                deliver_notices(ledger, notify, plan, std::slice::from_ref(p)).await?;
                return Ok(JobOutcome::Committed(Vec::new()));
            }
        }
    }
    match read_or_stage(source, ledger, notify, plan, index, read_opts).await? {
        Ok(in_hand) => finish_with(source, ledger, notify, plan, in_hand).await,
        Err(other) => Ok(other),
    }
}
