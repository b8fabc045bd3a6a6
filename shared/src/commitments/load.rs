//! Reading a tenant's committed commitments back, through CURRENT.

use super::{read_commitments, CommitmentSums, Commitments};
use crate::ledger::{Ledger, LedgerError};
use crate::output::OutputError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CommitmentsError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// The key of `commitments.parquet` beside a revision's rollup.
pub fn commitments_key(rollup_key: &str) -> String {
    let dir = rollup_key
        .strip_suffix("rollup.parquet")
        .unwrap_or(rollup_key);
    format!("{dir}commitments.parquet")
}

/// The commitments of `tenant`'s `period`, summed over every source whose
/// CURRENT revision has them; `None` when no committed revision has them
/// (no source, or revisions committed before curlew computed commitments).
pub async fn load_current(
    ledger: &Ledger,
    tenant: &str,
    period: &str,
) -> Result<Option<Commitments>, CommitmentsError> {
    let mut sums: Option<CommitmentSums> = None;
    for (p, source) in ledger.sources(tenant, Some(period)).await? {
        let Some((current, _)) = ledger.current(&source, &p).await? else {
            continue;
        };
        let key = commitments_key(&current.rollup_key);
        let bytes = match ledger.store.get_bytes(&key).await {
            Ok((_, b)) => b,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        sums.get_or_insert_with(Default::default)
            .merge(&read_commitments(&key, bytes)?);
    }
    Ok(sums.map(|s| Commitments::from_sums(period, &s)))
}
