//! The ledger: exactly once per revision of each (tenant, billing period).
//!
//! `tenant=T/billing_period=P/CURRENT` names the committed revision and is
//! written only with conditional puts (If-None-Match: * when new, If-Match on
//! its ETag after). A revision's files live under `revision=R/` and become
//! visible only when CURRENT names R. Older-or-equal revisions are no-ops.

use crate::discover::Revision;
use crate::store::key_prefix;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// The content of a CURRENT object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    /// The revision's directory name (`revision=<name>`).
    pub revision: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub id: String,
    pub rollup_key: String,
    pub summary_key: String,
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

/// Key layout of one tenant's output.
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
    pub fn period_dir(&self, tenant: &str, period: &str) -> String {
        format!("{}tenant={tenant}/billing_period={period}/", self.prefix)
    }
    pub fn current(&self, tenant: &str, period: &str) -> String {
        format!("{}CURRENT", self.period_dir(tenant, period))
    }
    pub fn revision_dir(&self, tenant: &str, period: &str, revision: &str) -> String {
        format!("{}revision={revision}/", self.period_dir(tenant, period))
    }
    pub fn staging_dir(&self, tenant: &str, revision: &str) -> String {
        format!("{}tenant={tenant}/_staging/{revision}/", self.prefix)
    }
    pub fn tenant_dir(&self, tenant: &str) -> String {
        format!("{}tenant={tenant}/", self.prefix)
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

    /// The committed revision of a period and the ETag of its CURRENT object.
    pub async fn current(
        &self,
        tenant: &str,
        period: &str,
    ) -> Result<Option<(Current, String)>, LedgerError> {
        let key = self.layout.current(tenant, period);
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

    /// Whether `rev` would be newer than what the period has committed.
    pub async fn is_newer(
        &self,
        tenant: &str,
        period: &str,
        rev: &Revision,
    ) -> Result<bool, LedgerError> {
        Ok(match self.current(tenant, period).await? {
            Some((cur, _)) => *rev > cur.rev(),
            None => true,
        })
    }

    /// Point CURRENT at `next` if it is newer than what CURRENT names.
    /// Conflicting writers are retried; an older or equal revision is a no-op.
    pub async fn commit(
        &self,
        tenant: &str,
        period: &str,
        next: &Current,
    ) -> Result<CommitOutcome, LedgerError> {
        let key = self.layout.current(tenant, period);
        let body = serde_json::to_vec_pretty(next).expect("CURRENT serialises");
        for _ in 0..MAX_TRIES {
            let existing = self.current(tenant, period).await?;
            let res = match &existing {
                Some((cur, _)) if next.rev() <= cur.rev() => {
                    return Ok(CommitOutcome::NotNewer {
                        current: cur.revision.clone(),
                    })
                }
                Some((_, etag)) => self.store.put_if_match(&key, body.clone(), etag).await,
                None => self.store.put_if_absent(&key, body.clone()).await,
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
