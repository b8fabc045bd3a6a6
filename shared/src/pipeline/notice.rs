//! What the pipeline tells the platform, exactly once each: `revision-committed`
//! (through an outbox written before CURRENT moves), `delivery-failed`
//! (through a failure record written before it is announced) and the sweep's
//! `connection-changed` (a connection's status or cause changed). Publishing is
//! behind [`Notify`]: SNS in Lambda, nothing (or the terminal) locally.

use super::{OffPeriod, PipelineError, Plan};
use crate::failure::Class;
use crate::health::HealthNotice;
use crate::ledger::{Ledger, SourceId};
use crate::output::Summary;
use crate::registry::ConnectionStatus;
use crate::rollup::Sums;
use crate::store::StoreError;
use crate::sweep::orgs::AccountChange;
use crate::sweep::reconcile::Reconciliation;
use crate::sweep::HealthCause;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// A period of a source moved to a new revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedNotice {
    pub tenant: String,
    pub payer_account: String,
    pub report: String,
    pub billing_period: String,
    pub revision: String,
    /// The revision it replaced (from CURRENT at publish time).
    pub previous: Option<String>,
    pub rows: u64,
    pub totals: Sums,
    pub unattributed: Sums,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub off_period: BTreeMap<String, OffPeriod>,
    /// `estimated` or `final` (see [`crate::output::Finality`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finality: Option<crate::output::Finality>,
    /// Set when this revision restates a final month: the revision it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restates: Option<String>,
    /// When this revision replaces another: BilledCost's total delta and the
    /// largest changes by account and service (`curlew diff` shows them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::diff::NoticeChanges>,
}

impl CommittedNotice {
    pub fn new(plan: &Plan, s: &Summary) -> CommittedNotice {
        CommittedNotice {
            tenant: plan.source.tenant.clone(),
            payer_account: plan.source.payer.clone(),
            report: plan.source.report.clone(),
            billing_period: s.billing_period.clone(),
            revision: s.revision.clone(),
            previous: None,
            rows: s.rows_read,
            totals: s.totals.clone(),
            unattributed: s.unattributed.total.clone(),
            off_period: s.off_period.clone(),
            finality: s.finality,
            restates: None,
            changes: None,
        }
    }
}

/// A delivery failed for good: recorded in the store, announced once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub tenant: String,
    pub payer_account: String,
    pub report: String,
    pub billing_period: String,
    pub revision: String,
    pub manifest: Option<String>,
    /// The data file, when the failure is about one.
    pub file: Option<String>,
    pub class: Class,
    /// What went wrong, where (file, line and column or row group) and what to do.
    pub error: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub notified: bool,
}

/// A connection's status or cause changed (the sweep confirmed a failure
/// twice in a row, or the connection recovered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionChanged {
    pub tenant: String,
    pub payer_account: String,
    pub status: ConnectionStatus,
    /// The health cause (`assume-denied`, ...); `None` once connected.
    pub cause: Option<HealthCause>,
    pub previous_status: ConnectionStatus,
    pub previous_cause: Option<HealthCause>,
    pub remedy: Option<String>,
    pub at: DateTime<Utc>,
}

/// The sweep found linked accounts joined, changed state or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsChanged {
    pub tenant: String,
    pub payer_account: String,
    pub changes: Vec<AccountChange>,
    pub at: DateTime<Utc>,
}

/// Everything published on the results topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Notice {
    RevisionCommitted(Box<CommittedNotice>),
    DeliveryFailed(FailureRecord),
    ConnectionChanged(ConnectionChanged),
    AccountsChanged(AccountsChanged),
    /// The accounts the sweep's reconciliation lists changed.
    AccountsReconciled(Box<Reconciliation>),
    /// An AWS Health event concerning one connection (`crate::health`).
    Health(Box<HealthNotice>),
}

