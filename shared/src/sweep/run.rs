//! One sweep of one connection: reach the bucket the way the connection
//! says, re-verify it (bounded), refresh the linked accounts, plan the recent
//! manifests no event planned, then record the observation through the state
//! machine and publish what changed. The Lambda and `curlew sweep` both call
//! [`sweep_connection`]; only [`Dispatch`] (where part jobs go) differs.

use super::definition::{define, Definition, Destination, ReportApis, ReportKind};
use super::orgs::{self, AccountChange};
use super::reconcile::{
    newest_committed, reconcile_current, ReconcileError, Reconciled, DEFAULT_QUIET_DAYS,
};
use super::state::{observe, swept, Observation};
use super::{diagnose, remedy, HealthCause, Stage};
use crate::access::recent::{self as recheck, ManifestSeen};
use crate::access::{source_credentials, AccessClients, CallError, SessionError, SessionPurpose};
use crate::discover::Source;
use crate::failure::Class;
use crate::ledger::Ledger;
use crate::pipeline::{
    parked, plan_manifest, run_job, unpark, AccountsChanged, AnnounceError, Announced, Notice,
    Notify, PartJob, Plan,
};
use crate::read::ReadOptions;
use crate::registry::{Connection, ConnectionStatus, Registry, RegistryError};
use crate::store::{S3Store, Store};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;

/// Newest manifest older than this: report-stale (exports refresh up to
/// three times a day; a legacy CUR at least daily).
pub const DEFAULT_STALE_HOURS: i64 = 48;

pub type DispatchFuture<'a> = Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>>;

/// Where a planned delivery's part jobs go: SNS in Lambda, run here locally.
pub trait Dispatch: Send + Sync {
    fn dispatch<'a>(
        &'a self,
        source: &'a Source,
        plan: &'a Plan,
        period: &'a str,
        jobs: Vec<PartJob>,
    ) -> DispatchFuture<'a>;
}

/// Runs every job here, one after another (the last one commits), like
/// `curlew ingest`.
pub struct LocalDispatch<'a> {
    pub ledger: Ledger,
    pub notify: &'a dyn Notify,
}

impl Dispatch for LocalDispatch<'_> {
    fn dispatch<'a>(
        &'a self,
        source: &'a Source,
        plan: &'a Plan,
        _period: &'a str,
        jobs: Vec<PartJob>,
    ) -> DispatchFuture<'a> {
        Box::pin(async move {
            for j in &jobs {
                run_job(
                    source,
                    &self.ledger,
                    self.notify,
                    plan,
                    j.index,
                    &ReadOptions::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            Ok(jobs.len())
        })
    }
}

/// What the sweep needs: curlew's clients and store, the connection's
/// registry and ledger, where jobs and notices go.
pub struct SweepCtx<'a> {
    pub clients: &'a AccessClients,
    pub own: Store,
    pub own_prefix: String,
    pub ledger: Ledger,
    pub registry: Registry,
    pub dispatch: &'a dyn Dispatch,
    pub notify: &'a dyn Notify,
    pub stale_after: chrono::Duration,
    pub max_files: usize,
    /// A connection checked less than this ago is not swept again (a
    /// redelivered job must not count one failure twice). Zero: always.
    pub min_interval: chrono::Duration,
}

/// What one sweep of a connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOutcome {
    pub status: ConnectionStatus,
    pub cause: Option<HealthCause>,
    /// What this sweep observed (before the two-in-a-row rule).
    pub observed: Option<HealthCause>,
    /// A `connection-changed` notice was published.
    pub changed: bool,
    pub account_changes: Vec<AccountChange>,
    /// Revisions planned from manifests no event planned.
    pub planned: Vec<String>,
    /// Pending or disconnected: not swept.
    pub skipped: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("planning {key}: {source}")]
    Plan { key: String, source: AnnounceError },
    #[error("dispatching the part jobs of {key}: {message}")]
    Dispatch { key: String, message: String },
    #[error("publishing a notice: {0}")]
    Notify(String),
    /// curlew's own store refused what this sweep needs of it (the tenant's
    /// External ID, stored keys under the secrets KMS key): a problem of the
    /// deployment or of the caller's credentials, never of the connection.
    #[error("{0}. What to do: run the sweep with credentials that may read curlew's store (the sweep function's role: stored keys are decrypted only by the functions' roles)")]
    OwnStore(String),
}

