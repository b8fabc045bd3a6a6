//! The handler: an EventBridge schedule event fans out one sweep job per
//! connection on the sweep topic (10,000 connections are 1,000 PublishBatch
//! calls, seconds); an SQS batch of jobs sweeps each connection, a few at
//! once, and reports the transient failures for redelivery.

use crate::Deps;
use curlew::discover::Source;
use curlew::failure::Class;
use curlew::pipeline::{PartJob, Plan};
use curlew::registry::RegistryError;
use curlew::sweep::{sweep_connection, Dispatch, DispatchFuture, SweepCtx, SweepError};
use curlew_lambda::batch::Failures;
use curlew_lambda::envelope::unwrap_sns;
use curlew_lambda::publish::{publish_all, publish_jobs, Message};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One connection to sweep (one message on the sweep topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepJob {
    pub version: u32,
    pub tenant: String,
    pub payer_account: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("not an event the sweep knows (a schedule event or an SQS batch of sweep jobs)")]
    UnknownEvent,
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("publishing sweep jobs: {0}")]
    Publish(String),
}

/// Missed deliveries' part jobs go to the parts topic, like the planner's.
struct SnsDispatch<'a>(&'a Deps);

impl Dispatch for SnsDispatch<'_> {
    fn dispatch<'a>(
        &'a self,
        _source: &'a Source,
        _plan: &'a Plan,
        period: &'a str,
        jobs: Vec<PartJob>,
    ) -> DispatchFuture<'a> {
        Box::pin(async move {
            publish_jobs(&self.0.sns, &self.0.config.parts_topic_arn, &jobs, period).await
        })
    }
}

pub async fn handle(deps: &Deps, event: Value) -> Result<Value, HandlerError> {
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        return Ok(sweep_records(deps, records).await);
    }
    if event.get("source").and_then(Value::as_str) == Some("aws.events") {
        return fan_out(deps).await;
    }
    Err(HandlerError::UnknownEvent)
}

/// One sweep job per connection on the sweep topic.
pub async fn fan_out(deps: &Deps) -> Result<Value, HandlerError> {
    let keys = deps.registry().keys(None).await?;
    let messages: Vec<Message> = keys
        .into_iter()
        .map(|(tenant, payer_account)| Message {
            body: serde_json::to_string(&SweepJob {
                version: 1,
                tenant: tenant.clone(),
                payer_account,
            })
            .expect("job serialises"),
            attributes: vec![("tenant", tenant)],
        })
        .collect();
    let n = publish_all(&deps.sns, &deps.config.sweep_topic_arn, &messages)
        .await
        .map_err(HandlerError::Publish)?;
    tracing::info!(connections = n, "sweep fanned out");
    Ok(json!({ "fanned_out": n }))
}

/// Sweep the connection of each record; a transient failure (or a message
/// that is no sweep job: the redrive policy moves it to the DLQ) is reported
/// for redelivery, a permanent one is logged.
async fn sweep_records(deps: &Deps, records: &[Value]) -> Value {
    let clients = deps.clients();
    let dispatch = SnsDispatch(deps);
    let notify = deps.notify();
    let ctx = SweepCtx {
        clients: &clients,
        own: deps.own_store(),
        own_prefix: deps.config.store_prefix.clone(),
        ledger: deps.ledger(),
        registry: deps.registry(),
        dispatch: &dispatch,
        notify: &notify,
        stale_after: chrono::Duration::hours(deps.config.stale_hours as i64),
        max_files: deps.config.max_files,
        min_interval: chrono::Duration::minutes(deps.config.min_interval_minutes as i64),
    };
    let ctx = &ctx;
    let results: Vec<(Option<String>, bool)> = stream::iter(records)
        .map(|r| async move {
            let id = r
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let job = r
                .get("body")
                .and_then(Value::as_str)
                .ok_or_else(|| "no body".to_owned())
                .and_then(unwrap_sns)
                .and_then(|b| serde_json::from_str::<SweepJob>(&b).map_err(|e| e.to_string()));
            let retry = match job {
                Err(why) => {
                    tracing::error!(%why, "not a sweep job");
                    true
                }
                Ok(j) => sweep_one(ctx, &j).await,
            };
            (id, retry)
        })
        .buffer_unordered(deps.config.concurrency)
        .collect()
        .await;
    let mut failures = Failures::default();
    for (id, retry) in results {
        if retry {
            failures.retry(id.as_deref());
        }
    }
    serde_json::to_value(failures.response()).expect("response serialises")
}

/// Whether the job should be redelivered.
async fn sweep_one(ctx: &SweepCtx<'_>, j: &SweepJob) -> bool {
    match sweep_connection(ctx, &j.tenant, &j.payer_account, chrono::Utc::now()).await {
        Ok(o) => {
            tracing::info!(tenant = %j.tenant, payer = %j.payer_account, status = %o.status, observed = ?o.observed, planned = o.planned.len(), "swept");
            false
        }
        Err(SweepError::Registry(RegistryError::Missing { .. })) => {
            tracing::info!(tenant = %j.tenant, payer = %j.payer_account, "connection gone since the fan-out");
            false
        }
        Err(e) if e.class() == Class::Transient => {
            tracing::warn!(tenant = %j.tenant, payer = %j.payer_account, error = %e, "transient; redelivered");
            true
        }
        Err(e) => {
            tracing::error!(tenant = %j.tenant, payer = %j.payer_account, error = %e, "sweep failed");
            false
        }
    }
}
