//! Reaching a connected customer's bucket for ingestion, the way the
//! connection says: assume its role with the tenant's External ID, use its
//! stored access keys, or (bucket-policy mode) curlew's own credentials.

use super::assume::assume_as;
use super::{AccessClients, CallError};
use crate::failure::Class;
use crate::onboard::keys::{KeyVault, KeyVaultError};
use crate::onboard::policy::{session_policy, ReadExtras};
use crate::onboard::{OnboardingError, Onboardings};
use crate::registry::{AccessMode, Connection};
use crate::store::{Store, StoreError};
use aws_sdk_s3::config::Credentials;

/// What curlew reaches a connection's bucket for: the session's name
/// (CloudTrail shows it to the customer) and its inline session policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPurpose {
    /// Reading deliveries: the connection's bucket and prefix only.
    Ingest,
    /// The sweep: the same, plus Organizations and the billing APIs' reads.
    Sweep,
    /// The daily AWS Health poll: the organizational view's reads.
    HealthPoll,
}

impl SessionPurpose {
    fn session_name(self) -> &'static str {
        match self {
            SessionPurpose::Ingest => "curlew-ingest",
            SessionPurpose::Sweep => "curlew-sweep",
            SessionPurpose::HealthPoll => "curlew-health",
        }
    }

    /// The session policy for `conn` (see [`crate::onboard::policy::session_policy`]).
    pub fn policy(self, conn: &Connection) -> serde_json::Value {
        let extras = match self {
            SessionPurpose::Ingest => ReadExtras::default(),
            SessionPurpose::Sweep => ReadExtras {
                organizations: true,
                report_definitions: true,
                data_exports: true,
                health: false,
            },
            SessionPurpose::HealthPoll => ReadExtras {
                health: true,
                ..ReadExtras::default()
            },
        };
        session_policy(
            partition_of(conn.role_arn.as_deref()),
            &conn.bucket,
            &conn.prefix,
            extras,
        )
    }
}

/// The partition of an ARN (`aws` when there is none).
pub fn partition_of(arn: Option<&str>) -> &str {
    arn.and_then(|a| a.split(':').nth(1))
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connection {tenant}/{payer} has no role ARN; run the onboarding again")]
    NoRole { tenant: String, payer: String },
    #[error("connection {tenant}/{payer}: {source}")]
    Onboarding {
        tenant: String,
        payer: String,
        source: OnboardingError,
    },
    #[error("connection {tenant}/{payer}: {source}")]
    Keys {
        tenant: String,
        payer: String,
        source: KeyVaultError,
    },
    #[error("connection {tenant}/{payer}: assuming the customer's role failed: {source}; run `curlew check` for the cause")]
    Assume {
        tenant: String,
        payer: String,
        /// Boxed: a CallError carries status and region, and every `Result`
        /// of the session would otherwise be as large.
        source: Box<CallError>,
    },
}

impl SessionError {
    /// Throttling, network trouble and store hiccups are transient; a missing
    /// role, key or External ID, or a denied assume, is the connection's
    /// problem ([`Class::Access`]: the sweep looks at it).
    pub fn class(&self) -> Class {
        match self {
            SessionError::Assume { source, .. } if source.cause.is_transient() => Class::Transient,
            SessionError::Onboarding {
                source: OnboardingError::Store(e),
                ..
            }
            | SessionError::Keys {
                source: KeyVaultError::Store(e),
                ..
            } => e.class(),
            _ => Class::Access,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }

    /// Whether curlew's own store refused to hand over the tenant's External
    /// ID or stored keys (IAM, the secrets KMS key): the caller's or the
    /// deployment's problem, not the connection's.
    pub fn is_own_store_refusal(&self) -> bool {
        matches!(
            self,
            SessionError::Onboarding {
                source: OnboardingError::Store(StoreError::Access { .. }),
                ..
            } | SessionError::Keys {
                source: KeyVaultError::Store(StoreError::Access { .. }),
                ..
            }
        )
    }
}

/// An S3 client that reads `conn`'s billing bucket. The External ID and the
/// keys are read from curlew's own store (`own`, `own_prefix`).
pub async fn source_client(
    clients: &AccessClients,
    conn: &Connection,
    own: &Store,
    own_prefix: &str,
) -> Result<aws_sdk_s3::Client, SessionError> {
    let creds = source_credentials(clients, conn, own, own_prefix, SessionPurpose::Ingest).await?;
    Ok(clients.s3_with(creds.as_ref(), None))
}

/// The credentials that read `conn`'s bucket for `purpose`: `None` means
/// curlew's own (bucket-policy mode). A role session is scoped to the
/// purpose by its session policy.
pub async fn source_credentials(
    clients: &AccessClients,
    conn: &Connection,
    own: &Store,
    own_prefix: &str,
    purpose: SessionPurpose,
) -> Result<Option<Credentials>, SessionError> {
    let (tenant, payer) = (conn.tenant.clone(), conn.payer_account.clone());
    let creds = match conn.access_mode {
        AccessMode::BucketPolicy => return Ok(None),
        AccessMode::CrossAccountRole => {
            let role = conn
                .role_arn
                .as_deref()
                .ok_or_else(|| SessionError::NoRole {
                    tenant: tenant.clone(),
                    payer: payer.clone(),
                })?;
            let external_id = Onboardings::new(own.clone(), own_prefix)
                .external_id(&conn.tenant)
                .await
                .map_err(|source| SessionError::Onboarding {
                    tenant: tenant.clone(),
                    payer: payer.clone(),
                    source,
                })?;
            let policy = purpose.policy(conn).to_string();
            assume_as(
                clients,
                role,
                Some(&external_id),
                purpose.session_name(),
                Some(policy),
            )
            .await
            .map_err(|source| SessionError::Assume {
                tenant,
                payer,
                source: Box::new(source),
            })?
        }
        AccessMode::AccessKeys => {
            let k = KeyVault::new(own.clone(), own_prefix)
                .get(&conn.tenant, &conn.payer_account)
                .await
                .map_err(|source| SessionError::Keys {
                    tenant,
                    payer,
                    source,
                })?;
            Credentials::new(
                k.access_key_id,
                k.secret_access_key,
                None,
                None,
                "curlew-access-keys",
            )
        }
    };
    Ok(Some(creds))
}