impl SweepError {
    pub fn class(&self) -> Class {
        match self {
            SweepError::Registry(e) => e.class(),
            SweepError::Plan { source, .. } => source.class(),
            SweepError::Dispatch { .. } | SweepError::Notify(_) => Class::Transient,
            SweepError::OwnStore(_) => Class::Permanent,
        }
    }
}

/// A finding of this sweep.
struct Finding {
    cause: HealthCause,
    remedy: String,
}

impl Finding {
    fn of(stage: Stage, e: &CallError) -> Finding {
        let cause = diagnose(stage, e);
        Finding {
            cause,
            remedy: remedy(cause, Some(e)),
        }
    }
    fn plain(cause: HealthCause) -> Finding {
        Finding {
            cause,
            remedy: remedy(cause, None),
        }
    }
}

/// What reaching and reading the bucket found.
struct Reached {
    s3: aws_sdk_s3::Client,
    manifests: Vec<ManifestSeen>,
}

/// Sweep the connection `tenant`/`payer` once.
pub async fn sweep_connection(
    ctx: &SweepCtx<'_>,
    tenant: &str,
    payer: &str,
    now: DateTime<Utc>,
) -> Result<SweepOutcome, SweepError> {
    let (conn, _) = ctx.registry.get(tenant, payer).await?;
    let mut out = SweepOutcome {
        status: conn.status,
        cause: conn.cause,
        observed: None,
        changed: false,
        account_changes: Vec::new(),
        planned: Vec::new(),
        skipped: !swept(&conn),
    };
    if out.skipped {
        return Ok(out);
    }
    // What an earlier sweep decided but could not publish goes first.
    publish_pending(ctx, &conn.pending_notices, tenant, payer).await?;
    if conn
        .last_checked_at
        .is_some_and(|t| now - t < ctx.min_interval)
    {
        tracing::info!(tenant, payer, "checked moments ago; not swept again");
        out.skipped = true;
        return Ok(out);
    }
    let mut findings = Vec::new();
    let creds = match source_credentials(
        ctx.clients,
        &conn,
        &ctx.own,
        &ctx.own_prefix,
        SessionPurpose::Sweep,
    )
    .await
    {
        Ok(c) => Some(c),
        // Not the connection's problem: nothing is recorded against it.
        Err(e) if e.is_own_store_refusal() => return Err(SweepError::OwnStore(e.to_string())),
        Err(e) => {
            findings.push(session_finding(&e));
            None
        }
    };
    let mut reached = None;
    if let Some(creds) = &creds {
        match reach(ctx, &conn, creds.as_ref(), now).await {
            Ok((r, stale)) => {
                reached = Some(r);
                findings.extend(stale);
            }
            Err(f) => findings.push(f),
        }
    }
    // Organizations: only with the customer's own credentials (in
    // bucket-policy mode curlew's would list curlew's organization).
    let mut org_listing = None;
    if let (Some(Some(c)), Some(base)) = (&creds, &ctx.clients.org) {
        let client = orgs::org_client(base, c, orgs::partition_of(conn.role_arn.as_deref()));
        match orgs::list_accounts(&client, None).await {
            Ok(l) => {
                if let orgs::Listing::Accounts(a) = &l {
                    if a.iter()
                        .any(|x| x.id == conn.payer_account && x.is_inactive())
                    {
                        findings.push(Finding::plain(HealthCause::AccountNotActive));
                    }
                }
                org_listing = Some(l);
            }
            Err(e) => findings.push(Finding::of(Stage::Organizations, &e)),
        }
    }
    // The billing APIs' word on the named report (optional permissions):
    // deleted, delivering elsewhere, or unhealthy. Its finding goes first:
    // it says more than "no manifest" does.
    if let (Some(Some(c)), Some(name)) = (&creds, &conn.report) {
        let apis = ReportApis::for_customer(
            ctx.clients.cur.as_ref(),
            ctx.clients.exports.as_ref(),
            c,
            orgs::partition_of(conn.role_arn.as_deref()),
        );
        let kind = reached
            .as_ref()
            .and_then(|r| r.manifests.last())
            .map(|m| ReportKind::of_manifest(&m.key));
        match define(&apis, name, kind).await {
            Ok(d) => {
                let said = definition_findings(&d, name, &conn);
                findings.splice(0..0, said);
            }
            // Optional, and only ever adds a finding: an error says nothing.
            Err(e) => tracing::warn!(error = %e, "report definition not read"),
        }
    }
    let newest = reached
        .as_ref()
        .and_then(|r| r.manifests.last().map(|m| m.last_modified));
    if let Some(r) = &reached {
        out.planned = plan_missed(ctx, &conn, r).await?;
    }

    let mut changed = false;
    let mut account_changes = Vec::new();
    let stored = ctx
        .registry
        .update(tenant, payer, |c| {
            if let Some(l) = &org_listing {
                account_changes = orgs::apply(c, l.clone(), now).0;
            }
            if newest.is_some() {
                c.last_delivery_at = newest;
            }
            let notice = observe(c, &observation(&findings), now);
            changed = notice.is_some();
            c.pending_notices
                .extend(notice.map(Notice::ConnectionChanged));
            if !account_changes.is_empty() {
                c.pending_notices
                    .push(Notice::AccountsChanged(AccountsChanged {
                        tenant: c.tenant.clone(),
                        payer_account: c.payer_account.clone(),
                        changes: account_changes.clone(),
                        at: now,
                    }));
            }
        })
        .await?;
    let stored = match reconcile_newest(ctx, &stored, !account_changes.is_empty()).await {
        Ok(Some(updated)) => updated,
        Ok(None) => stored,
        // Advisory: a revision that cannot be read now is read next sweep.
        Err(e) => {
            tracing::warn!(tenant, payer, error = %e, "accounts not reconciled");
            stored
        }
    };
    out.observed = worst(&findings).map(|f| f.cause);
    out.status = stored.status;
    out.cause = stored.cause;
    out.account_changes = account_changes;
    out.changed = changed;
    if changed {
        tracing::info!(tenant, payer, status = %stored.status, cause = ?stored.cause, "connection changed");
    }
    publish_pending(ctx, &stored.pending_notices, tenant, payer).await?;
    Ok(out)
}

