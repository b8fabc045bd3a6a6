//! De-duplication records: one JSON document per (eventArn, account) under
//! `<prefix>health/dedupe/`, named by the SHA-256 of that key. Not per
//! communication: a polled event has no communicationId, and the same state
//! pushed and polled must publish once (a new communication that changes
//! the state is a new fingerprint, so it still publishes). The record holds the merged state (status,
//! description digest, affected entities, pages seen), the fingerprint last
//! published, a publishing lease and an expiry; it changes only by
//! conditional put ([`crate::store::Store`]'s If-None-Match / If-Match), so
//! two deliveries of one event publish once.

use super::HealthError;
use crate::store::{key_prefix, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Days a record lives after its last write (then `curlew gc` removes it and
/// the same event would be news again).
pub const DEFAULT_TTL_DAYS: i64 = 90;

/// How long a publisher holds a record; a publisher that dies leaves it to
/// the retried event after this.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(120);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeRecord {
    pub event_arn: String,
    /// The affected account (empty: a PUBLIC event routed by spend).
    pub account_id: String,
    /// The last `communicationId` seen, without its `-N` page suffix
    /// (empty for a polled event). Informational: not part of the key.
    pub communication: String,
    pub status_code: Option<String>,
    /// SHA-256 of the description (the text itself is in the notice).
    pub description_sha256: String,
    /// Affected entity values, merged over the pages of the communication.
    pub entities: BTreeSet<String>,
    pub pages: BTreeSet<u32>,
    pub total_pages: u32,
    /// `lastUpdatedTime` of the newest event merged (RFC 1123, as sent): an
    /// older update arriving late is not news.
    #[serde(default)]
    pub last_updated_time: Option<String>,
    /// Of the merged state: status, description and entities.
    pub fingerprint: String,
    /// The fingerprint whose notices were all published.
    #[serde(default)]
    pub published: Option<String>,
    /// The tenants notified last.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// A publisher holds the record until then.
    #[serde(default)]
    pub lease_until: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DedupeRecord {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// Whether the merged state has every page 1..=total.
    pub fn complete(&self) -> bool {
        (1..=self.total_pages).all(|p| self.pages.contains(&p))
    }
}

/// An RFC 1123 time as Health sends it ("Fri, 05 Jan 2024 09:55:00 GMT").
pub fn rfc1123(t: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(t?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint of a state: status, description digest, entity set.
pub fn fingerprint(
    status: Option<&str>,
    description_sha256: &str,
    entities: &BTreeSet<String>,
) -> String {
    let mut text = format!("{}\n{description_sha256}\n", status.unwrap_or(""));
    for e in entities {
        text.push_str(e);
        text.push('\n');
    }
    sha256_hex(&text)
}

/// The records on a store, under `<prefix>health/dedupe/`.
#[derive(Debug, Clone)]
pub struct DedupeStore {
    pub store: Store,
    prefix: String,
}

impl DedupeStore {
    pub fn new(store: Store, prefix: &str) -> Self {
        DedupeStore {
            store,
            prefix: key_prefix(prefix),
        }
    }

    pub fn dir(&self) -> String {
        format!("{}health/dedupe/", self.prefix)
    }

    /// `health/dedupe/<sha256 of "eventArn\naccount">.json`.
    pub fn key(&self, event_arn: &str, account: &str) -> String {
        format!(
            "{}{}.json",
            self.dir(),
            sha256_hex(&format!("{event_arn}\n{account}"))
        )
    }

    /// The record at `key` and its ETag.
    pub async fn get(&self, key: &str) -> Result<Option<(DedupeRecord, String)>, HealthError> {
        match self.store.get_bytes(key).await {
            Ok((meta, bytes)) => {
                let r = serde_json::from_slice(&bytes).map_err(|e| HealthError::Corrupt {
                    key: key.to_owned(),
                    problem: e.to_string(),
                })?;
                Ok(Some((r, meta.etag)))
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Write `rec` if the record is still at `etag` (`None`: absent).
    /// `Ok(None)`: someone else wrote first (re-read and decide again).
    pub async fn put(
        &self,
        key: &str,
        rec: &DedupeRecord,
        etag: Option<&str>,
    ) -> Result<Option<String>, HealthError> {
        let body = serde_json::to_vec_pretty(rec).expect("record serialises");
        let r = match etag {
            None => self.store.put_if_absent(key, body).await,
            Some(t) => self.store.put_if_match(key, body, t).await,
        };
        match r {
            Ok(t) => Ok(Some(t)),
            Err(StoreError::PreconditionFailed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete every record expired at `now` (re-checked by ETag-free read
    /// just before; a record rewritten since is younger and kept). Returns
    /// how many were deleted. An unreadable record is kept and reported.
    pub async fn gc(&self, now: DateTime<Utc>) -> Result<usize, HealthError> {
        let mut n = 0;
        for m in self.store.list(&self.dir()).await? {
            match self.get(&m.key).await {
                Ok(Some((r, _))) if r.expired(now) => {
                    self.store.delete(&m.key).await?;
                    n += 1;
                }
                Ok(_) => {}
                Err(e @ HealthError::Corrupt { .. }) => tracing::warn!(error = %e, "kept"),
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_times_parse_as_rfc_1123() {
        let a = rfc1123(Some("Fri, 05 Jan 2024 09:55:00 GMT")).unwrap();
        let b = rfc1123(Some("Fri, 05 Jan 2024 11:42:00 GMT")).unwrap();
        assert!(a < b);
        assert_eq!(a.to_rfc3339(), "2024-01-05T09:55:00+00:00");
        assert!(rfc1123(Some("yesterday")).is_none());
    }
}