impl Notice {
    pub fn event(&self) -> &'static str {
        match self {
            Notice::RevisionCommitted(_) => "revision-committed",
            Notice::DeliveryFailed(_) => "delivery-failed",
            Notice::ConnectionChanged(_) => "connection-changed",
            Notice::AccountsChanged(_) => "accounts-changed",
            Notice::AccountsReconciled(_) => "accounts-reconciled",
            Notice::Health(_) => "health",
        }
    }
    pub fn tenant(&self) -> &str {
        match self {
            Notice::RevisionCommitted(n) => &n.tenant,
            Notice::DeliveryFailed(n) => &n.tenant,
            Notice::ConnectionChanged(n) => &n.tenant,
            Notice::AccountsChanged(n) => &n.tenant,
            Notice::AccountsReconciled(n) => &n.tenant,
            Notice::Health(n) => &n.tenant,
        }
    }

    /// The message attributes subscribers filter on (SNS refuses empty
    /// values, so an attribute without a value is left out): `event` and
    /// `tenant` always; `billing_period` for deliveries; `payer_account`,
    /// `status` and `cause` for a connection change; for a health event
    /// `payer_account`, `account_id`, `service`, `event_type_category`,
    /// `status_code`, `event_scope_code` and `region` (the affected region).
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut a = vec![
            ("event", self.event().to_owned()),
            ("tenant", self.tenant().to_owned()),
        ];
        match self {
            Notice::RevisionCommitted(n) => a.push(("billing_period", n.billing_period.clone())),
            Notice::DeliveryFailed(n) => a.push(("billing_period", n.billing_period.clone())),
            Notice::ConnectionChanged(n) => {
                a.push(("payer_account", n.payer_account.clone()));
                a.push(("status", n.status.as_str().to_owned()));
                if let Some(c) = n.cause {
                    a.push(("cause", c.as_str().to_owned()));
                }
            }
            Notice::AccountsChanged(n) => a.push(("payer_account", n.payer_account.clone())),
            Notice::AccountsReconciled(n) => {
                a.push(("payer_account", n.payer_account.clone()));
                a.push(("billing_period", n.billing_period.clone()));
            }
            Notice::Health(n) => {
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                a.push(("payer_account", n.payer_account.clone()));
                a.push(("account_id", opt(&n.account_id)));
                a.push(("service", opt(&n.service)));
                a.push(("event_type_category", opt(&n.event_type_category)));
                a.push(("status_code", opt(&n.status_code)));
                a.push(("event_scope_code", opt(&n.event_scope_code)));
                a.push(("region", opt(&n.region)));
            }
        }
        a.retain(|(_, v)| !v.is_empty());
        a
    }
}

pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where notices go (SNS in Lambda). An error leaves the notice pending: it is
/// published again on the next attempt.
pub trait Notify: Send + Sync {
    fn publish<'a>(&'a self, notice: &'a Notice) -> NotifyFuture<'a>;
}

/// Publishes nothing (local runs: the terminal shows what happened).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Notify for Silent {
    fn publish<'a>(&'a self, _: &'a Notice) -> NotifyFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxRecord {
    notice: CommittedNotice,
    pub(crate) sent: bool,
    /// A worker publishing holds the record until then (claimed by a
    /// conditional write), so two workers finishing together publish once.
    #[serde(default)]
    lease_until: Option<DateTime<Utc>>,
}

/// How long a claim on an outbox record lasts; far below the parts queue's
/// visibility timeout, so a worker that dies while publishing leaves it to
/// the redelivered job.
const OUTBOX_LEASE: chrono::Duration = chrono::Duration::seconds(120);

