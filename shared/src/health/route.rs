//! Which connections an event concerns: by account (payer or linked account,
//! through the registry's account index, never a scan), or, for a PUBLIC
//! event that names no account, by spend: the connections whose latest
//! committed period shows spend on the event's service in its region.

use super::services;
use super::HealthError;
use crate::ledger::Ledger;
use crate::money::Money;
use crate::registry::{Connection, Registry};
use crate::report::{committed_periods, load_committed};
use std::collections::{BTreeMap, BTreeSet};

/// How the connections were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoutedBy {
    /// The affected account (or the receiving account) is a payer or linked account.
    Account,
    /// A PUBLIC event without an account: spend on its service in its region.
    Spend,
}

/// The active connections that have `account` as payer or linked account.
/// Unreadable documents are logged and skipped (they concern only themselves).
pub async fn by_account(
    registry: &Registry,
    account: &str,
) -> Result<Vec<Connection>, HealthError> {
    let found = registry.find_by_account(account).await?;
    for e in &found.unreadable {
        tracing::warn!(error = %e, "connection document unreadable; skipped for a health event");
    }
    Ok(found
        .connections
        .into_iter()
        .filter(Connection::is_active)
        .collect())
}

/// The active connections whose latest committed period (per tenant) has a
/// positive billed cost on `service` (Health's code, see [`services`]) in
/// `region` (`global`: any region). Reads each tenant's latest period once.
pub async fn by_spend(
    registry: &Registry,
    ledger: &Ledger,
    service: &str,
    region: Option<&str>,
) -> Result<Vec<Connection>, HealthError> {
    let tenants: BTreeSet<String> = registry
        .keys(None)
        .await?
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let mut out = Vec::new();
    for tenant in tenants {
        let Some(latest) = committed_periods(ledger, &tenant).await?.into_iter().max() else {
            continue;
        };
        let mut spend: BTreeMap<String, Money> = BTreeMap::new();
        for c in load_committed(ledger, &tenant, Some(&latest)).await? {
            for r in &c.rows {
                // r.key: payer, account, service code, service name, region, ...
                if services::matches(service, &r.key[2])
                    && services::region_matches(region, &r.key[4])
                {
                    *spend.entry(c.source.payer.clone()).or_default() += r.sums.billed_cost;
                }
            }
        }
        for (payer, total) in spend {
            if total <= Money::ZERO {
                continue;
            }
            match registry.get(&tenant, &payer).await {
                Ok((c, _)) if c.is_active() => out.push(c),
                Ok(_) | Err(crate::registry::RegistryError::Missing { .. }) => {}
                Err(e @ crate::registry::RegistryError::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "connection document unreadable; skipped for a health event")
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}