/// Reconcile the connection's newest committed revision when it, or the
/// linked accounts, changed since the last reconciliation; an
/// `accounts-reconciled` notice (pending, like every sweep notice) when the
/// accounts listed changed. The connection as written, when it was.
async fn reconcile_newest(
    ctx: &SweepCtx<'_>,
    conn: &Connection,
    accounts_changed: bool,
) -> Result<Option<Connection>, ReconcileError> {
    let Some(newest) = newest_committed(&ctx.ledger, conn).await? else {
        return Ok(None);
    };
    let seen = conn.reconciled.as_ref().is_some_and(|r| {
        (r.billing_period.as_str(), r.revision.as_str())
            == (newest.0.as_str(), newest.2.revision.as_str())
    });
    if seen && !accounts_changed {
        return Ok(None);
    }
    let revision = newest.2.revision.clone();
    let r = reconcile_current(&ctx.ledger, conn, newest, DEFAULT_QUIET_DAYS).await?;
    let written = ctx
        .registry
        .update(&conn.tenant, &conn.payer_account, |c| {
            if Reconciled::notify_after(c.reconciled.as_ref(), &r) {
                c.pending_notices
                    .push(Notice::AccountsReconciled(Box::new(r.clone())));
            }
            c.reconciled = Some(Reconciled::of(&r, &revision));
        })
        .await?;
    Ok(Some(written))
}

