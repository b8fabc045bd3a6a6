//! The planner: an announced manifest -> a staged plan and one SNS part job per data file.

use crate::announced::{announced, ObjectRef};
use crate::messages::{attr, PartJob, Plan};
use crate::Deps;
use curlew::discover::delivery_from_manifest;
use serde_json::{json, Value};

/// What the planner did with one announced object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    /// Not a manifest (data files arrive before their manifest).
    NotAManifest,
    /// No connection knows this bucket (logged, not failed).
    UnknownBucket,
    /// The ledger already holds this or a newer revision (duplicate or late event).
    NotNewer { tenant: String, period: String },
    /// Part jobs published.
    Planned {
        tenant: String,
        period: String,
        revision: String,
        parts: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Manifest(#[from] curlew::discover::ManifestDeliveryError),
    #[error("{manifest} names file(s) that do not exist yet: {keys:?}; retrying later")]
    Missing { manifest: String, keys: Vec<String> },
    #[error("registry: {0}")]
    Registry(#[from] curlew::registry::RegistryError),
    #[error("ledger: {0}")]
    Ledger(#[from] curlew::ledger::LedgerError),
    #[error("store: {0}")]
    Store(#[from] curlew::store::StoreError),
    #[error("publishing part jobs: {0}")]
    Publish(String),
    #[error(transparent)]
    Session(#[from] curlew::access::SessionError),
}

impl PlanError {
    /// Whether redelivering the event may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            PlanError::Manifest(e) => e.is_retryable(),
            PlanError::Registry(curlew::registry::RegistryError::Store(e)) => e.is_retryable(),
            PlanError::Registry(..) => false,
            PlanError::Session(e) => e.is_retryable(),
            _ => true,
        }
    }
}

/// Plan one announced object.
pub async fn plan_object(deps: &Deps, obj: &ObjectRef) -> Result<Vec<PlanOutcome>, PlanError> {
    if !obj.key.ends_with("-Manifest.json") {
        return Ok(vec![PlanOutcome::NotAManifest]);
    }
    let conns: Vec<_> = deps
        .registry()
        .find_by_bucket(&obj.bucket)
        .await?
        .into_iter()
        .filter(|c| obj.key.starts_with(c.prefix.trim_start_matches('/')))
        .collect();
    if conns.is_empty() {
        tracing::warn!(bucket = %obj.bucket, key = %obj.key, "no connection knows this bucket/prefix; ignored");
        return Ok(vec![PlanOutcome::UnknownBucket]);
    }
    let ledger = deps.ledger();
    let mut out = Vec::new();
    for conn in conns {
        let source = deps.source(&conn).await?;
        let delivery = delivery_from_manifest(&source, &obj.key).await?;
        if !delivery.missing.is_empty() {
            return Err(PlanError::Missing {
                manifest: obj.key.clone(),
                keys: delivery.missing,
            });
        }
        let period = delivery.period.clone().unwrap_or_default();
        if !ledger
            .is_newer(&conn.tenant, &period, &delivery.revision)
            .await?
        {
            out.push(PlanOutcome::NotNewer {
                tenant: conn.tenant.clone(),
                period,
            });
            continue;
        }
        let revision = delivery.revision.name();
        let plan_key = format!(
            "{}plan.json",
            ledger.layout.staging_dir(&conn.tenant, &revision)
        );
        let count = delivery.files.len();
        let plan = Plan {
            tenant: conn.tenant.clone(),
            payer_account: conn.payer_account.clone(),
            bucket: conn.bucket.clone(),
            prefix: conn.prefix.clone(),
            delivery,
        };
        ledger
            .store
            .put(
                &plan_key,
                serde_json::to_vec_pretty(&plan).expect("plan serialises"),
            )
            .await?;
        for (index, f) in plan.delivery.files.iter().enumerate() {
            let job = PartJob {
                tenant: conn.tenant.clone(),
                revision: revision.clone(),
                plan_key: plan_key.clone(),
                index,
                count,
                key: f.key.clone(),
                etag: f.etag.clone(),
            };
            deps.sns
                .publish()
                .topic_arn(&deps.config.parts_topic_arn)
                .message(serde_json::to_string(&job).expect("job serialises"))
                .message_attributes("tenant", attr(&conn.tenant))
                .message_attributes("billing_period", attr(&period))
                .send()
                .await
                .map_err(|e| {
                    PlanError::Publish(aws_sdk_sns::error::DisplayErrorContext(e).to_string())
                })?;
        }
        tracing::info!(tenant = %conn.tenant, period = %period, revision = %revision, parts = count, "planned");
        out.push(PlanOutcome::Planned {
            tenant: conn.tenant,
            period,
            revision,
            parts: count,
        });
    }
    Ok(out)
}

/// The planner's handler: any S3 / SNS / SQS / EventBridge shape. For SQS input
/// it returns batch item failures (only retryable ones); otherwise a summary,
/// or an error so Lambda retries a retryable failure.
pub async fn handle(deps: &Deps, event: Value) -> Result<Value, PlanError> {
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    let mut retry: Option<PlanError> = None;
    let via_sqs = announced(&event).iter().any(|a| a.sqs_message_id.is_some());
    for a in announced(&event) {
        let objects = match a.objects {
            Ok(o) => o,
            Err(why) => {
                // A malformed record will never parse: log it, do not retry it.
                tracing::error!(%why, "unusable event record; dropped");
                continue;
            }
        };
        for obj in objects {
            match plan_object(deps, &obj).await {
                Ok(o) => outcomes.extend(o.into_iter().map(|o| format!("{}: {o:?}", obj.key))),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, key = %obj.key, "retryable planning failure");
                    match &a.sqs_message_id {
                        Some(id) => failures.push(id.clone()),
                        None => retry = Some(e),
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, key = %obj.key, "planning failed; not retryable")
                }
            }
        }
    }
    if let Some(e) = retry {
        return Err(e);
    }
    failures.dedup();
    if via_sqs {
        return Ok(
            json!({ "batchItemFailures": failures.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>() }),
        );
    }
    Ok(json!({ "outcomes": outcomes }))
}
