//! The connection registry: one JSON document per connection on the store,
//! changed only by conditional writes, so concurrent writers never lose each
//! other's update (a conflict re-reads and re-applies the change).

use crate::dimensions::Dimensions;
use crate::pipeline::Notice;
use crate::store::key_prefix;
use crate::store::{Store, StoreError};
use crate::sweep::orgs::Organization;
use crate::sweep::HealthCause;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How the platform reaches the customer's billing bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessMode {
    /// Cross-account IAM role with an External ID (the default).
    CrossAccountRole,
    /// A bucket policy granting the platform's principal read access.
    BucketPolicy,
    /// An IAM user's access keys (legacy setups).
    AccessKeys,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionStatus {
    Pending,
    Connected,
    Degraded,
    Broken,
    Disconnected,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Degraded => "degraded",
            ConnectionStatus::Broken => "broken",
            ConnectionStatus::Disconnected => "disconnected",
        }
    }
}

impl std::fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the last AWS Health poll of a connection found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPoll {
    /// `polled`; `not-subscribed` (SubscriptionRequiredException: no
    /// Business or Enterprise support plan; a state, not a failure);
    /// `failed` (access or the API; `detail` says why).
    pub state: String,
    pub at: DateTime<Utc>,
    /// Events (per affected account) read.
    #[serde(default)]
    pub events: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One connected payer account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub tenant: String,
    pub payer_account: String,
    pub access_mode: AccessMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub bucket: String,
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// The report was bound by the pipeline (the first seen), not named by
    /// the customer: another report under the prefix is refused, not skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report_auto: bool,
    pub status: ConnectionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    #[serde(default)]
    pub linked_accounts: Vec<String>,
    /// Tag and cost category keys its rollups are grouped by (`tag:team`).
    #[serde(default, skip_serializing_if = "Dimensions::is_empty")]
    pub dimensions: Dimensions,
    /// Bill processing start date (`YYYY-MM`): earlier periods are not ingested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The sweep's diagnosis while not connected (`crate::sweep::state`
    /// owns it, with `status`, `status_since`, `consecutive_failures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<HealthCause>,
    /// What the customer can do about `cause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// When `status` last changed (set by the sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Failed sweeps in a row (transient trouble never counts).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The linked accounts from AWS Organizations (the sweep's); their ids
    /// are `linked_accounts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// Notices the sweep decided on, kept until published (written with the
    /// change itself, so a failed publish is retried, never lost).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_notices: Vec<Notice>,
    /// The newest manifest the sweep saw under the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// The sweep's last account reconciliation: which revision it read and
    /// which accounts it listed (`crate::sweep::reconcile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<crate::sweep::reconcile::Reconciled>,
    /// The last poll of AWS Health's organizational view (`crate::health::poll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_poll: Option<HealthPoll>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every successful write.
    pub version: u64,
}

impl Connection {
    /// Whether the pipeline ingests for this connection (a disconnected one is kept, not read).
    pub fn is_active(&self) -> bool {
        self.status != ConnectionStatus::Disconnected
    }

    /// Whether `key` of `bucket` lies under this connection's prefix, on whole segments.
    pub fn covers(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket && crate::pipeline::within_prefix(key, &self.prefix)
    }

