//! One event: route it, merge its pages, decide against the dedupe record,
//! publish one [`HealthNotice`] per connection concerned.
//!
//! At least once, never twice for one state: the record is claimed (a lease,
//! by conditional put) before publishing and marked published after; a
//! failed publish gives the claim back and fails the event, whose retry
//! publishes. Notices already accepted for other connections of the same
//! event may then be published again (SNS subscribers see at-least-once).

use super::dedupe::{fingerprint, rfc1123, sha256_hex, DedupeRecord, DedupeStore, LEASE};
use super::detail::Incoming;
use super::route::{self, RoutedBy};
use super::HealthError;
use crate::ledger::Ledger;
use crate::pipeline::{Notice, Notify};
use crate::registry::{Connection, Registry};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What processing needs: the registry, the ledger (spend routing), the
/// dedupe records (on the same store), where notices go, and how long a
/// record lives.
pub struct HealthCtx<'a> {
    pub registry: Registry,
    pub ledger: Ledger,
    pub dedupe: DedupeStore,
    pub notify: &'a dyn Notify,
    pub ttl: chrono::Duration,
}

impl<'a> HealthCtx<'a> {
    /// Everything on curlew's own store under `prefix`.
    pub fn on_store(store: crate::store::Store, prefix: &str, notify: &'a dyn Notify) -> Self {
        HealthCtx {
            registry: Registry::new(store.clone(), prefix),
            ledger: Ledger::new(store.clone(), prefix),
            dedupe: DedupeStore::new(store, prefix),
            notify,
            ttl: chrono::Duration::days(super::DEFAULT_TTL_DAYS),
        }
    }
}

/// An AWS Health event concerning one connection (`event` = `health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthNotice {
    pub tenant: String,
    pub payer_account: String,
    /// The affected account (none: a PUBLIC event routed by spend).
    pub account_id: Option<String>,
    pub event_arn: String,
    pub service: Option<String>,
    pub event_type_code: Option<String>,
    pub event_type_category: Option<String>,
    pub event_scope_code: Option<String>,
    pub status_code: Option<String>,
    /// The affected region (`detail.eventRegion`).
    pub region: Option<String>,
    /// `communicationId` without its page suffix.
    pub communication: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub last_updated_time: Option<String>,
    pub description: Option<String>,
    /// Affected entity values, every page merged.
    pub affected_entities: Vec<String>,
    /// `statusCode` closed: the event is over.
    pub resolved: bool,
    /// Delivered as "AWS Health Abuse Event".
    pub abuse: bool,
    pub routed_by: RoutedBy,
    pub at: DateTime<Utc>,
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// New, or changed (status, description, entities): notices published.
    Published,
    /// The same state was published before (or is being published now).
    Duplicate,
    /// A page of a paginated event; published once every page is in.
    AwaitingPages,
    /// No connection knows the account (or, PUBLIC without an account, none
    /// has spend on the service there): counted, logged, not published.
    UnknownAccount,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::Duplicate => "duplicate",
            Outcome::AwaitingPages => "awaiting-pages",
            Outcome::UnknownAccount => "unknown-account",
        }
    }
}

/// One event's result (what `curlew health replay` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    pub event_arn: String,
    pub account_id: Option<String>,
    pub outcome: Outcome,
    /// Tenants notified now (or concerned, for a duplicate).
    pub tenants: Vec<String>,
    /// Notices published now.
    #[serde(skip)]
    pub notices: usize,
}

const MAX_TRIES: u32 = 16;

