//! The tenant's index of current rollup files, `tenant=T/_current/symlink.txt`:
//! one absolute URL (or local path) a line, rewritten by every commit. It is
//! what Athena's `SymlinkTextInputFormat` tables read, and what DuckDB reads
//! to follow CURRENT without a subquery in a table function.

use crate::ledger::{Ledger, LedgerError};
use crate::store::{Store, StoreError};

const MAX_TRIES: u32 = 32;

/// Where a reader finds `key`: `s3://bucket/key`, or an absolute local path.
pub fn url_of(store: &Store, key: &str) -> String {
    match store.local_path(key) {
        Some(p) => std::path::absolute(&p).unwrap_or(p).display().to_string(),
        None => store.describe(key),
    }
}

/// Rebuild the index from what every CURRENT of the tenant names. The write
/// is conditional on the index read before the listing, so two commits racing
/// can only end with an index that holds both.
pub async fn refresh(ledger: &Ledger, tenant: &str) -> Result<(), LedgerError> {
    let key = ledger.layout.current_index(tenant);
    for _ in 0..MAX_TRIES {
        let before = match ledger.store.head(&key).await {
            Ok(m) => Some(m.etag),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut lines = Vec::new();
        for (period, source) in ledger.sources(tenant, None).await? {
            if let Some((cur, _)) = ledger.current(&source, &period).await? {
                lines.push(url_of(&ledger.store, &cur.rollup_key));
            }
        }
        let mut body = lines.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        let res = match &before {
            Some(etag) => {
                ledger
                    .store
                    .put_if_match(&key, body.into_bytes(), etag)
                    .await
            }
            None => ledger.store.put_if_absent(&key, body.into_bytes()).await,
        };
        match res {
            Ok(_) => return Ok(()),
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LedgerError::Contended {
        key,
        tries: MAX_TRIES,
    })
}

/// The current rollup files of a tenant, as the index lists them.
pub async fn current_files(ledger: &Ledger, tenant: &str) -> Result<Vec<String>, StoreError> {
    match ledger
        .store
        .get_bytes(&ledger.layout.current_index(tenant))
        .await
    {
        Ok((_, b)) => Ok(String::from_utf8_lossy(&b)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(StoreError::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
