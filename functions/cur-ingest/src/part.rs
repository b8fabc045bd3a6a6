//! The part worker: SQS batches of part jobs -> [`curlew::pipeline::run_job`]
//! each. Transient failures are reported as batch item failures (retried);
//! permanent ones were recorded and announced by the pipeline (not retried);
//! access failures park the manifest for the sweep and mark the connection.

use crate::Deps;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use curlew::failure::Class;
use curlew::pipeline::{load_plan, park, run_job, JobOutcome, Parked, PartJob, PipelineError};
use curlew::read::ReadOptions;
use curlew::registry::RegistryError;
use curlew_lambda::batch::Failures;
use curlew_lambda::envelope::unwrap_sns;

#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("poison message (not a part job): {0}")]
    Poison(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Session(#[from] curlew::access::SessionError),
}

impl PartError {
    pub fn class(&self) -> Class {
        match self {
            // Not a job at all: nothing to record it against. Left to the
            // queue's redrive policy, so it ends in the DLQ, visible.
            PartError::Poison(_) => Class::Transient,
            PartError::Pipeline(e) => e.class(),
            PartError::Registry(e) => e.class(),
            PartError::Session(e) => e.class(),
        }
    }
}

/// What one message led to.
#[derive(Debug, Clone)]
pub enum PartOutcome {
    Job(JobOutcome),
    /// The connection is disconnected: its jobs are dropped (logged).
    Disconnected,
    /// Access refused: the manifest is parked for the sweep.
    Parked(String),
}

/// A job from an SQS body: raw message delivery, or the SNS envelope.
pub fn parse_job(body: &str) -> Result<PartJob, PartError> {
    let inner = unwrap_sns(body).map_err(PartError::Poison)?;
    PartJob::from_json(&inner).map_err(PartError::Poison)
}

/// Process one part job.
pub async fn process_job(deps: &Deps, job: &PartJob) -> Result<PartOutcome, PartError> {
    let ledger = deps.ledger();
    let plan = load_plan(&ledger, &job.plan_key).await?;
    let (conn, _) = deps.registry().get(&job.tenant, &job.payer).await?;
    if !conn.is_active() {
        tracing::warn!(tenant = %job.tenant, payer = %job.payer, "connection disconnected; job dropped");
        return Ok(PartOutcome::Disconnected);
    }
    let result = match deps.source(&conn).await {
        Ok(source) => run_job(
            &source,
            &ledger,
            &deps.notify(),
            &plan,
            job.index,
            &ReadOptions {
                threaded_decompression: true,
                progress: None,
            },
        )
        .await
        .map_err(PartError::from),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(o) => Ok(PartOutcome::Job(o)),
        Err(e) if e.class() == Class::Access => {
            let why = e.to_string();
            if let Some((key, _)) = &plan.delivery.manifest {
                park(
                    &ledger,
                    &Parked {
                        tenant: conn.tenant.clone(),
                        payer_account: conn.payer_account.clone(),
                        bucket: conn.bucket.clone(),
                        key: key.clone(),
                        why: why.clone(),
                        at: chrono::Utc::now(),
                    },
                )
                .await?;
            }
            deps.mark_access_failure(&conn, &why).await;
            Ok(PartOutcome::Parked(why))
        }
        Err(e) => Err(e),
    }
}

async fn process_message(deps: &Deps, m: &SqsMessage) -> Result<PartOutcome, PartError> {
    let job = parse_job(m.body.as_deref().unwrap_or(""))?;
    process_job(deps, &job).await
}

/// The worker's handler: every message on its own; only retryable failures
/// are reported (ReportBatchItemFailures), so one bad message does not redo
/// the batch and a bad file is not retried five times.
pub async fn handle(deps: &Deps, event: SqsEvent) -> (SqsBatchResponse, Vec<PartOutcome>) {
    let mut failures = Failures::default();
    let mut outcomes = Vec::new();
    for m in &event.records {
        match process_message(deps, m).await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                tracing::error!(error = %e, class = %e.class(), message_id = ?m.message_id, "part job failed; retried");
                failures.retry(m.message_id.as_deref());
            }
        }
    }
    (failures.response(), outcomes)
}