pub(super) async fn outbox_put(
    ledger: &Ledger,
    plan: &Plan,
    period: &str,
    notice: &CommittedNotice,
) -> Result<(), PipelineError> {
    let key = ledger.layout.outbox(&plan.source, period, &plan.revision());
    let rec = OutboxRecord {
        notice: notice.clone(),
        sent: false,
        lease_until: None,
    };
    match ledger
        .store
        .put_if_absent(&key, serde_json::to_vec(&rec).expect("outbox serialises"))
        .await
    {
        Ok(_) | Err(StoreError::PreconditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Publish the commit notice of every period where CURRENT names this plan's
/// revision and the notice is not marked sent (so a redelivered job publishes
/// what a failed publish left, and nothing twice once it is marked).
/// Returns the notices published now.
pub async fn deliver_notices(
    ledger: &Ledger,
    notify: &dyn Notify,
    plan: &Plan,
    periods: &[String],
) -> Result<Vec<CommittedNotice>, PipelineError> {
    let rev = plan.revision();
    let mut sent = Vec::new();
    for period in periods {
        let Some((cur, _)) = ledger.current(&plan.source, period).await? else {
            continue;
        };
        if cur.revision != rev {
            continue;
        }
        let key = ledger.layout.outbox(&plan.source, period, &rev);
        let (meta, bytes) = match ledger.store.get_bytes(&key).await {
            Ok(x) => x,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut rec: OutboxRecord =
            serde_json::from_slice(&bytes).map_err(|e| PipelineError::BadStaging {
                key: key.clone(),
                problem: e.to_string(),
            })?;
        let now = Utc::now();
        if rec.sent || rec.lease_until.is_some_and(|t| t > now) {
            // Sent, or another worker is publishing it now (if it fails, its
            // own job is retried and publishes).
            continue;
        }
        // Claim it: of two workers only one conditional write wins.
        rec.lease_until = Some(now + OUTBOX_LEASE);
        let claimed = match ledger
            .store
            .put_if_match(
                &key,
                serde_json::to_vec(&rec).expect("outbox serialises"),
                &meta.etag,
            )
            .await
        {
            Ok(etag) => etag,
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        rec.notice.previous = cur.previous.clone();
        if let Err(e) = notify
            .publish(&Notice::RevisionCommitted(Box::new(rec.notice.clone())))
            .await
        {
            // Give the claim back so the retry need not wait for the lease.
            rec.lease_until = None;
            let _ = ledger
                .store
                .put_if_match(
                    &key,
                    serde_json::to_vec(&rec).expect("outbox serialises"),
                    &claimed,
                )
                .await;
            return Err(PipelineError::Store(StoreError::Service {
                key: format!("notice for {key}"),
                message: format!("publishing the commit notice: {e}. What to do: nothing; the job is retried and publishes it from the outbox"),
                retryable: true,
            }));
        }
        rec.sent = true;
        rec.lease_until = None;
        ledger
            .store
            .put_if_match(
                &key,
                serde_json::to_vec(&rec).expect("outbox serialises"),
                &claimed,
            )
            .await?;
        sent.push(rec.notice);
    }
    Ok(sent)
}

/// Whether the outbox record at `key` is sent (absent counts as sent: nothing to do).
pub(crate) fn outbox_sent(bytes: &[u8]) -> bool {
    serde_json::from_slice::<OutboxRecord>(bytes).is_ok_and(|r| r.sent)
}

/// Record a permanent failure of (source, period, revision) once and announce
/// it once; a repeat finds the record and, once it is notified, does nothing.
pub async fn record_failure(
    ledger: &Ledger,
    notify: &dyn Notify,
    source: &SourceId,
    plan: Option<&Plan>,
    period: &str,
    revision: &str,
    err: &PipelineError,
) -> Result<FailureRecord, PipelineError> {
    let key = ledger.layout.failure(source, period, revision);
    let fresh = FailureRecord {
        tenant: source.tenant.clone(),
        payer_account: source.payer.clone(),
        report: source.report.clone(),
        billing_period: period.into(),
        revision: revision.into(),
        manifest: plan.and_then(|p| p.delivery.manifest.as_ref().map(|m| m.0.clone())),
        file: err.file().map(str::to_owned),
        class: err.class(),
        error: err.to_string(),
        at: Utc::now(),
        notified: false,
    };
    let (mut rec, etag) = match ledger
        .store
        .put_if_absent(
            &key,
            serde_json::to_vec_pretty(&fresh).expect("record serialises"),
        )
        .await
    {
        Ok(etag) => (fresh, etag),
        Err(StoreError::PreconditionFailed { .. }) => {
            let (meta, bytes) = ledger.store.get_bytes(&key).await?;
            let rec: FailureRecord =
                serde_json::from_slice(&bytes).map_err(|e| PipelineError::BadStaging {
                    key: key.clone(),
                    problem: e.to_string(),
                })?;
            (rec, meta.etag)
        }
        Err(e) => return Err(e.into()),
    };
    if !rec.notified {
        notify
            .publish(&Notice::DeliveryFailed(rec.clone()))
            .await
            .map_err(|e| {
                PipelineError::Store(StoreError::Service {
                    key: format!("notice for {key}"),
                    message: format!("publishing delivery-failed: {e}"),
                    retryable: true,
                })
            })?;
        rec.notified = true;
        let body = serde_json::to_vec_pretty(&rec).expect("record serialises");
        match ledger.store.put_if_match(&key, body, &etag).await {
            Ok(_) | Err(StoreError::PreconditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rec)
}

/// The failure records of a tenant (newest last).
pub async fn failures(ledger: &Ledger, tenant: &str) -> Result<Vec<FailureRecord>, PipelineError> {
    let mut out = Vec::new();
    for m in ledger
        .store
        .list(&ledger.layout.failures_dir(tenant))
        .await?
    {
        let (_, bytes) = ledger.store.get_bytes(&m.key).await?;
        out.push(
            serde_json::from_slice::<FailureRecord>(&bytes).map_err(|e| {
                PipelineError::BadStaging {
                    key: m.key.clone(),
                    problem: e.to_string(),
                }
            })?,
        );
    }
    out.sort_by_key(|r| r.at);
    Ok(out)
}