/// Publish `pending` and drop them from the connection. A failure leaves
/// them stored: the next sweep (or the redelivered job) publishes them.
async fn publish_pending(
    ctx: &SweepCtx<'_>,
    pending: &[Notice],
    tenant: &str,
    payer: &str,
) -> Result<(), SweepError> {
    if pending.is_empty() {
        return Ok(());
    }
    for n in pending {
        ctx.notify.publish(n).await.map_err(SweepError::Notify)?;
    }
    ctx.registry
        .update(tenant, payer, |c| {
            c.pending_notices.retain(|n| !pending.contains(n))
        })
        .await?;
    Ok(())
}

/// The most serious finding: what breaks before what degrades before what
/// is transient.
fn worst(findings: &[Finding]) -> Option<&Finding> {
    let rank = |f: &Finding| match f.cause.status() {
        Some(ConnectionStatus::Broken) => 0,
        Some(_) => 1,
        None => 2,
    };
    findings.iter().min_by_key(|f| rank(f))
}

fn observation(findings: &[Finding]) -> Observation {
    match worst(findings) {
        None => Observation::Healthy,
        Some(f) => Observation::Failed {
            cause: f.cause,
            remedy: f.remedy.clone(),
        },
    }
}

/// A connection whose credentials cannot be had.
fn session_finding(e: &SessionError) -> Finding {
    match e {
        SessionError::Assume { source, .. } => Finding::of(Stage::Assume, source),
        e if e.class() == Class::Transient => Finding::plain(HealthCause::Transient),
        // No role ARN, no External ID, no stored keys: the connection itself.
        e => Finding {
            cause: HealthCause::Other,
            remedy: e.to_string(),
        },
    }
}

/// What the billing APIs' answer finds wrong with the connection's report.
fn definition_findings(d: &Definition, name: &str, conn: &Connection) -> Vec<Finding> {
    let elsewhere = |to: &Destination| {
        Finding {
        cause: HealthCause::ExportMissing,
        remedy: format!(
            "{name} delivers to s3://{}/{}, not to the connection's s3://{}/{}. What to do: point the report at the connection's bucket and prefix, or reconnect with its own",
            to.bucket, to.prefix, conn.bucket, conn.prefix
        ),
    }
    };
    match d {
        Definition::Unknown => vec![],
        Definition::Missing { asked } => vec![Finding {
            cause: HealthCause::ExportMissing,
            remedy: format!(
                "the payer account has no report or export named {name} ({} list none): it was deleted or renamed. What to do: recreate it in Billing (Data Exports) delivering to s3://{}/{}, or reconnect with the new name",
                asked.join(" and "),
                conn.bucket,
                conn.prefix
            ),
        }],
        Definition::Report { destination } => (!destination.is(&conn.bucket, &conn.prefix))
            .then(|| elsewhere(destination))
            .into_iter()
            .collect(),
        Definition::Export {
            destination,
            unhealthy,
        } => {
            let mut out: Vec<Finding> = destination
                .as_ref()
                .filter(|to| !to.is(&conn.bucket, &conn.prefix))
                .map(elsewhere)
                .into_iter()
                .collect();
            out.extend(unhealthy.as_ref().map(|reason| Finding {
                cause: HealthCause::ExportUnhealthy,
                remedy: format!(
                    "{} (Data Exports says {reason})",
                    remedy(HealthCause::ExportUnhealthy, None)
                ),
            }));
            out
        }
    }
}

/// Locate the bucket, list the recent manifests, read the newest: the
/// bounded re-verification. A stale or missing report is a finding beside a
/// reachable bucket (its manifests, and parked ones, are still planned).
async fn reach(
    ctx: &SweepCtx<'_>,
    conn: &Connection,
    creds: Option<&aws_sdk_s3::config::Credentials>,
    now: DateTime<Utc>,
) -> Result<(Reached, Option<Finding>), Finding> {
    let s3 = ctx.clients.s3_with(creds, None);
    let region = recheck::locate(&s3, &conn.bucket)
        .await
        .map_err(|e| Finding::of(Stage::Bucket, &e))?;
    let s3 = ctx.clients.s3_with(creds, Some(&region));
    let manifests =
        recheck::recent_manifests(&s3, &conn.bucket, &conn.prefix, conn.report.as_deref(), now)
            .await
            .map_err(|e| Finding::of(Stage::Bucket, &e))?;
    let Some(newest) = manifests.last() else {
        // The bucket answers: parked announcements can still be planned.
        let missing = Finding::plain(HealthCause::ExportMissing);
        return Ok((Reached { s3, manifests }, Some(missing)));
    };
    recheck::read(&s3, &conn.bucket, &newest.key)
        .await
        .map_err(|e| Finding::of(Stage::Bucket, &e))?;
    let stale = (now - newest.last_modified > ctx.stale_after)
        .then(|| Finding::plain(HealthCause::ReportStale));
    Ok((Reached { s3, manifests }, stale))
}

