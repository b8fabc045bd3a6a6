//! `curlew migrate`: moves a store written in the old, period-scoped layout
//! to the source-scoped one.
//!
//! Old: `tenant=T/billing_period=P/CURRENT` and
//! `tenant=T/billing_period=P/revision=R/...`, staging under
//! `tenant=T/_staging/<revision>/`. New: the same below
//! `billing_period=P/payer=A/report=N/` (see [`crate::ledger`]).
//!
//! For each old CURRENT the source is read from what it names: the report is
//! the summary's `source.report`, the payer the rollup's one BillingAccountId
//! (`unknown` when it holds none or several). Every old revision of the
//! period is copied byte for byte under the source, the new CURRENT is
//! written through [`Ledger::commit`] (conditional, newer only), then the old
//! revision objects and, last, the old CURRENT are deleted; old staging is
//! garbage and is deleted. Each tenant's index is rebuilt when it does not
//! list what the CURRENTs name, and the registry's bucket index is rebuilt.
//!
//! Every step can be repeated: an interrupted run is finished by the next
//! one, and a run over a migrated store changes nothing.

use crate::ledger::{CommitOutcome, Current, Ledger, LedgerError, SourceId, UNKNOWN_PAYER};
use crate::output::{read_rollup, OutputError};
use crate::pipeline::index;
use crate::registry::{Registry, RegistryError};
use crate::store::{ObjectMeta, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// What to migrate.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Only this tenant; `None`: every tenant of the store.
    pub tenant: Option<String>,
    /// Decide and report, write nothing.
    pub dry_run: bool,
}

/// One old-layout billing period moved (or, in a dry run, to be moved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedPeriod {
    pub period: String,
    /// The source the period now belongs to.
    pub source: SourceId,
    /// The revision the old CURRENT named.
    pub revision: String,
    /// Old revision directories of the period.
    pub revisions: usize,
    /// Objects copied (or to be copied) to the new layout.
    pub copied: usize,
    /// Revisions the new layout already held with other content (written by a
    /// newer curlew): kept as they are, the old copy only deleted.
    pub kept: Vec<String>,
    /// What the new CURRENT did; `None` in a dry run.
    pub outcome: Option<CommitOutcome>,
}

/// Everything a migration did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    pub dry_run: bool,
    pub periods: Vec<MovedPeriod>,
    /// Old staging objects deleted.
    pub staging_deleted: usize,
    /// Tenants whose index was rebuilt.
    pub indexes_rebuilt: Vec<String>,
    /// Connections the registry's bucket index was rebuilt for (`None` in a dry run).
    pub connections_reindexed: Option<usize>,
    /// Old-layout revision directories that no old CURRENT names (abandoned by
    /// the old layout): left in place.
    pub orphans: Vec<String>,
}

impl MigrateReport {
    /// Whether the run changed (or would change) the ledger.
    pub fn changed(&self) -> bool {
        !self.periods.is_empty() || self.staging_deleted > 0 || !self.indexes_rebuilt.is_empty()
    }
}

/// Why a migration stopped. Everything done before the error is consistent:
/// re-running continues from there.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("store: {0}. What to do: check the store is reachable and curlew may read, write and delete under it, then re-run `curlew migrate`; it continues where it stopped")]
    Store(#[from] StoreError),
    #[error("{0}. What to do: re-run `curlew migrate`; it continues where it stopped")]
    Ledger(LedgerError),
    #[error("registry: {0}. What to do: re-run `curlew migrate`; the ledger is already migrated and only the registry's bucket index is rebuilt again")]
    Registry(RegistryError),
    #[error("{key} is not a CURRENT document of the old layout ({problem}). What to do: restore it from the store's versioning, or delete the period's old CURRENT and revision=*/ objects and re-ingest the period; then re-run `curlew migrate`")]
    Corrupt { key: String, problem: String },
    #[error("{key} (named by {current}) is not a summary with source.report ({problem}). What to do: restore it from the store's versioning, or delete the period's old CURRENT and revision=*/ objects and re-ingest the period; then re-run `curlew migrate`")]
    BadSummary {
        current: String,
        key: String,
        problem: String,
    },
    #[error("{current} names a rollup that cannot be read: {source}. What to do: restore it from the store's versioning, or delete the period's old CURRENT and revision=*/ objects and re-ingest the period; then re-run `curlew migrate`")]
    BadRollup {
        current: String,
        source: OutputError,
    },
    #[error("{current} names {key}, which does not exist, and no source of the period has revision {revision} in the new layout. What to do: restore it from the store's versioning, or delete the period's old CURRENT and re-ingest the period; then re-run `curlew migrate`")]
    Missing {
        current: String,
        key: String,
        revision: String,
    },
    #[error("{current} names {key}, outside its own revision={revision}/ directory. What to do: fix the CURRENT document (rollup_key and summary_key lie under the revision it names), then re-run `curlew migrate`")]
    Outside {
        current: String,
        key: String,
        revision: String,
    },
}

