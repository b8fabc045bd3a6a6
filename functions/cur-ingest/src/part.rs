//! The part worker: SQS batches of part jobs -> staged partial rollups; the
//! worker that finds every part staged commits the revision and announces it.

use crate::messages::{attr, Committed, PartJob, Plan};
use crate::Deps;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use curlew::ingest::{commit_revision, load_parts, process_part, stage_part, IngestError};
use curlew::ledger::CommitOutcome;
use curlew::read::ReadOptions;

#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("poison message (not a part job): {0}")]
    Poison(String),
    #[error("plan {key} is unreadable: {problem}")]
    Plan { key: String, problem: String },
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("store: {0}")]
    Store(#[from] curlew::store::StoreError),
    #[error("publishing the commit notice: {0}")]
    Publish(String),
    #[error("registry: {0}")]
    Registry(#[from] curlew::registry::RegistryError),
    #[error(transparent)]
    Session(#[from] curlew::access::SessionError),
}

/// What one message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    Staged,
    /// This worker committed the revision (period, previous revision).
    Committed(Vec<(String, Option<String>)>),
    /// Every part was staged but another worker (or an older/equal revision check) won.
    NotNewer,
    /// The manifest changed while reading: a newer delivery is coming.
    Abandoned,
}

/// A job from an SQS body: raw message delivery, or the SNS envelope.
pub fn parse_job(body: &str) -> Result<PartJob, PartError> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| PartError::Poison(e.to_string()))?;
    let inner = if v.get("Type").and_then(|t| t.as_str()) == Some("Notification") {
        let m = v
            .get("Message")
            .and_then(|m| m.as_str())
            .ok_or_else(|| PartError::Poison("SNS envelope without Message".into()))?;
        serde_json::from_str(m).map_err(|e| PartError::Poison(e.to_string()))?
    } else {
        v
    };
    serde_json::from_value(inner).map_err(|e| PartError::Poison(e.to_string()))
}

/// Process one part job.
pub async fn process_job(deps: &Deps, job: &PartJob) -> Result<PartOutcome, PartError> {
    let ledger = deps.ledger();
    let (_, bytes) = ledger.store.get_bytes(&job.plan_key).await?;
    let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| PartError::Plan {
        key: job.plan_key.clone(),
        problem: e.to_string(),
    })?;
    let (conn, _) = deps
        .registry()
        .get(&plan.tenant, &plan.payer_account)
        .await?;
    let source = deps.source(&conn).await?;
    let meta = plan
        .delivery
        .files
        .get(job.index)
        .ok_or_else(|| PartError::Plan {
            key: job.plan_key.clone(),
            problem: format!("has no file {}", job.index),
        })?;
    let part = process_part(
        &source,
        meta,
        None,
        &ReadOptions {
            threaded_decompression: true,
            progress: None,
        },
    )
    .await?;
    stage_part(&ledger, &job.tenant, &job.revision, job.index, &part).await?;
    let Some(parts) = load_parts(&ledger, &job.tenant, &job.revision, job.count).await? else {
        return Ok(PartOutcome::Staged);
    };
    let commits = match commit_revision(&source, &ledger, &job.tenant, &plan.delivery, &parts).await
    {
        Ok(c) => c,
        Err(IngestError::ManifestChanged { manifest, .. }) => {
            tracing::warn!(%manifest, revision = %job.revision, "manifest changed while reading; revision abandoned");
            return Ok(PartOutcome::Abandoned);
        }
        Err(e) => return Err(e.into()),
    };
    let mut won = Vec::new();
    for c in commits {
        if let CommitOutcome::Committed { previous } = &c.outcome {
            let notice = Committed {
                event: "revision-committed".into(),
                tenant: job.tenant.clone(),
                billing_period: c.period.clone(),
                revision: job.revision.clone(),
                previous: previous.clone(),
                rows: c.summary.rows_read,
                totals: c.summary.totals.clone(),
                unattributed: c.summary.unattributed.total.clone(),
            };
            deps.sns
                .publish()
                .topic_arn(&deps.config.results_topic_arn)
                .message(serde_json::to_string(&notice).expect("notice serialises"))
                .message_attributes("tenant", attr(&job.tenant))
                .message_attributes("billing_period", attr(&c.period))
                .message_attributes("event", attr("revision-committed"))
                .send()
                .await
                .map_err(|e| {
                    PartError::Publish(aws_sdk_sns::error::DisplayErrorContext(e).to_string())
                })?;
            won.push((c.period.clone(), previous.clone()));
        }
    }
    Ok(if won.is_empty() {
        PartOutcome::NotNewer
    } else {
        PartOutcome::Committed(won)
    })
}

async fn process_message(deps: &Deps, m: &SqsMessage) -> Result<PartOutcome, PartError> {
    let job = parse_job(m.body.as_deref().unwrap_or(""))?;
    process_job(deps, &job).await
}

/// The worker's handler: every message on its own; failures are reported per
/// item (ReportBatchItemFailures) so one bad message does not redo the batch.
pub async fn handle(deps: &Deps, event: SqsEvent) -> (SqsBatchResponse, Vec<PartOutcome>) {
    let mut resp = SqsBatchResponse::default();
    let mut outcomes = Vec::new();
    for m in &event.records {
        match process_message(deps, m).await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                tracing::error!(error = %e, message_id = ?m.message_id, "part job failed");
                let mut f = BatchItemFailure::default();
                f.item_identifier = m.message_id.clone().unwrap_or_default();
                resp.batch_item_failures.push(f);
            }
        }
    }
    (resp, outcomes)
}