    pub fn new(
        tenant: &str,
        payer_account: &str,
        access_mode: AccessMode,
        bucket: &str,
        prefix: &str,
    ) -> Self {
        let now = Utc::now();
        Connection {
            tenant: tenant.into(),
            payer_account: payer_account.into(),
            access_mode,
            role_arn: None,
            bucket: bucket.into(),
            prefix: prefix.into(),
            report: None,
            report_auto: false,
            status: ConnectionStatus::Pending,
            status_detail: None,
            linked_accounts: Vec::new(),
            dimensions: Dimensions::default(),
            since: None,
            cause: None,
            remedy: None,
            status_since: None,
            last_checked_at: None,
            consecutive_failures: 0,
            last_delivery_at: None,
            organization: None,
            pending_notices: Vec::new(),
            reconciled: None,
            health_poll: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry: {0}")]
    Store(#[from] StoreError),
    #[error("connection {tenant}/{payer} already exists; update it instead")]
    Exists { tenant: String, payer: String },
    #[error("connection {tenant}/{payer} does not exist. What to do: connect the account (`curlew onboard new`, then the customer's stack)")]
    Missing { tenant: String, payer: String },
    #[error("{key} is not a connection document ({problem}). What to do: restore it from the store's versioning, or delete it and connect the account again")]
    Corrupt { key: String, problem: String },
    #[error("{key}: gave up after {tries} conflicting writes; re-run the change")]
    Contended { key: String, tries: u32 },
    #[error("connection {tenant}/{payer} ingests report {bound:?}, and {other:?} also delivers under its prefix; they would be summed twice. What to do: name the report the connection ingests (the ReportName of its onboarding template)")]
    ReportAmbiguous {
        tenant: String,
        payer: String,
        bound: String,
        other: String,
    },
}

impl RegistryError {
    pub fn class(&self) -> crate::failure::Class {
        use crate::failure::Class;
        match self {
            RegistryError::Store(e) => e.class(),
            RegistryError::Contended { .. } => Class::Transient,
            _ => Class::Permanent,
        }
    }
}

/// What [`Registry::find_by_bucket`] found: the connections, and the ones
/// that could not be read (each affects only itself).
#[derive(Debug, Default)]
pub struct Found {
    pub connections: Vec<Connection>,
    pub unreadable: Vec<RegistryError>,
}

/// The registry on a store, under `<prefix>registry/`.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
    prefix: String,
}

const MAX_TRIES: u32 = 64;

/// The accounts a connection answers for: its payer and linked accounts.
fn account_set(c: &Connection) -> std::collections::BTreeSet<String> {
    std::iter::once(c.payer_account.clone())
        .chain(c.linked_accounts.iter().cloned())
        .filter(|a| !a.is_empty())
        .collect()
}

impl Registry {
    pub fn new(store: Store, prefix: &str) -> Self {
        Registry {
            store,
            prefix: key_prefix(prefix),
        }
    }

    fn key(&self, tenant: &str, payer: &str) -> String {
        format!("{}registry/tenant={tenant}/{payer}.json", self.prefix)
    }

    fn bucket_dir(&self, bucket: &str) -> String {
        format!("{}registry-by-bucket/{bucket}/", self.prefix)
    }

    /// The index entry that lets an event for `bucket` find this connection
    /// with one listing: `registry-by-bucket/<bucket>/tenant=T/<payer>`.
    fn bucket_entry(&self, conn: &Connection) -> String {
        format!(
            "{}tenant={}/{}",
            self.bucket_dir(&conn.bucket),
            conn.tenant,
            conn.payer_account
        )
    }

    async fn index(&self, conn: &Connection) -> Result<(), RegistryError> {
        self.store.put(&self.bucket_entry(conn), Vec::new()).await?;
        self.index_accounts(None, conn).await
    }

    fn account_dir(&self, account: &str) -> String {
        format!("{}registry-by-account/{account}/", self.prefix)
    }

    /// `registry-by-account/<account>/tenant=T/<payer>`: lets an event about
    /// `account` (AWS Health) find the connections that know it with one
    /// listing.
    fn account_entry(&self, account: &str, conn: &Connection) -> String {
        format!(
            "{}tenant={}/{}",
            self.account_dir(account),
            conn.tenant,
            conn.payer_account
        )
    }

    /// The one place the account index follows a connection: an entry for
    /// its payer and each linked account; entries of accounts `before` had
    /// and `after` no longer has are removed (a stale entry is harmless:
    /// [`Registry::find_by_account`] checks the document).
    async fn index_accounts(
        &self,
        before: Option<&Connection>,
        after: &Connection,
    ) -> Result<(), RegistryError> {
        let now = account_set(after);
        let old = before.map(account_set).unwrap_or_default();
        for a in now.difference(&old) {
            self.store
                .put(&self.account_entry(a, after), Vec::new())
                .await?;
        }
        if let Some(b) = before {
            for a in old.difference(&now) {
                // Best effort: a stale entry is skipped by `find_by_account`.
                match self.store.delete(&self.account_entry(a, b)).await {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, "stale account index entry kept"),
                }
            }
        }
        Ok(())
    }

    /// Every connection that has `account` as its payer or a linked account
    /// (across tenants): one listing of the account's index entries and one
    /// read per connection there. Entries whose document no longer names the
    /// account are skipped; an unreadable document affects only itself.
    pub async fn find_by_account(&self, account: &str) -> Result<Found, RegistryError> {
        let dir = self.account_dir(account);
        let mut found = Found::default();
        for m in self.store.list(&dir).await? {
            let Some((t, payer)) = m.key[dir.len()..].split_once('/') else {
                continue;
            };
            let Some(tenant) = t.strip_prefix("tenant=") else {
                continue;
            };
            match self.get(tenant, payer).await {
                Ok((c, _)) if account_set(&c).contains(account) => found.connections.push(c),
                Ok(_) | Err(RegistryError::Missing { .. }) => {}
                Err(e @ RegistryError::Corrupt { .. }) => found.unreadable.push(e),
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Create a connection; fails if it exists.
    pub async fn create(&self, conn: &Connection) -> Result<(), RegistryError> {
        let key = self.key(&conn.tenant, &conn.payer_account);
        let body = serde_json::to_vec_pretty(conn).expect("connection serialises");
        // The index entry first: a connection document never exists unindexed
        // (an entry without a document is skipped by `find_by_bucket`).
        self.index(conn).await?;
        match self.store.put_if_absent(&key, body).await {
            Ok(_) => Ok(()),
            Err(StoreError::PreconditionFailed { .. }) => Err(RegistryError::Exists {
                tenant: conn.tenant.clone(),
                payer: conn.payer_account.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Create `conn`, or, if it exists, take its access (mode, role, bucket,
    /// prefix, report, start date), status and detail, keeping what the
    /// pipeline and the sweep learned (linked accounts, health, a bound
    /// report when `conn` names none).
    pub async fn connect(&self, conn: &Connection) -> Result<Connection, RegistryError> {
        match self.create(conn).await {
            Ok(()) => Ok(conn.clone()),
            Err(RegistryError::Exists { .. }) => {
                self.update(&conn.tenant, &conn.payer_account, |c| {
                    c.access_mode = conn.access_mode;
                    c.role_arn = conn.role_arn.clone();
                    c.bucket = conn.bucket.clone();
                    c.prefix = conn.prefix.clone();
                    if conn.report.is_some() {
                        c.report = conn.report.clone();
                        c.report_auto = false;
                    }
                    if conn.since.is_some() {
                        c.since = conn.since.clone();
                    }
                    if !conn.dimensions.is_empty() {
                        c.dimensions = conn.dimensions.clone();
                    }
                    c.status = conn.status;
                    c.status_detail = conn.status_detail.clone();
                })
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// A connection and the ETag it was read at.
    pub async fn get(
        &self,
        tenant: &str,
        payer: &str,
    ) -> Result<(Connection, String), RegistryError> {
        let key = self.key(tenant, payer);
        match self.store.get_bytes(&key).await {
            Ok((meta, bytes)) => {
                let c = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                    key: key.clone(),
                    problem: e.to_string(),
                })?;
                Ok((c, meta.etag))
            }
            Err(StoreError::NotFound { .. }) => Err(RegistryError::Missing {
                tenant: tenant.into(),
                payer: payer.into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Apply `change` to the current document with a compare-and-swap; on a
    /// conflict, re-read and re-apply. Returns the stored document.
    pub async fn update(
        &self,
        tenant: &str,
        payer: &str,
        mut change: impl FnMut(&mut Connection),
    ) -> Result<Connection, RegistryError> {
        let key = self.key(tenant, payer);
        for attempt in 0..MAX_TRIES {
            let (mut conn, etag) = self.get(tenant, payer).await?;
            let before = conn.clone();
            let before_bucket = conn.bucket.clone();
            change(&mut conn);
            conn.version += 1;
            conn.updated_at = Utc::now();
            let body = serde_json::to_vec_pretty(&conn).expect("connection serialises");
            match self.store.put_if_match(&key, body, &etag).await {
                Ok(_) => {
                    if account_set(&before) != account_set(&conn) {
                        self.index_accounts(Some(&before), &conn).await?;
                    }
                    if conn.bucket != before_bucket {
                        let mut old = conn.clone();
                        old.bucket = before_bucket;
                        let _ = self.store.delete(&self.bucket_entry(&old)).await;
                        self.index(&conn).await?;
                    }
                    return Ok(conn);
                }
                Err(StoreError::PreconditionFailed { .. }) => {
                    let backoff = 1 + fastrand::u64(0..(2u64 << attempt.min(6)));
                    tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Contended {
            key,
            tries: MAX_TRIES,
        })
    }

    /// Every connection whose billing bucket is `bucket` (across tenants):
    /// one listing of the bucket's index entries and one read per connection
    /// there, never a scan of the registry. A connection whose document is
    /// unreadable is reported in `unreadable` and affects no other.
    pub async fn find_by_bucket(&self, bucket: &str) -> Result<Found, RegistryError> {
        let dir = self.bucket_dir(bucket);
        let mut found = Found::default();
        for m in self.store.list(&dir).await? {
            let Some((t, payer)) = m.key[dir.len()..].split_once('/') else {
                continue;
            };
            let Some(tenant) = t.strip_prefix("tenant=") else {
                continue;
            };
            match self.get(tenant, payer).await {
                // An entry left by a bucket change is stale, not a match.
                Ok((c, _)) if c.bucket == bucket => found.connections.push(c),
                Ok(_) | Err(RegistryError::Missing { .. }) => {}
                Err(e @ RegistryError::Corrupt { .. }) => found.unreadable.push(e),
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Rebuild the bucket and account indexes from every connection
    /// document (for stores written before an index existed; `curlew
    /// migrate` runs it).
    pub async fn reindex(&self) -> Result<usize, RegistryError> {
        let dir = format!("{}registry/", self.prefix);
        let mut n = 0;
        for m in self.store.list(&dir).await? {
            if m.key.ends_with(".json") {
                let (_, bytes) = self.store.get_bytes(&m.key).await?;
                if let Ok(c) = serde_json::from_slice::<Connection>(&bytes) {
                    self.index(&c).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Bind the report a connection ingests when it names none (the first
    /// report seen under its prefix); another report later is refused.
    pub async fn bind_report(
        &self,
        tenant: &str,
        payer: &str,
        report: &str,
    ) -> Result<(), RegistryError> {
        let mut clash = None;
        self.update(tenant, payer, |c| match &c.report {
            None => {
                c.report = Some(report.to_owned());
                c.report_auto = true;
            }
            Some(r) if r != report => clash = Some(r.clone()),
            Some(_) => {}
        })
        .await?;
        match clash {
            Some(bound) => Err(RegistryError::ReportAmbiguous {
                tenant: tenant.into(),
                payer: payer.into(),
                bound,
                other: report.into(),
            }),
            None => Ok(()),
        }
    }

    /// The (tenant, payer) of every connection, or of one tenant's: a listing
    /// only (one call per 1,000 connections), no document read.
    pub async fn keys(&self, tenant: Option<&str>) -> Result<Vec<(String, String)>, RegistryError> {
        let dir = match tenant {
            Some(t) => format!("{}registry/tenant={t}/", self.prefix),
            None => format!("{}registry/", self.prefix),
        };
        let root = format!("{}registry/", self.prefix);
        Ok(self
            .store
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|m| {
                let (t, doc) = m.key.strip_prefix(&root)?.split_once('/')?;
                let payer = doc.strip_suffix(".json")?;
                Some((t.strip_prefix("tenant=")?.to_owned(), payer.to_owned()))
            })
            .collect())
    }

    /// All connections of a tenant.
    pub async fn list(&self, tenant: &str) -> Result<Vec<Connection>, RegistryError> {
        let dir = format!("{}registry/tenant={tenant}/", self.prefix);
        let mut out = Vec::new();
        for m in self.store.list(&dir).await? {
            if m.key.ends_with(".json") {
                let (_, bytes) = self.store.get_bytes(&m.key).await?;
                out.push(
                    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                        key: m.key.clone(),
                        problem: e.to_string(),
                    })?,
                );
            }
        }
        Ok(out)
    }
}