/// Route, de-duplicate and publish one event.
pub async fn process(
    ctx: &HealthCtx<'_>,
    inc: &Incoming,
    now: DateTime<Utc>,
) -> Result<Processed, HealthError> {
    let d = &inc.detail;
    let event_arn = d
        .event_arn
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| HealthError::Malformed("detail.eventArn is missing".into()))?;
    let affected = d.affected_account.clone().filter(|a| !a.is_empty());
    let (account, routed_by) = match affected {
        Some(a) => (Some(a), RoutedBy::Account),
        None if d.is_public() => (None, RoutedBy::Spend),
        None => (
            inc.account.clone().filter(|a| !a.is_empty()),
            RoutedBy::Account,
        ),
    };
    let connections: Vec<Connection> = match (&account, routed_by) {
        (Some(a), _) => route::by_account(&ctx.registry, a).await?,
        (None, RoutedBy::Spend) => match d.service.as_deref() {
            Some(s) => {
                route::by_spend(&ctx.registry, &ctx.ledger, s, d.event_region.as_deref()).await?
            }
            None => Vec::new(),
        },
        (None, RoutedBy::Account) => {
            return Err(HealthError::Malformed(
                "neither detail.affectedAccount nor the envelope's account".into(),
            ))
        }
    };
    let mut tenants: Vec<String> = connections.iter().map(|c| c.tenant.clone()).collect();
    tenants.sort();
    tenants.dedup();
    let mut out = Processed {
        event_arn: event_arn.clone(),
        account_id: account.clone(),
        outcome: Outcome::UnknownAccount,
        tenants: tenants.clone(),
        notices: 0,
    };
    if connections.is_empty() {
        tracing::info!(
            event_arn = %event_arn,
            account = account.as_deref().unwrap_or("-"),
            routed_by = ?routed_by,
            outcome = "unknown-account",
            "health event concerns no connection; not published"
        );
        return Ok(out);
    }

    let communication = d.communication();
    let key = ctx.dedupe.key(&event_arn, account.as_deref().unwrap_or(""));
    let (page, total) = d.pages();
    let description_sha256 = sha256_hex(d.description().unwrap_or(""));
    let incoming: BTreeSet<String> = d.entity_values().map(str::to_owned).collect();

    for _ in 0..MAX_TRIES {
        let (prev, etag) = match ctx.dedupe.get(&key).await? {
            Some((r, t)) if r.expired(now) => (None, Some(t)),
            Some((r, t)) => (Some(r), Some(t)),
            None => (None, None),
        };
        // An update older than the state recorded (the open event replayed
        // after its closure) is not news.
        if let Some(p) = &prev {
            let (theirs, ours) = (
                rfc1123(p.last_updated_time.as_deref()),
                rfc1123(d.last_updated_time.as_deref()),
            );
            if let (Some(theirs), Some(ours)) = (theirs, ours) {
                if ours < theirs {
                    out.outcome = Outcome::Duplicate;
                    return Ok(out);
                }
            }
        }
        // Pages of one state merge their entities; a new state starts over.
        let same_state = prev.as_ref().is_some_and(|p| {
            p.status_code == d.status_code
                && p.description_sha256 == description_sha256
                && p.total_pages == total
        });
        let (entities, pages) = match &prev {
            Some(p) if same_state && total > 1 => {
                let mut e = p.entities.clone();
                e.extend(incoming.iter().cloned());
                let mut pg = p.pages.clone();
                pg.insert(page);
                (e, pg)
            }
            _ => (incoming.clone(), BTreeSet::from([page])),
        };
        let fp = fingerprint(d.status_code.as_deref(), &description_sha256, &entities);
        let mut rec = DedupeRecord {
            event_arn: event_arn.clone(),
            account_id: account.clone().unwrap_or_default(),
            communication: communication.clone(),
            status_code: d.status_code.clone(),
            description_sha256: description_sha256.clone(),
            entities,
            pages,
            total_pages: total,
            last_updated_time: d
                .last_updated_time
                .clone()
                .or_else(|| prev.as_ref().and_then(|p| p.last_updated_time.clone())),
            fingerprint: fp.clone(),
            published: prev.as_ref().and_then(|p| p.published.clone()),
            tenants: prev.as_ref().map(|p| p.tenants.clone()).unwrap_or_default(),
            lease_until: None,
            expires_at: now + ctx.ttl,
            updated_at: now,
        };
        if !rec.complete() {
            let unchanged = prev
                .as_ref()
                .is_some_and(|p| p.pages == rec.pages && p.fingerprint == rec.fingerprint);
            if !unchanged && ctx.dedupe.put(&key, &rec, etag.as_deref()).await?.is_none() {
                continue;
            }
            out.outcome = Outcome::AwaitingPages;
            tracing::info!(event_arn = %event_arn, page, total, "health event page kept until every page is in");
            return Ok(out);
        }
        if rec.published.as_deref() == Some(fp.as_str()) {
            out.outcome = Outcome::Duplicate;
            return Ok(out);
        }
        if let Some(p) = &prev {
            if p.fingerprint == fp && p.lease_until.is_some_and(|t| t > now) {
                // Another delivery of this state is publishing it now.
                out.outcome = Outcome::Duplicate;
                return Ok(out);
            }
        }
        rec.lease_until = Some(now + LEASE);
        let Some(claimed) = ctx.dedupe.put(&key, &rec, etag.as_deref()).await? else {
            continue;
        };
        let mut sent = 0;
        for c in &connections {
            let n = notice(inc, c, &rec, account.clone(), routed_by, now);
            if let Err(e) = ctx.notify.publish(&Notice::Health(Box::new(n))).await {
                // Give the claim back so the retry need not wait for the lease.
                rec.lease_until = None;
                let _ = ctx.dedupe.put(&key, &rec, Some(&claimed)).await;
                return Err(HealthError::Publish(e));
            }
            sent += 1;
        }
        rec.lease_until = None;
        rec.published = Some(fp);
        rec.tenants = tenants.clone();
        // Lost to a newer state: that state's writer publishes it.
        ctx.dedupe.put(&key, &rec, Some(&claimed)).await?;
        out.outcome = Outcome::Published;
        out.notices = sent;
        tracing::info!(event_arn = %event_arn, notices = sent, tenants = ?tenants, status = d.status_code.as_deref().unwrap_or("-"), "health event published");
        return Ok(out);
    }
    Err(HealthError::Contended {
        key,
        tries: MAX_TRIES,
    })
}

fn notice(
    inc: &Incoming,
    c: &Connection,
    rec: &DedupeRecord,
    account: Option<String>,
    routed_by: RoutedBy,
    now: DateTime<Utc>,
) -> HealthNotice {
    let d = &inc.detail;
    HealthNotice {
        tenant: c.tenant.clone(),
        payer_account: c.payer_account.clone(),
        account_id: account,
        event_arn: rec.event_arn.clone(),
        service: d.service.clone(),
        event_type_code: d.event_type_code.clone(),
        event_type_category: d.event_type_category.clone(),
        event_scope_code: d.event_scope_code.clone(),
        status_code: d.status_code.clone(),
        region: d.event_region.clone(),
        communication: rec.communication.clone(),
        start_time: d.start_time.clone(),
        end_time: d.end_time.clone(),
        last_updated_time: d.last_updated_time.clone(),
        description: d.description().map(str::to_owned),
        affected_entities: rec.entities.iter().cloned().collect(),
        resolved: d.is_closed(),
        abuse: inc.detail_type.as_deref() == Some("AWS Health Abuse Event"),
        routed_by,
        at: now,
    }
}
