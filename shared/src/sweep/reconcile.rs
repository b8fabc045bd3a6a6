//! Account reconciliation per payer and period, from what CURRENT names (the
//! committed rollup and its summary), the connection and its Organizations
//! snapshot: accounts billed but not connected (with their spend), connected
//! but not billed for N days, billed but not ACTIVE (expected for the RI/SP
//! fees of a closed account: reported, not an error).

use crate::ledger::{Current, Ledger, SourceId};
use crate::registry::{Connection, Registry, RegistryError};
use crate::report::{load_committed, load_current, Committed, ReportError};
use crate::rollup::Sums;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Days without a row before a connected account counts as not billed.
pub const DEFAULT_QUIET_DAYS: i64 = 7;

/// An account and what it was billed in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSpend {
    pub account: String,
    /// Its Organizations `State`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub spend: Sums,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub tenant: String,
    pub payer_account: String,
    pub report: String,
    pub billing_period: String,
    pub billed_not_connected: Vec<AccountSpend>,
    /// Active connected accounts with no row in the last N days of the data.
    pub connected_not_billed: Vec<String>,
    pub billed_not_active: Vec<AccountSpend>,
}

impl Reconciliation {
    /// The accounts each list names, without their spend (which moves with
    /// every delivery): what a change is judged on.
    pub fn accounts(&self) -> [Vec<String>; 3] {
        let ids = |v: &[AccountSpend]| v.iter().map(|a| a.account.clone()).collect();
        [
            ids(&self.billed_not_connected),
            self.connected_not_billed.clone(),
            ids(&self.billed_not_active),
        ]
    }

    /// Nothing to report.
    pub fn is_clean(&self) -> bool {
        self.accounts().iter().all(Vec::is_empty)
    }
}

/// What the sweep's last reconciliation of a connection read and listed
/// (kept on the connection): it reconciles again only for another revision
/// or changed linked accounts, and notifies only when the lists change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    pub billing_period: String,
    pub revision: String,
    pub accounts: [Vec<String>; 3],
}

impl Reconciled {
    pub fn of(r: &Reconciliation, revision: &str) -> Reconciled {
        Reconciled {
            billing_period: r.billing_period.clone(),
            revision: revision.to_owned(),
            accounts: r.accounts(),
        }
    }

    /// Whether `r` is worth a notice after this one (`None`: the first
    /// reconciliation, worth one only when it lists something).
    pub fn notify_after(previous: Option<&Reconciled>, r: &Reconciliation) -> bool {
        match previous {
            Some(p) => p.accounts != r.accounts(),
            None => !r.is_clean(),
        }
    }
}

/// The connection's newest committed period: its source and what CURRENT
/// names (no rollup read). One listing of the tenant's sources.
pub async fn newest_committed(
    ledger: &Ledger,
    conn: &Connection,
) -> Result<Option<(String, SourceId, Current)>, ReconcileError> {
    let mut mine: Vec<(String, SourceId)> = ledger
        .sources(&conn.tenant, None)
        .await
        .map_err(ReportError::from)?
        .into_iter()
        .filter(|(_, s)| {
            s.payer == conn.payer_account && conn.report.as_ref().is_none_or(|r| *r == s.report)
        })
        .collect();
    mine.sort_by(|a, b| a.0.cmp(&b.0));
    while let Some((period, source)) = mine.pop() {
        if let Some((current, _)) = ledger
            .current(&source, &period)
            .await
            .map_err(ReportError::from)?
        {
            return Ok(Some((period, source, current)));
        }
    }
    Ok(None)
}

/// Reconcile what `current` names for `conn`.
pub async fn reconcile_current(
    ledger: &Ledger,
    conn: &Connection,
    (period, source, current): (String, SourceId, Current),
    quiet_days: i64,
) -> Result<Reconciliation, ReconcileError> {
    let committed = load_current(ledger, period, source, current).await?;
    Ok(reconcile(conn, &committed, quiet_days))
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Billed accounts: the rollup's `SubAccountId` (key 1) with the last day
/// seen, and the accounts the scope left unattributed.
fn billed(c: &Committed) -> BTreeMap<String, (Sums, Option<String>)> {
    let mut out: BTreeMap<String, (Sums, Option<String>)> = BTreeMap::new();
    for r in &c.rows {
        let Some(acct) = r.key.get(1).filter(|a| !a.is_empty()) else {
            continue;
        };
        let e = out.entry(acct.clone()).or_default();
        e.0.merge(&r.sums);
        if e.1.as_deref() < Some(r.day.as_str()) {
            e.1 = Some(r.day.clone());
        }
    }
    for (acct, s) in &c.summary.unattributed.accounts {
        out.entry(acct.clone()).or_default().0.merge(s);
    }
    out
}

/// Reconcile one committed period of `conn`'s source.
pub fn reconcile(conn: &Connection, c: &Committed, quiet_days: i64) -> Reconciliation {
    let states: BTreeMap<&str, &str> = conn
        .organization
        .iter()
        .flat_map(|o| &o.accounts)
        .map(|a| (a.id.as_str(), a.state.as_str()))
        .collect();
    let mut connected: BTreeSet<&str> = conn.linked_accounts.iter().map(String::as_str).collect();
    connected.insert(conn.payer_account.as_str());
    let billed = billed(c);
    let last_day = billed.values().filter_map(|(_, d)| d.as_deref()).max();
    let cutoff = last_day
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .map(|d| (d - chrono::Duration::days(quiet_days)).to_string());
    let spend = |acct: &str, s: &Sums| AccountSpend {
        account: acct.to_owned(),
        state: states.get(acct).map(|s| (*s).to_owned()),
        spend: s.clone(),
    };
    // Without linked accounts (no Organizations data) every account is
    // attributed: nothing is "not connected".
    let restricted = !conn.linked_accounts.is_empty();
    Reconciliation {
        tenant: conn.tenant.clone(),
        payer_account: conn.payer_account.clone(),
        report: c.source.report.clone(),
        billing_period: c.period.clone(),
        billed_not_connected: billed
            .iter()
            .filter(|(a, _)| restricted && !connected.contains(a.as_str()))
            .map(|(a, (s, _))| spend(a, s))
            .collect(),
        connected_not_billed: connected
            .iter()
            .filter(|a| states.get(*a).is_none_or(|s| *s == "ACTIVE"))
            .filter(|a| match billed.get(**a) {
                None => true,
                Some((_, Some(day))) => cutoff.as_ref().is_some_and(|c| day < c),
                Some((_, None)) => false,
            })
            .map(|a| (*a).to_owned())
            .collect(),
        billed_not_active: billed
            .iter()
            .filter(|(a, _)| states.get(a.as_str()).is_some_and(|s| *s != "ACTIVE"))
            .map(|(a, (s, _))| spend(a, s))
            .collect(),
    }
}

/// Every committed period (or `period`) of every connection of `tenant`.
pub async fn reconcile_tenant(
    ledger: &crate::ledger::Ledger,
    registry: &Registry,
    tenant: &str,
    period: Option<&str>,
    quiet_days: i64,
) -> Result<Vec<Reconciliation>, ReconcileError> {
    let conns = registry.list(tenant).await?;
    let mut out = Vec::new();
    for c in load_committed(ledger, tenant, period).await? {
        if let Some(conn) = conns.iter().find(|k| k.payer_account == c.source.payer) {
            out.push(reconcile(conn, &c, quiet_days));
        }
    }
    Ok(out)
}
