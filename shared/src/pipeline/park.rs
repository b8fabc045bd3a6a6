//! Announcements that could not be planned because the customer's account
//! refused access (or AWS was rewriting the report): parked in the store
//! (never dropped), the refusal recorded on the connection, and re-planned
//! by the sweep (`sweep::run`) once access works again, then unparked.

use super::PipelineError;
use crate::ledger::Ledger;
use crate::store::key_prefix;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// A manifest announcement waiting for access to come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    pub tenant: String,
    pub payer_account: String,
    pub bucket: String,
    pub key: String,
    pub why: String,
    pub at: DateTime<Utc>,
}

fn dir(ledger: &Ledger, tenant: &str) -> String {
    format!("{}_parked/", ledger.layout.tenant_dir(tenant))
}

fn key_of(ledger: &Ledger, p: &Parked) -> String {
    let h = Md5::digest(format!("{}\0{}\0{}", p.payer_account, p.bucket, p.key).as_bytes());
    let hex: String = h.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}{}{hex}.json",
        dir(ledger, &p.tenant),
        key_prefix(&format!("payer={}", p.payer_account))
    )
}

/// Park an announcement (the same one twice is one record).
pub async fn park(ledger: &Ledger, p: &Parked) -> Result<(), PipelineError> {
    ledger
        .store
        .put(
            &key_of(ledger, p),
            serde_json::to_vec_pretty(p).expect("serialises"),
        )
        .await?;
    Ok(())
}

/// Everything parked for a tenant.
pub async fn parked(ledger: &Ledger, tenant: &str) -> Result<Vec<Parked>, PipelineError> {
    let mut out = Vec::new();
    for m in ledger.store.list(&dir(ledger, tenant)).await? {
        let (_, bytes) = ledger.store.get_bytes(&m.key).await?;
        out.push(
            serde_json::from_slice(&bytes).map_err(|e| PipelineError::BadStaging {
                key: m.key.clone(),
                problem: e.to_string(),
            })?,
        );
    }
    Ok(out)
}

/// Remove a parked announcement once it is planned.
pub async fn unpark(ledger: &Ledger, p: &Parked) -> Result<(), PipelineError> {
    ledger.store.delete(&key_of(ledger, p)).await?;
    Ok(())
}
