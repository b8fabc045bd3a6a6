//! The ledger: exactly once per revision of each billing period of each
//! source, a source being (tenant, payer account, report/export).
//!
//! `tenant=T/billing_period=P/payer=A/report=N/CURRENT` names the committed
//! revision and is written only with conditional puts (If-None-Match: * when
//! new, If-Match on its ETag after). A revision's files live under
//! `revision=R/` beside it and become visible only when CURRENT names R.
//! Older-or-equal revisions are no-ops. Two sources never share a CURRENT, so
//! two payers of one tenant, or a legacy CUR and a CUR 2.0 export, never
//! replace each other; a tenant's reports sum its sources.

use crate::discover::Revision;
use crate::store::key_prefix;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// Whose billing data a revision is: one report/export of one payer account
/// of one tenant. Each source has its own CURRENT per billing period.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceId {
    pub tenant: String,
    /// The payer (management) account; `unknown` when nothing names it.
    pub payer: String,
    /// The report or export name; empty for bare files.
    pub report: String,
}

/// The payer segment used when neither the connection nor the manifest names one.
pub const UNKNOWN_PAYER: &str = "unknown";
const BARE_REPORT: &str = "_bare";

impl SourceId {
    pub fn new(tenant: &str, payer: &str, report: &str) -> SourceId {
        SourceId {
            tenant: tenant.into(),
            payer: payer.into(),
            report: report.into(),
        }
    }

    /// `payer=A/report=N/`: Hive partition segments (the report percent-encoded
    /// outside `[A-Za-z0-9._-]`, as Hive escapes partition values).
    pub fn segments(&self) -> String {
        let report = if self.report.is_empty() {
            BARE_REPORT.to_owned()
        } else {
            hive_escape(&self.report)
        };
        format!("payer={}/report={report}/", hive_escape(&self.payer))
    }

    /// Read back from `payer=A/report=N` segments.
    pub fn from_segments(tenant: &str, payer_seg: &str, report_seg: &str) -> Option<SourceId> {
        let payer = hive_unescape(payer_seg.strip_prefix("payer=")?);
        let report = report_seg.strip_prefix("report=")?;
        let report = if report == BARE_REPORT {
            String::new()
        } else {
            hive_unescape(report)
        };
        Some(SourceId {
            tenant: tenant.into(),
            payer,
            report,
        })
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let report = if self.report.is_empty() {
            "(bare files)"
        } else {
            &self.report
        };
        write!(f, "{}/{}/{}", self.tenant, self.payer, report)
    }
}

fn hive_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hive_unescape(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

/// The content of a CURRENT object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    /// The revision's directory name (`revision=<name>`).
    pub revision: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub id: String,
    pub rollup_key: String,
    pub summary_key: String,
    /// The revision this one replaced (set by [`Ledger::commit`]).
    #[serde(default)]
    pub previous: Option<String>,
}

impl Current {
    pub fn rev(&self) -> Revision {
        Revision {
            time: self.time,
            id: self.id.clone(),
        }
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed {
        previous: Option<String>,
    },
    /// CURRENT already names this or a newer revision; nothing changed.
    NotNewer {
        current: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger store: {0}")]
    Store(#[from] StoreError),
    #[error("{key} is not a CURRENT document ({problem}). What to do: restore it from the store's versioning, or delete it and re-ingest the period")]
    Corrupt { key: String, problem: String },
    #[error("{key}: gave up after {tries} conflicting commits; another writer keeps winning. What to do: re-run; the newest revision will win")]
    Contended { key: String, tries: u32 },
}

/// Key layout of the output (every key the pipeline writes is made here).
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: String,
}

impl Layout {
    pub fn new(prefix: &str) -> Layout {
        Layout {
            prefix: key_prefix(prefix),
        }
    }
    pub fn tenant_dir(&self, tenant: &str) -> String {
        format!("{}tenant={tenant}/", self.prefix)
    }
    pub fn period_dir(&self, tenant: &str, period: &str) -> String {
        format!("{}billing_period={period}/", self.tenant_dir(tenant))
    }
    /// `tenant=T/billing_period=P/payer=A/report=N/`
    pub fn source_dir(&self, source: &SourceId, period: &str) -> String {
        format!(
            "{}{}",
            self.period_dir(&source.tenant, period),
            source.segments()
        )
    }
    pub fn current(&self, source: &SourceId, period: &str) -> String {
        format!("{}CURRENT", self.source_dir(source, period))
    }
    pub fn revision_dir(&self, source: &SourceId, period: &str, revision: &str) -> String {
        format!("{}revision={revision}/", self.source_dir(source, period))
    }
    /// Where a revision's plan and parts wait for the commit.
    pub fn staging_dir(&self, source: &SourceId, revision: &str) -> String {
        format!(
            "{}_staging/{}{revision}/",
            self.tenant_dir(&source.tenant),
            source.segments()
        )
    }
    /// Commit notices not yet known to be published (one per committed revision).
    pub fn outbox(&self, source: &SourceId, period: &str, revision: &str) -> String {
        format!(
            "{}_outbox/{}billing_period={period}/{revision}.json",
            self.tenant_dir(&source.tenant),
            source.segments()
        )
    }
    /// Failure records: one per (source, period, revision) that failed for good.
    pub fn failure(&self, source: &SourceId, period: &str, revision: &str) -> String {
        format!(
            "{}{}billing_period={period}/{revision}.json",
            self.failures_dir(&source.tenant),
            source.segments()
        )
    }
    pub fn failures_dir(&self, tenant: &str) -> String {
        format!("{}_failures/", self.tenant_dir(tenant))
    }
    /// The tenant's index of current rollup files (one URL a line): what
    /// Athena's symlink tables and DuckDB read to follow CURRENT.
    pub fn current_index(&self, tenant: &str) -> String {
        format!("{}_current/symlink.txt", self.tenant_dir(tenant))
    }
}

/// The ledger over a store.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub store: Store,
    pub layout: Layout,
}

const MAX_TRIES: u32 = 16;

impl Ledger {
    pub fn new(store: Store, prefix: &str) -> Ledger {
        Ledger {
            store,
            layout: Layout::new(prefix),
        }
    }