impl From<LedgerError> for MigrateError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Store(s) => MigrateError::Store(s),
            e => MigrateError::Ledger(e),
        }
    }
}

impl From<RegistryError> for MigrateError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Store(s) => MigrateError::Store(s),
            e => MigrateError::Registry(e),
        }
    }
}

/// What one listing of a tenant's tree holds of the old layout.
#[derive(Debug, Default)]
struct OldTenant {
    /// period -> key of the old CURRENT.
    currents: BTreeMap<String, String>,
    /// period -> revision name -> objects under the old `revision=R/`.
    revisions: BTreeMap<String, BTreeMap<String, Vec<ObjectMeta>>>,
    /// Objects of the old staging (`_staging/<revision>/...`, not `_staging/payer=...`).
    staging: Vec<String>,
}

fn scan(tenant_dir: &str, objects: Vec<ObjectMeta>) -> OldTenant {
    let mut old = OldTenant::default();
    for m in objects {
        let Some(rest) = m.key.strip_prefix(tenant_dir) else {
            continue;
        };
        let segs: Vec<&str> = rest.split('/').collect();
        match segs.as_slice() {
            ["_staging", first, _, ..] if !first.starts_with("payer=") => {
                old.staging.push(m.key.clone());
            }
            [p, "CURRENT"] => {
                if let Some(period) = p.strip_prefix("billing_period=") {
                    old.currents.insert(period.to_owned(), m.key.clone());
                }
            }
            [p, r, _, ..] => {
                if let (Some(period), Some(rev)) = (
                    p.strip_prefix("billing_period="),
                    r.strip_prefix("revision="),
                ) {
                    old.revisions
                        .entry(period.to_owned())
                        .or_default()
                        .entry(rev.to_owned())
                        .or_default()
                        .push(m);
                }
            }
            _ => {}
        }
    }
    old
}

/// The tenants of the store (from one listing of `tenant=*`).
async fn tenants(ledger: &Ledger) -> Result<Vec<String>, MigrateError> {
    let root = format!("{}tenant=", ledger.layout.prefix);
    let mut out = BTreeSet::new();
    for m in ledger.store.list(&root).await? {
        if let Some((t, _)) = m.key[root.len()..].split_once('/') {
            out.insert(t.to_owned());
        }
    }
    Ok(out.into_iter().collect())
}

/// Migrate the store of `ledger` (and its registry, on the same store and prefix).
pub async fn migrate(
    ledger: &Ledger,
    opts: &MigrateOptions,
) -> Result<MigrateReport, MigrateError> {
    let mut report = MigrateReport {
        dry_run: opts.dry_run,
        ..MigrateReport::default()
    };
    let tenants = match &opts.tenant {
        Some(t) => vec![t.clone()],
        None => tenants(ledger).await?,
    };
    for tenant in &tenants {
        migrate_tenant(ledger, tenant, opts.dry_run, &mut report).await?;
    }
    if !opts.dry_run {
        let registry = Registry::new(ledger.store.clone(), &ledger.layout.prefix);
        report.connections_reindexed = Some(registry.reindex().await?);
    }
    Ok(report)
}

