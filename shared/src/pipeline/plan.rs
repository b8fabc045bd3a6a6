//! Planning: every decision about a delivery is made here, once, for
//! `curlew ingest` and the planner Lambda alike — which report, which
//! periods, which accounts, the UPDATING hold, newer than CURRENT, keys
//! inside the connection's prefix, the file-count cap.

use super::{PartJob, PipelineError, WIRE_VERSION};
use crate::dimensions::Dimensions;
use crate::discover::{Delivery, Source};
use crate::ledger::{Layout, Ledger, SourceId, UNKNOWN_PAYER};
use crate::registry::Connection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// More data files than this in one manifest is refused (a runaway or forged manifest).
pub const DEFAULT_MAX_FILES: usize = 20_000;

/// What a connection (or the CLI's flags) lets the pipeline ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub tenant: String,
    /// The connection's payer; `None` locally: the manifest's account, else `unknown`.
    pub payer: Option<String>,
    /// Only this report/export; `None`: any, but a period two reports claim is refused.
    pub report: Option<String>,
    /// Connected usage accounts; `None` attributes all.
    pub accounts: Option<BTreeSet<String>>,
    /// Bill processing start date: periods before this `YYYY-MM` are not ingested.
    pub since: Option<String>,
    pub max_files: usize,
    /// Tag and cost category dimensions of the rollup.
    pub dimensions: Dimensions,
}

impl Scope {
    pub fn new(tenant: &str) -> Scope {
        Scope {
            tenant: tenant.into(),
            payer: None,
            report: None,
            accounts: None,
            since: None,
            max_files: DEFAULT_MAX_FILES,
            dimensions: Dimensions::default(),
        }
    }

    /// What a registered connection allows: its payer, its report (one it
    /// names; one the pipeline bound is checked through `other_reports`
    /// instead, see [`Scope::known_reports`]), its linked accounts (with the
    /// payer itself) and its start date.
    pub fn for_connection(conn: &Connection) -> Scope {
        let accounts = (!conn.linked_accounts.is_empty()).then(|| {
            let mut a: BTreeSet<String> = conn.linked_accounts.iter().cloned().collect();
            a.insert(conn.payer_account.clone());
            a
        });
        Scope {
            tenant: conn.tenant.clone(),
            payer: Some(conn.payer_account.clone()),
            report: conn.report.clone().filter(|_| !conn.report_auto),
            accounts,
            since: conn.since.clone(),
            max_files: DEFAULT_MAX_FILES,
            dimensions: conn.dimensions.clone(),
        }
    }

    /// The reports a connection already ingests without having named one
    /// (bound by the pipeline): a different one is refused as ambiguous.
    pub fn known_reports(conn: &Connection) -> BTreeSet<String> {
        conn.report
            .iter()
            .filter(|_| conn.report_auto)
            .cloned()
            .collect()
    }

    /// The source a delivery belongs to under this scope.
    pub fn source_of(&self, d: &Delivery) -> SourceId {
        let payer = self
            .payer
            .clone()
            .or_else(|| d.account.clone())
            .unwrap_or_else(|| UNKNOWN_PAYER.to_owned());
        SourceId::new(&self.tenant, &payer, &d.report)
    }
}

/// A revision to ingest, decided: stored by the planner beside its staged
/// parts and named by every part job. Versioned: a worker refuses a plan of
/// a version it does not know instead of misreading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub source: SourceId,
    pub delivery: Delivery,
    pub accounts: Option<BTreeSet<String>>,
    pub since: Option<String>,
    /// The rollup's tag and cost category dimensions (absent: none).
    #[serde(default, skip_serializing_if = "Dimensions::is_empty")]
    pub dimensions: Dimensions,
}

impl Plan {
    pub fn revision(&self) -> String {
        self.delivery.revision.name()
    }

    pub fn key(&self, layout: &Layout) -> String {
        format!(
            "{}plan.json",
            layout.staging_dir(&self.source, &self.revision())
        )
    }

    /// `YYYY-MM`, or `bare` for files without a manifest.
    pub fn period_label(&self) -> &str {
        self.delivery.period.as_deref().unwrap_or("bare")
    }

