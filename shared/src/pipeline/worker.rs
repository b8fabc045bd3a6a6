//! One part job, start to end, as the part worker Lambda runs it and as
//! `curlew ingest` runs each file: read + stage, then (whoever completes the
//! set) commit and notify. Permanent failures become one failure record and
//! one `delivery-failed` notice; transient and access failures go back to the
//! caller, whose transport retries them.

use super::commit::{commit_plan, CommitResult, PeriodCommit};
use super::notice::{deliver_notices, record_failure, FailureRecord, Notify};
use super::part::{abandon, abandoned, process_part, stage_part, staged_indexes, PartRead};
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

/// Read and stage data file `index` of `plan`.
pub async fn stage_one(
    source: &Source,
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    index: usize,
    read_opts: &ReadOptions,
) -> Result<JobOutcome, PipelineError> {
    if let Some(why) = abandoned(ledger, plan).await? {
        return Ok(JobOutcome::Abandoned { why });
    }
    let t = std::time::Instant::now();
    match process_part(source, plan, index, read_opts).await {
        Ok(PartRead::Read(part)) => {
            let read = t.elapsed();
            stage_part(ledger, plan, index, &part).await?;
            tracing::debug!(index, ?read, staged = ?t.elapsed() - read, "part read and staged");
            Ok(JobOutcome::Staged)
        }
        Ok(PartRead::Rewritten { key }) => {
            let why = format!(
                "{key} was rewritten after the revision was planned (its ETag changed); revision abandoned, a newer delivery is on its way"
            );
            tracing::warn!(%key, revision = %plan.revision(), "data file rewritten; revision abandoned");
            abandon(ledger, plan, &why).await?;
            Ok(JobOutcome::Abandoned { why })
        }
        Err(e) => fail(ledger, notify, plan, e).await,
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
    if staged_indexes(ledger, plan).await?.len() < plan.delivery.files.len() {
        return Ok(JobOutcome::Staged);
    }
    match commit_plan(source, ledger, plan).await {
        Ok(CommitResult::Abandoned { why }) => Ok(JobOutcome::Abandoned { why }),
        Ok(CommitResult::Committed(commits)) => {
            let periods: Vec<String> = commits.iter().map(|c| c.period.clone()).collect();
            deliver_notices(ledger, notify, plan, &periods).await?;
            Ok(JobOutcome::Committed(commits))
        }
        Err(e) => fail(ledger, notify, plan, e).await,
    }
}

/// A part job from start to end: stage it, then finish if it completed the set.
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
    match stage_one(source, ledger, notify, plan, index, read_opts).await? {
        JobOutcome::Staged => finish(source, ledger, notify, plan).await,
        other => Ok(other),
    }
}