async fn migrate_tenant(
    ledger: &Ledger,
    tenant: &str,
    dry_run: bool,
    report: &mut MigrateReport,
) -> Result<(), MigrateError> {
    let tenant_dir = ledger.layout.tenant_dir(tenant);
    let mut old = scan(&tenant_dir, ledger.store.list(&tenant_dir).await?);
    for (period, current_key) in &old.currents {
        let revisions = old.revisions.remove(period).unwrap_or_default();
        let moved =
            migrate_period(ledger, tenant, period, current_key, &revisions, dry_run).await?;
        report.periods.push(moved);
    }
    for (period, revisions) in &old.revisions {
        for rev in revisions.keys() {
            report.orphans.push(format!(
                "{}revision={rev}/",
                ledger.layout.period_dir(tenant, period)
            ));
        }
    }
    for key in &old.staging {
        if !dry_run {
            ledger.store.delete(key).await?;
        }
        report.staging_deleted += 1;
    }
    // The index must list what the CURRENTs name (a CURRENT moved here, or by
    // a run that stopped before it rebuilt the index).
    let mut want = Vec::new();
    for (period, source) in ledger.sources(tenant, None).await? {
        if let Some((cur, _)) = ledger.current(&source, &period).await? {
            want.push(index::url_of(&ledger.store, &cur.rollup_key));
        }
    }
    let moved_here = report.periods.iter().any(|p| p.source.tenant == tenant);
    let stale = index::current_files(ledger, tenant).await? != want;
    if stale || (dry_run && moved_here) {
        if !dry_run {
            index::refresh(ledger, tenant).await?;
        }
        report.indexes_rebuilt.push(tenant.to_owned());
    }
    Ok(())
}

