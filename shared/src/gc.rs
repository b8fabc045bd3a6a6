//! Garbage collection of superseded and abandoned revisions and stale staging.
//! Never touches what CURRENT names; a revision newer than CURRENT (possibly
//! still being built) is only removed once it is older than the grace period.

use crate::ledger::{Ledger, LedgerError};
use crate::report::committed_periods;
use crate::store::ObjectMeta;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// What a GC run removed and kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Revision directories deleted (as `tenant=T/billing_period=P/revision=R/`).
    pub deleted_revisions: Vec<String>,
    /// Staging directories deleted.
    pub deleted_staging: Vec<String>,
    pub objects_deleted: usize,
    /// Revisions newer than CURRENT kept because they are younger than the grace period.
    pub kept_in_flight: Vec<String>,
}

fn group_by_dir<'a>(
    objects: &'a [ObjectMeta],
    prefix: &str,
) -> BTreeMap<String, Vec<&'a ObjectMeta>> {
    let mut out: BTreeMap<String, Vec<&ObjectMeta>> = BTreeMap::new();
    for o in objects {
        if let Some(rest) = o.key.strip_prefix(prefix) {
            if let Some((dir, _)) = rest.split_once('/') {
                out.entry(dir.to_owned()).or_default().push(o);
            }
        }
    }
    out
}

/// Collect garbage for one tenant.
pub async fn gc(
    ledger: &Ledger,
    tenant: &str,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<GcReport, LedgerError> {
    let mut report = GcReport::default();
    let cutoff = now - grace;
    let periods = committed_periods(ledger, tenant)
        .await
        .map_err(|e| match e {
            crate::report::ReportError::Ledger(l) => l,
            crate::report::ReportError::Store(s) => LedgerError::Store(s),
            other => LedgerError::Corrupt {
                key: ledger.layout.tenant_dir(tenant),
                problem: other.to_string(),
            },
        })?;
    for period in periods {
        let Some((current, _)) = ledger.current(tenant, &period).await? else {
            continue;
        };
        let dir = ledger.layout.period_dir(tenant, &period);
        let objects = ledger.store.list(&dir).await?;
        for (sub, objs) in group_by_dir(&objects, &dir) {
            let Some(rev) = sub.strip_prefix("revision=") else {
                continue;
            };
            if rev == current.revision {
                continue;
            }
            let superseded = rev < current.revision.as_str();
            let stale = objs.iter().all(|o| o.last_modified < cutoff);
            if superseded || stale {
                for o in &objs {
                    ledger.store.delete(&o.key).await?;
                    report.objects_deleted += 1;
                }
                report.deleted_revisions.push(format!("{dir}{sub}/"));
            } else {
                report.kept_in_flight.push(format!("{dir}{sub}/"));
            }
        }
    }
    let staging = format!("{}_staging/", ledger.layout.tenant_dir(tenant));
    let objects = ledger.store.list(&staging).await?;
    for (sub, objs) in group_by_dir(&objects, &staging) {
        if objs.iter().all(|o| o.last_modified < cutoff) {
            for o in &objs {
                ledger.store.delete(&o.key).await?;
                report.objects_deleted += 1;
            }
            report.deleted_staging.push(format!("{staging}{sub}/"));
        }
    }
    Ok(report)
}