    /// The committed revision of a source's period and the ETag of its CURRENT object.
    pub async fn current(
        &self,
        source: &SourceId,
        period: &str,
    ) -> Result<Option<(Current, String)>, LedgerError> {
        let key = self.layout.current(source, period);
        match self.store.get_bytes(&key).await {
            Ok((meta, bytes)) => {
                let cur: Current =
                    serde_json::from_slice(&bytes).map_err(|e| LedgerError::Corrupt {
                        key: key.clone(),
                        problem: e.to_string(),
                    })?;
                Ok(Some((cur, meta.etag)))
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `rev` would be newer than what the source's period has committed.
    pub async fn is_newer(
        &self,
        source: &SourceId,
        period: &str,
        rev: &Revision,
    ) -> Result<bool, LedgerError> {
        Ok(match self.current(source, period).await? {
            Some((cur, _)) => *rev > cur.rev(),
            None => true,
        })
    }

    /// Point CURRENT at `next` if it is newer than what CURRENT names
    /// (`previous` is filled in here). Conflicting writers are retried; an
    /// older or equal revision is a no-op.
    pub async fn commit(
        &self,
        source: &SourceId,
        period: &str,
        next: &Current,
    ) -> Result<CommitOutcome, LedgerError> {
        let key = self.layout.current(source, period);
        for _ in 0..MAX_TRIES {
            let existing = self.current(source, period).await?;
            let mut next = next.clone();
            next.previous = existing.as_ref().map(|(c, _)| c.revision.clone());
            let body = serde_json::to_vec_pretty(&next).expect("CURRENT serialises");
            let res = match &existing {
                Some((cur, _)) if next.rev() <= cur.rev() => {
                    return Ok(CommitOutcome::NotNewer {
                        current: cur.revision.clone(),
                    })
                }
                Some((_, etag)) => self.store.put_if_match(&key, body, etag).await,
                None => self.store.put_if_absent(&key, body).await,
            };
            match res {
                Ok(_) => {
                    return Ok(CommitOutcome::Committed {
                        previous: existing.map(|(c, _)| c.revision),
                    });
                }
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(LedgerError::Contended {
            key,
            tries: MAX_TRIES,
        })
    }
}

impl Ledger {
    /// Every (period, source) of `tenant` with a CURRENT, sorted; only
    /// `period` when given. One listing of the tenant's (or period's) tree.
    pub async fn sources(
        &self,
        tenant: &str,
        period: Option<&str>,
    ) -> Result<Vec<(String, SourceId)>, LedgerError> {
        let dir = match period {
            Some(p) => self.layout.period_dir(tenant, p),
            None => self.layout.tenant_dir(tenant),
        };
        let tenant_dir = self.layout.tenant_dir(tenant);
        let mut out: Vec<(String, SourceId)> = self
            .store
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|m| {
                let rest = m.key.strip_prefix(&tenant_dir)?;
                let segs: Vec<&str> = rest.split('/').collect();
                match segs.as_slice() {
                    [p, payer, report, "CURRENT"] => Some((
                        p.strip_prefix("billing_period=")?.to_owned(),
                        SourceId::from_segments(tenant, payer, report)?,
                    )),
                    _ => None,
                }
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_segments_round_trip_and_escape() {
        for (payer, report) in [
            ("111122223333", "my-cur"),
            ("111122223333", "weird name*(1)"),
            ("unknown", ""),
        ] {
            let s = SourceId::new("acme", payer, report);
            let segs = s.segments();
            assert!(
                segs.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=/%._-".contains(&b)),
                "{segs}"
            );
            let parts: Vec<&str> = segs.trim_end_matches('/').split('/').collect();
            assert_eq!(SourceId::from_segments("acme", parts[0], parts[1]), Some(s));
        }
    }

    #[test]
    fn layout_keeps_sources_apart() {
        let l = Layout::new("out/");
        let a = SourceId::new("acme", "111122223333", "cur");
        let b = SourceId::new("acme", "444455556666", "cur");
        assert_eq!(
            l.current(&a, "2024-01"),
            "out/tenant=acme/billing_period=2024-01/payer=111122223333/report=cur/CURRENT"
        );
        assert_ne!(l.current(&a, "2024-01"), l.current(&b, "2024-01"));
        assert_ne!(l.staging_dir(&a, "r1"), l.staging_dir(&b, "r1"));
    }
}
