//! The planner: an announced manifest -> for each connection that covers it,
//! the pipeline's decision, a stored plan and one SNS part job per data file
//! not yet staged (PublishBatch, bounded concurrency).

use crate::Deps;
use curlew::failure::Class;
use curlew::ledger::SourceId;
use curlew::pipeline::{
    park_manifest, plan_manifest, record_failure, AnnounceError, Announced, PipelineError,
};
use curlew::registry::{Connection, RegistryError};
use curlew_lambda::announced::{announced, ObjectRef};
use curlew_lambda::publish::publish_jobs;
use serde_json::{json, Value};

/// What the planner did with one announced object for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    /// Not a manifest (data files arrive before their manifest).
    NotAManifest,
    /// No active connection covers this bucket and prefix (logged, not failed).
    UnknownBucket,
    /// The pipeline decided not to ingest it (another report, before the
    /// start date, held, not newer than CURRENT).
    Skipped { source: SourceId, why: String },
    /// Part jobs published (only those not yet staged, on a redelivery).
    Planned {
        source: SourceId,
        period: String,
        revision: String,
        parts: usize,
        published: usize,
    },
    /// Failed for good: one failure record, one `delivery-failed` notice.
    Failed { source: SourceId, error: String },
    /// The customer's account refused access: parked and the connection marked.
    Parked {
        tenant: String,
        payer: String,
        why: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Session(#[from] curlew::access::SessionError),
    #[error("publishing part jobs: {0}")]
    Publish(String),
}

impl PlanError {
    pub fn class(&self) -> Class {
        match self {
            PlanError::Pipeline(e) => e.class(),
            PlanError::Registry(e) => e.class(),
            PlanError::Session(e) => e.class(),
            PlanError::Publish(_) => Class::Transient,
        }
    }
}

impl From<AnnounceError> for PlanError {
    fn from(e: AnnounceError) -> Self {
        match e {
            AnnounceError::Pipeline(e) => PlanError::Pipeline(e),
            AnnounceError::Registry(e) => PlanError::Registry(e),
        }
    }
}

/// Plan `obj` for one connection (the pipeline's per-connection planning,
/// shared with the sweep) and publish its part jobs; errors carry their class.
async fn plan_for(
    deps: &Deps,
    conn: &Connection,
    obj: &ObjectRef,
) -> Result<PlanOutcome, PlanError> {
    let ledger = deps.ledger();
    let source = deps.source(conn).await?;
    let planned = plan_manifest(
        &ledger,
        &deps.registry(),
        &source,
        conn,
        &obj.bucket,
        &obj.key,
        deps.config.max_files,
    )
    .await?;
    match planned {
        Announced::Skipped { source, why, .. } => Ok(PlanOutcome::Skipped { source, why }),
        Announced::Planned { plan, period, jobs } => {
            let published = publish_jobs(&deps.sns, &deps.config.parts_topic_arn, &jobs, &period)
                .await
                .map_err(PlanError::Publish)?;
            tracing::info!(source = %plan.source, period = %period, revision = %plan.revision(), parts = plan.delivery.files.len(), published, "planned");
            Ok(PlanOutcome::Planned {
                source: plan.source.clone(),
                period,
                revision: plan.revision(),
                parts: plan.delivery.files.len(),
                published,
            })
        }
    }
}

/// Plan one announced object for every active connection that covers it.
/// Permanent failures are recorded and announced; access failures park the
/// announcement and mark the connection; transient ones are returned (the
/// event is redelivered, and planning again is harmless).
pub async fn plan_object(deps: &Deps, obj: &ObjectRef) -> Result<Vec<PlanOutcome>, PlanError> {
    if !obj.key.ends_with("-Manifest.json") {
        return Ok(vec![PlanOutcome::NotAManifest]);
    }
    let found = deps.registry().find_by_bucket(&obj.bucket).await?;
    for e in &found.unreadable {
        tracing::error!(error = %e, "unreadable connection document; that connection is skipped, the others are not");
    }
    let conns: Vec<&Connection> = found
        .connections
        .iter()
        .filter(|c| c.is_active() && c.covers(&obj.bucket, &obj.key))
        .collect();
    if conns.is_empty() {
        tracing::warn!(bucket = %obj.bucket, key = %obj.key, "no active connection covers this bucket/prefix; ignored");
        return Ok(vec![PlanOutcome::UnknownBucket]);
    }
    let ledger = deps.ledger();
    let notify = deps.notify();
    let mut out = Vec::new();
    let mut retry = None;
    for conn in conns {
        match plan_for(deps, conn, obj).await {
            Ok(o) => out.push(o),
            Err(e) => match e.class() {
                Class::Transient => {
                    tracing::warn!(error = %e, key = %obj.key, tenant = %conn.tenant, "transient planning failure; the event will be retried");
                    retry = Some(e);
                }
                Class::Access => {
                    let why = e.to_string();
                    tracing::error!(error = %why, key = %obj.key, tenant = %conn.tenant, "access refused; announcement parked for the sweep");
                    park_manifest(&ledger, conn, &obj.bucket, &obj.key, &why).await?;
                    deps.mark_access_failure(conn, &why).await;
                    out.push(PlanOutcome::Parked {
                        tenant: conn.tenant.clone(),
                        payer: conn.payer_account.clone(),
                        why,
                    });
                }
                Class::Permanent => {
                    let pe = match e {
                        PlanError::Pipeline(pe) => pe,
                        other => PipelineError::BadPlan {
                            key: obj.key.clone(),
                            problem: other.to_string(),
                        },
                    };
                    let source = SourceId::new(
                        &conn.tenant,
                        &conn.payer_account,
                        conn.report.as_deref().unwrap_or(""),
                    );
                    let period = curlew::manifest::period_of_key(&obj.key)
                        .unwrap_or_else(|| "unknown".into());
                    let rec = record_failure(
                        &ledger,
                        &notify,
                        &source,
                        None,
                        &period,
                        &manifest_revision(&obj.key),
                        &pe,
                    )
                    .await?;
                    out.push(PlanOutcome::Failed {
                        source,
                        error: rec.error,
                    });
                }
            },
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A failure record's revision for a manifest that never became a plan.
fn manifest_revision(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("manifest-{}", &name[name.len().saturating_sub(80)..])
}

/// The planner's handler: any S3 / SNS / SQS / EventBridge shape. For SQS input
/// it returns batch item failures (transient ones only); otherwise a summary,
/// or an error so Lambda retries a transient failure.
pub async fn handle(deps: &Deps, event: Value) -> Result<Value, PlanError> {
    let mut failures = curlew_lambda::batch::Failures::default();
    let mut outcomes = Vec::new();
    let mut retry: Option<PlanError> = None;
    let records = announced(&event);
    let via_sqs = records.iter().any(|a| a.sqs_message_id.is_some());
    for a in records {
        let objects = match a.objects {
            Ok(o) => o,
            Err(why) => {
                // Not an event curlew knows. From SQS it is reported failed, so
                // the redrive policy moves it to the DLQ, visible; a direct
                // invocation has nowhere to keep it: logged at error.
                tracing::error!(%why, "unusable event record");
                if let Some(id) = &a.sqs_message_id {
                    failures.retry(Some(id));
                }
                continue;
            }
        };
        for obj in objects {
            match plan_object(deps, &obj).await {
                Ok(o) => outcomes.extend(o.into_iter().map(|o| format!("{}: {o:?}", obj.key))),
                Err(e) => match &a.sqs_message_id {
                    Some(id) => failures.retry(Some(id)),
                    None => retry = Some(e),
                },
            }
        }
    }
    if let Some(e) = retry {
        return Err(e);
    }
    if via_sqs {
        return Ok(serde_json::to_value(failures.response()).expect("response serialises"));
    }
    Ok(json!({ "outcomes": outcomes }))
}