/// The source an old revision belongs to, from its own summary and rollup;
/// `None` when either object is gone.
async fn source_of(
    ledger: &Ledger,
    tenant: &str,
    current_key: &str,
    cur: &Current,
) -> Result<Option<SourceId>, MigrateError> {
    let summary = match ledger.store.get_bytes(&cur.summary_key).await {
        Ok((_, b)) => b,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = |problem: String| MigrateError::BadSummary {
        current: current_key.to_owned(),
        key: cur.summary_key.clone(),
        problem,
    };
    let v: serde_json::Value =
        serde_json::from_slice(&summary).map_err(|e| bad(format!("not JSON: {e}")))?;
    let report = v
        .get("source")
        .and_then(|s| s.get("report"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad("no source.report".into()))?
        .to_owned();
    let rollup = match ledger.store.get_bytes(&cur.rollup_key).await {
        Ok((_, b)) => b,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let rows = read_rollup(&cur.rollup_key, rollup).map_err(|source| MigrateError::BadRollup {
        current: current_key.to_owned(),
        source,
    })?;
    // RollupRow.key[0] is BillingAccountId, the payer.
    let payers: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.key.first().map(String::as_str))
        .filter(|p| !p.is_empty())
        .collect();
    let payer = match payers.len() {
        1 => payers.into_iter().next().unwrap_or(UNKNOWN_PAYER),
        _ => UNKNOWN_PAYER,
    };
    Ok(Some(SourceId::new(tenant, payer, &report)))
}

/// The source of the period whose new CURRENT already names `cur`'s revision
/// (what a run that stopped after deleting the old revision objects left).
async fn migrated_source(
    ledger: &Ledger,
    tenant: &str,
    period: &str,
    cur: &Current,
) -> Result<Option<SourceId>, MigrateError> {
    let mut found = Vec::new();
    for (_, source) in ledger.sources(tenant, Some(period)).await? {
        if let Some((c, _)) = ledger.current(&source, period).await? {
            if c.revision == cur.revision && c.id == cur.id {
                found.push(source);
            }
        }
    }
    Ok((found.len() == 1).then(|| found.remove(0)))
}

/// Whether `target` holds `body` (`Some(true)`), other bytes (`Some(false)`)
/// or nothing (`None`).
async fn same_or_absent(
    ledger: &Ledger,
    target: &str,
    body: &[u8],
) -> Result<Option<bool>, MigrateError> {
    match ledger.store.get_bytes(target).await {
        Ok((_, have)) => Ok(Some(have == body)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn migrate_period(
    ledger: &Ledger,
    tenant: &str,
    period: &str,
    current_key: &str,
    revisions: &BTreeMap<String, Vec<ObjectMeta>>,
    dry_run: bool,
) -> Result<MovedPeriod, MigrateError> {
    let (_, bytes) = ledger.store.get_bytes(current_key).await?;
    let cur: Current = serde_json::from_slice(&bytes).map_err(|e| MigrateError::Corrupt {
        key: current_key.to_owned(),
        problem: e.to_string(),
    })?;
    let period_dir = ledger.layout.period_dir(tenant, period);
    let old_rev_dir = format!("{period_dir}revision={}/", cur.revision);
    for key in [&cur.rollup_key, &cur.summary_key] {
        if !key.starts_with(&old_rev_dir) {
            return Err(MigrateError::Outside {
                current: current_key.to_owned(),
                key: key.clone(),
                revision: cur.revision.clone(),
            });
        }
    }
    let source = match source_of(ledger, tenant, current_key, &cur).await? {
        Some(s) => s,
        None => migrated_source(ledger, tenant, period, &cur)
            .await?
            .ok_or_else(|| MigrateError::Missing {
                current: current_key.to_owned(),
                key: cur.rollup_key.clone(),
                revision: cur.revision.clone(),
            })?,
    };
    let mut moved = MovedPeriod {
        period: period.to_owned(),
        source: source.clone(),
        revision: cur.revision.clone(),
        revisions: revisions.len(),
        copied: 0,
        kept: Vec::new(),
        outcome: None,
    };
    // Copy every old revision byte for byte (a run that stopped half way
    // left identical copies; a revision the new layout holds with other
    // bytes was written by a newer curlew and is kept).
    for (rev, objects) in revisions {
        let old_dir = format!("{period_dir}revision={rev}/");
        let new_dir = ledger.layout.revision_dir(&source, period, rev);
        let mut todo = Vec::new();
        let mut clash = false;
        for o in objects {
            let (_, body) = ledger.store.get_bytes(&o.key).await?;
            let target = format!("{new_dir}{}", &o.key[old_dir.len()..]);
            match same_or_absent(ledger, &target, &body).await? {
                Some(true) => {}
                Some(false) => clash = true,
                None => todo.push((target, body)),
            }
        }
        if clash {
            moved.kept.push(rev.clone());
            continue;
        }
        for (target, body) in todo {
            if !dry_run {
                match ledger.store.put_if_absent(&target, body.clone()).await {
                    Ok(_) => {}
                    // Written meanwhile: fine if it is the same object.
                    Err(StoreError::PreconditionFailed { .. }) => {
                        if same_or_absent(ledger, &target, &body).await? != Some(true) {
                            if !moved.kept.contains(rev) {
                                moved.kept.push(rev.clone());
                            }
                            continue;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            moved.copied += 1;
        }
    }
    let rel = |k: &str| k[period_dir.len()..].to_owned();
    let source_dir = ledger.layout.source_dir(&source, period);
    let next = Current {
        revision: cur.revision.clone(),
        time: cur.time,
        id: cur.id.clone(),
        rollup_key: format!("{source_dir}{}", rel(&cur.rollup_key)),
        summary_key: format!("{source_dir}{}", rel(&cur.summary_key)),
        previous: None,
    };
    if dry_run {
        return Ok(moved);
    }
    for key in [&next.rollup_key, &next.summary_key] {
        match ledger.store.head(key).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(MigrateError::Missing {
                    current: current_key.to_owned(),
                    key: key.clone(),
                    revision: cur.revision.clone(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    moved.outcome = Some(ledger.commit(&source, period, &next).await?);
    // The old CURRENT goes last: until it is gone, a re-run finds the period.
    for objects in revisions.values() {
        for o in objects {
            ledger.store.delete(&o.key).await?;
        }
    }
    ledger.store.delete(current_key).await?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 0,
            etag: String::new(),
            last_modified: chrono::Utc::now(),
        }
    }

    #[test]
    fn scan_tells_the_old_layout_from_the_new() {
        let keys = [
            "p/tenant=t/billing_period=2024-01/CURRENT",
            "p/tenant=t/billing_period=2024-01/revision=r1/rollup.parquet",
            "p/tenant=t/billing_period=2024-01/revision=r1/summary.json",
            "p/tenant=t/billing_period=2024-01/payer=1/report=c/CURRENT",
            "p/tenant=t/billing_period=2024-01/payer=1/report=c/revision=r2/rollup.parquet",
            "p/tenant=t/billing_period=2024-02/revision=r3/rollup.parquet",
            "p/tenant=t/_staging/r1/part-00000.json",
            "p/tenant=t/_staging/payer=1/report=c/r2/plan.json",
            "p/tenant=t/_current/symlink.txt",
        ];
        let old = scan("p/tenant=t/", keys.iter().map(|k| meta(k)).collect());
        assert_eq!(
            old.currents.into_iter().collect::<Vec<_>>(),
            vec![(
                "2024-01".to_owned(),
                "p/tenant=t/billing_period=2024-01/CURRENT".to_owned()
            )]
        );
        assert_eq!(old.revisions["2024-01"]["r1"].len(), 2);
        assert_eq!(old.revisions["2024-01"].len(), 1);
        assert_eq!(old.revisions["2024-02"]["r3"].len(), 1);
        assert_eq!(old.staging, vec!["p/tenant=t/_staging/r1/part-00000.json"]);
    }
}
