//! The handler: one EventBridge event from curlew's bus, parsed as
//! `EventBridgeEvent<HealthDetail>`, processed by `curlew::health::process`;
//! or the daily schedule's event, which polls every connection's
//! organization (`curlew::health::poll::poll_connection`).
//! A transient failure (store, SNS) fails the invocation, so EventBridge
//! retries the event (then its DLQ); a malformed event is logged and
//! answered, never retried.

use crate::Deps;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use curlew::failure::Class;
use curlew::health::poll::{poll_connection, PollClients};
use curlew::health::{process, HealthDetail, HealthError, Incoming};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Health(#[from] HealthError),
}

/// The envelope and detail curlew uses, or why the event is not one.
pub fn parse(event: Value) -> Result<Incoming, String> {
    let ev: EventBridgeEvent<HealthDetail> =
        serde_json::from_value(event).map_err(|e| format!("not an EventBridge event: {e}"))?;
    if ev.source != "aws.health" {
        return Err(format!("source {:?} is not aws.health", ev.source));
    }
    Ok(Incoming {
        detail_type: Some(ev.detail_type),
        account: ev.account,
        region: ev.region,
        detail: ev.detail,
    })
}

/// The summary of one event: `{"event_arn", "account_id", "outcome",
/// "tenants", "notices"}`, or `{"outcome": "malformed", "error"}`.
pub async fn handle(deps: &Deps, event: Value) -> Result<Value, HandlerError> {
    if event.get("source").and_then(Value::as_str) == Some("aws.events") {
        return poll_all(deps).await;
    }
    let inc = match parse(event) {
        Ok(i) => i,
        Err(why) => {
            tracing::error!(%why, "not an AWS Health event; dropped");
            return Ok(json!({"outcome": "malformed", "error": why}));
        }
    };
    let notify = deps.notify();
    let ctx = deps.ctx(&notify);
    match process(&ctx, &inc, chrono::Utc::now()).await {
        Ok(p) => Ok(json!({
            "event_arn": p.event_arn,
            "account_id": p.account_id,
            "outcome": p.outcome.as_str(),
            "tenants": p.tenants,
            "notices": p.notices,
        })),
        Err(e) if e.class() == Class::Transient => {
            tracing::warn!(error = %e, "transient; EventBridge retries the event");
            Err(e.into())
        }
        Err(e) => {
            tracing::error!(error = %e, "health event dropped");
            Ok(json!({"outcome": "malformed", "error": e.to_string()}))
        }
    }
}

/// The schedule: poll every active connection's organization for the last
/// `poll_hours`; per connection its state (`polled`, `not-subscribed`,
/// `failed`, `skipped`) is recorded on it and returned. Only curlew's own
/// store failing fails the invocation.
pub async fn poll_all(deps: &Deps) -> Result<Value, HandlerError> {
    let notify = deps.notify();
    let ctx = deps.ctx(&notify);
    let access = deps.clients();
    let own = deps.own_store();
    let with = PollClients {
        access: &access,
        health: &deps.health,
        own: &own,
        own_prefix: &deps.config.store_prefix,
    };
    let until = chrono::Utc::now();
    let since = until - chrono::Duration::hours(deps.config.poll_hours as i64);
    let mut polled = Vec::new();
    for (tenant, payer) in ctx.registry.keys(None).await.map_err(HealthError::from)? {
        let conn = match ctx.registry.get(&tenant, &payer).await {
            Ok((c, _)) if c.is_active() => c,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "connection unreadable; not polled");
                continue;
            }
        };
        let s = poll_connection(&ctx, &with, &conn, since, until).await?;
        tracing::info!(tenant = %s.tenant, payer = %s.payer_account, state = s.state, events = s.events, published = s.published, "health poll");
        polled.push(json!({
            "tenant": s.tenant,
            "payer_account": s.payer_account,
            "state": s.state,
            "events": s.events,
            "published": s.published,
        }));
    }
    Ok(json!({ "polled": polled }))
}