    /// The job of data file `index`.
    pub fn job(&self, layout: &Layout, index: usize) -> PartJob {
        let f = &self.delivery.files[index];
        PartJob {
            version: WIRE_VERSION,
            tenant: self.source.tenant.clone(),
            payer: self.source.payer.clone(),
            plan_key: self.key(layout),
            revision: self.revision(),
            index,
            count: self.delivery.files.len(),
            key: f.key.clone(),
            etag: f.etag.clone(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("plan serialises")
    }

    pub fn from_json(key: &str, bytes: &[u8]) -> Result<Plan, PipelineError> {
        let bad = |problem: String| PipelineError::BadPlan {
            key: key.into(),
            problem,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        match v.get("version").and_then(serde_json::Value::as_u64) {
            Some(n) if n == u64::from(WIRE_VERSION) => {}
            other => {
                return Err(bad(format!(
                    "plan version {other:?}; this curlew reads version {WIRE_VERSION}"
                )))
            }
        }
        serde_json::from_value(v).map_err(|e| bad(e.to_string()))
    }
}

/// Why a delivery is not ingested, none of them a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The connection ingests another report.
    OtherReport { report: String, wanted: String },
    /// Before the bill processing start date.
    BeforeSince { period: String, since: String },
    /// AWS is rewriting the report (status table UPDATING).
    Held { why: String },
    /// CURRENT already names this or a newer revision.
    NotNewer { current: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Planned(Box<Plan>),
    Skipped { source: SourceId, skip: Skip },
}

/// `a//b/` and `a/b` name the same folder.
fn segments(key: &str) -> Vec<&str> {
    key.split('/').filter(|s| !s.is_empty()).collect()
}

/// Whether `key` lies under `prefix` on whole path segments (`acme/` does not hold `acme-eu/x`).
pub fn within_prefix(key: &str, prefix: &str) -> bool {
    let (k, p) = (segments(key), segments(prefix));
    k.len() > p.len() && k[..p.len()] == p[..]
}

/// Decide what to do with one delivery of `source` under `scope`.
/// `other_reports`: reports other than this one known to deliver the same
/// payer's period (from a listing, or the connection's bound report).
pub async fn plan_delivery(
    source: &Source,
    ledger: &Ledger,
    scope: &Scope,
    delivery: Delivery,
    other_reports: &BTreeSet<String>,
) -> Result<Decision, PipelineError> {
    let id = scope.source_of(&delivery);
    let skipped = |skip| {
        Ok(Decision::Skipped {
            source: id.clone(),
            skip,
        })
    };
    match &scope.report {
        Some(wanted) if *wanted != delivery.report => {
            return skipped(Skip::OtherReport {
                report: delivery.report.clone(),
                wanted: wanted.clone(),
            })
        }
        Some(_) => {}
        None => {
            let others: Vec<&String> = other_reports
                .iter()
                .filter(|r| **r != delivery.report)
                .collect();
            if !others.is_empty() {
                let mut reports: Vec<String> = others.into_iter().cloned().collect();
                reports.push(delivery.report.clone());
                reports.sort();
                return Err(PipelineError::Ambiguous {
                    payer: id.payer.clone(),
                    period: delivery.period.clone().unwrap_or_default(),
                    reports,
                });
            }
        }
    }
    if let (Some(since), Some(p)) = (&scope.since, &delivery.period) {
        if p < since {
            return skipped(Skip::BeforeSince {
                period: p.clone(),
                since: since.clone(),
            });
        }
    }
    if let Some(why) = &delivery.hold {
        return skipped(Skip::Held { why: why.clone() });
    }
    let manifest = delivery
        .manifest
        .as_ref()
        .map(|m| m.0.clone())
        .unwrap_or_default();
    if delivery.files.len() > scope.max_files {
        return Err(PipelineError::TooManyFiles {
            manifest,
            files: delivery.files.len(),
            cap: scope.max_files,
        });
    }
    if !source.prefix.trim_matches('/').is_empty() {
        let keys = delivery
            .manifest
            .iter()
            .map(|m| &m.0)
            .chain(delivery.files.iter().map(|f| &f.key));
        for k in keys {
            if !within_prefix(k, &source.prefix) {
                return Err(PipelineError::OutsideScope {
                    key: k.clone(),
                    prefix: source.prefix.clone(),
                });
            }
        }
    }
    if !delivery.missing.is_empty() {
        return Err(PipelineError::MissingFiles {
            manifest,
            keys: delivery.missing.clone(),
        });
    }
    if let Some(p) = &delivery.period {
        if let Some((cur, _)) = ledger.current(&id, p).await? {
            if delivery.revision <= cur.rev() {
                return skipped(Skip::NotNewer {
                    current: cur.revision,
                });
            }
        }
    }
    Ok(Decision::Planned(Box::new(Plan {
        version: WIRE_VERSION,
        source: id,
        delivery,
        accounts: scope.accounts.clone(),
        since: scope.since.clone(),
        dimensions: scope.dimensions.clone(),
    })))
}

/// Store `plan` (the first writer's copy wins; a redelivered event finds it)
/// and return the jobs whose parts are not staged yet: publishing those again
/// is harmless, publishing staged ones would only redo work.
pub async fn stage_plan(ledger: &Ledger, plan: &Plan) -> Result<Vec<PartJob>, PipelineError> {
    let key = plan.key(&ledger.layout);
    match ledger.store.put_if_absent(&key, plan.to_json()).await {
        Ok(_) | Err(crate::store::StoreError::PreconditionFailed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let staged = super::part::staged_indexes(ledger, plan).await?;
    Ok((0..plan.delivery.files.len())
        .filter(|i| !staged.contains(i))
        .map(|i| plan.job(&ledger.layout, i))
        .collect())
}

/// Load the plan a job names.
pub async fn load_plan(ledger: &Ledger, key: &str) -> Result<Plan, PipelineError> {
    let (_, bytes) = ledger.store.get_bytes(key).await?;
    Plan::from_json(key, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(within_prefix("acme/cur/x-Manifest.json", "acme"));
        assert!(within_prefix("acme//cur/x.csv.gz", "acme/"));
        assert!(!within_prefix("acme-eu/cur/x.csv.gz", "acme"));
        assert!(!within_prefix("acme", "acme"));
        assert!(within_prefix("anything/at/all", ""));
    }
}