/// What planning one manifest came to, for the sweep.
enum Planned {
    /// Planned and dispatched: this revision.
    Revision(String),
    /// Decided (not newer, another report, ...): nothing to do.
    Decided,
    /// Held (AWS rewriting the report), or refused: left for later.
    Later,
}

/// Plan every recent manifest through the pipeline (it skips what is not
/// newer than CURRENT) and dispatch the jobs of those it plans; then the
/// connection's parked announcements (planning refused access, or AWS was
/// rewriting the report), unparked once decided.
async fn plan_missed(
    ctx: &SweepCtx<'_>,
    conn: &Connection,
    r: &Reached,
) -> Result<Vec<String>, SweepError> {
    let source = Source {
        store: Store::S3(S3Store::new(r.s3.clone(), conn.bucket.clone())),
        prefix: conn.prefix.clone(),
    };
    let mut planned = Vec::new();
    for m in &r.manifests {
        if let Planned::Revision(rev) = plan_one(ctx, conn, &source, &m.key).await? {
            planned.push(rev);
        }
    }
    let parked = parked(&ctx.ledger, &conn.tenant)
        .await
        .map_err(|e| SweepError::Plan {
            key: "_parked/".into(),
            source: e.into(),
        })?;
    for p in parked
        .iter()
        .filter(|p| p.payer_account == conn.payer_account && p.bucket == conn.bucket)
    {
        match plan_one(ctx, conn, &source, &p.key).await? {
            Planned::Later => continue,
            Planned::Revision(rev) => planned.push(rev),
            Planned::Decided => {}
        }
        unpark(&ctx.ledger, p).await.map_err(|e| SweepError::Plan {
            key: p.key.clone(),
            source: e.into(),
        })?;
    }
    Ok(planned)
}

async fn plan_one(
    ctx: &SweepCtx<'_>,
    conn: &Connection,
    source: &Source,
    key: &str,
) -> Result<Planned, SweepError> {
    // Re-read: the first plan may have bound the connection's report.
    let (conn, _) = ctx.registry.get(&conn.tenant, &conn.payer_account).await?;
    let decided = plan_manifest(
        &ctx.ledger,
        &ctx.registry,
        source,
        &conn,
        &conn.bucket,
        key,
        ctx.max_files,
    )
    .await;
    match decided {
        Ok(Announced::Planned { plan, period, jobs }) => {
            tracing::info!(source = %plan.source, %period, revision = %plan.revision(), %key, "a manifest no event planned: planned by the sweep");
            ctx.dispatch
                .dispatch(source, &plan, &period, jobs)
                .await
                .map_err(|message| SweepError::Dispatch {
                    key: key.to_owned(),
                    message,
                })?;
            Ok(Planned::Revision(plan.revision()))
        }
        Ok(Announced::Skipped { held: true, .. }) => Ok(Planned::Later),
        Ok(Announced::Skipped { .. }) => Ok(Planned::Decided),
        Err(e) if e.class() == Class::Transient => Err(SweepError::Plan {
            key: key.to_owned(),
            source: e,
        }),
        // A bad or refused manifest is the planner's to record when it is
        // announced; the sweep does not fail the others for it.
        Err(e) => {
            tracing::warn!(%key, error = %e, "not planned by the sweep");
            Ok(Planned::Later)
        }
    }
}
