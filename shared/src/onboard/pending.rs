//! Pending onboardings: the tenant's External ID (one per tenant, minted on
//! its first onboarding) and single-use onboarding tokens, on curlew's own
//! store next to the connection registry:
//!
//! - `<prefix>onboarding/tenant=T/external-id.json`
//! - `<prefix>onboarding/tenant=T/token=<sha256 of token>.json`
//!
//! Tokens are stored by digest only. A token is redeemed by the first
//! CloudFormation stack that presents it (a conditional write); later requests
//! of that same stack (Update, a repeated Create) may present it again, any
//! other stack is refused.

use super::secret::{ExternalId, OnboardingToken, RngError};
use crate::store::key_prefix;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the operator said about the connection when starting it (all optional:
/// the customer's stack names bucket, prefix and report).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingHints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// The stack that redeemed a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub stack_id: String,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

/// One pending (or redeemed) onboarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOnboarding {
    pub tenant: String,
    #[serde(flatten)]
    pub hints: OnboardingHints,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed: Option<Redemption>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExternalIdDoc {
    tenant: String,
    external_id: ExternalId,
    created_at: DateTime<Utc>,
}

/// What a fresh onboarding hands to the operator (to pass to the customer).
#[derive(Debug)]
pub struct Started {
    pub external_id: ExternalId,
    pub token: OnboardingToken,
    pub pending: PendingOnboarding,
}

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("onboarding store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rng(#[from] RngError),
    #[error("tenant {tenant:?} has no External ID yet; run `curlew onboard new --tenant {tenant}` first")]
    NoExternalId { tenant: String },
    #[error("the onboarding token is not a pending onboarding of tenant {tenant:?}; start one with `curlew onboard new --tenant {tenant}`")]
    UnknownToken { tenant: String },
    #[error("the onboarding token of tenant {tenant:?} was already used by another stack; start a new onboarding with `curlew onboard new`")]
    TokenUsed { tenant: String },
    #[error("{key} is not an onboarding document ({problem})")]
    Corrupt { key: String, problem: String },
    #[error("tenant id {0:?} is not allowed: use 1-64 letters, digits, '-' or '_'")]
    BadTenant(String),
}

/// Tenant ids become key segments: keep them to a safe alphabet.
pub fn check_tenant(tenant: &str) -> Result<(), OnboardingError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(OnboardingError::BadTenant(tenant.to_owned()))
    }
}

/// Pending onboardings on a store, under `<prefix>onboarding/`.
#[derive(Debug, Clone)]
pub struct Onboardings {
    store: Store,
    prefix: String,
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> OnboardingError {
    OnboardingError::Corrupt {
        key: key.to_owned(),
        problem: e.to_string(),
    }
}

impl Onboardings {
    pub fn new(store: Store, prefix: &str) -> Self {
        Onboardings {
            store,
            prefix: key_prefix(prefix),
        }
    }

    fn external_id_key(&self, tenant: &str) -> String {
        format!("{}onboarding/tenant={tenant}/external-id.json", self.prefix)
    }

    fn token_key(&self, tenant: &str, token: &OnboardingToken) -> String {
        format!(
            "{}onboarding/tenant={tenant}/token={}.json",
            self.prefix,
            token.digest()
        )
    }

    /// The tenant's External ID.
    pub async fn external_id(&self, tenant: &str) -> Result<ExternalId, OnboardingError> {
        check_tenant(tenant)?;
        let key = self.external_id_key(tenant);
        match self.store.get_bytes(&key).await {
            Ok((_, bytes)) => {
                let doc: ExternalIdDoc =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(&key, e))?;
                Ok(doc.external_id)
            }
            Err(StoreError::NotFound { .. }) => Err(OnboardingError::NoExternalId {
                tenant: tenant.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's External ID, minted (and stored with put-if-absent) on
    /// first use; concurrent first uses agree on one.
    async fn external_id_or_mint(&self, tenant: &str) -> Result<ExternalId, OnboardingError> {
        match self.external_id(tenant).await {
            Err(OnboardingError::NoExternalId { .. }) => {}
            other => return other,
        }
        let doc = ExternalIdDoc {
            tenant: tenant.to_owned(),
            external_id: ExternalId::mint()?,
            created_at: Utc::now(),
        };
        let body = serde_json::to_vec_pretty(&doc).expect("document serialises");
        match self
            .store
            .put_if_absent(&self.external_id_key(tenant), body)
            .await
        {
            Ok(_) => Ok(doc.external_id),
            // Someone minted it first: theirs is the tenant's.
            Err(StoreError::PreconditionFailed { .. }) => self.external_id(tenant).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Start an onboarding: the tenant's External ID (minted if new) and a
    /// fresh single-use token bound to the tenant.
    pub async fn begin(
        &self,
        tenant: &str,
        hints: OnboardingHints,
    ) -> Result<Started, OnboardingError> {
        check_tenant(tenant)?;
        let external_id = self.external_id_or_mint(tenant).await?;
        let token = OnboardingToken::mint()?;
        let pending = PendingOnboarding {
            tenant: tenant.to_owned(),
            hints,
            created_at: Utc::now(),
            redeemed: None,
        };
        let body = serde_json::to_vec_pretty(&pending).expect("document serialises");
        self.store
            .put_if_absent(&self.token_key(tenant, &token), body)
            .await?;
        Ok(Started {
            external_id,
            token,
            pending,
        })
    }

    /// Redeem `token` for the stack `stack_id`: the first stack to present it
    /// owns it; the same stack may present it again (Update, a repeated
    /// request). Any other stack, or a token the tenant never had, is refused.
    pub async fn redeem(
        &self,
        tenant: &str,
        token: &OnboardingToken,
        stack_id: &str,
        request_id: &str,
    ) -> Result<PendingOnboarding, OnboardingError> {
        check_tenant(tenant)?;
        let key = self.token_key(tenant, token);
        let (meta, bytes) = match self.store.get_bytes(&key).await {
            Ok(x) => x,
            Err(StoreError::NotFound { .. }) => {
                return Err(OnboardingError::UnknownToken {
                    tenant: tenant.to_owned(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let mut p: PendingOnboarding =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&key, e))?;
        if p.tenant != tenant {
            return Err(OnboardingError::UnknownToken {
                tenant: tenant.to_owned(),
            });
        }
        match &p.redeemed {
            Some(r) if r.stack_id == stack_id => return Ok(p),
            Some(_) => {
                return Err(OnboardingError::TokenUsed {
                    tenant: tenant.to_owned(),
                })
            }
            None => {}
        }
        p.redeemed = Some(Redemption {
            stack_id: stack_id.to_owned(),
            request_id: request_id.to_owned(),
            at: Utc::now(),
        });
        let body = serde_json::to_vec_pretty(&p).expect("document serialises");
        match self.store.put_if_match(&key, body, &meta.etag).await {
            Ok(_) => Ok(p),
            // Another request redeemed it between our read and write: decide again.
            Err(StoreError::PreconditionFailed { .. }) => {
                Box::pin(self.redeem(tenant, token, stack_id, request_id)).await
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_single_use_per_stack_and_bound_to_the_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let o = Onboardings::new(Store::local(dir.path()), "svc");
        let a = o.begin("acme", OnboardingHints::default()).await.unwrap();
        let b = o.begin("acme", OnboardingHints::default()).await.unwrap();
        // One External ID per tenant; every onboarding gets its own token.
        assert_eq!(a.external_id, b.external_id);
        assert_ne!(a.token, b.token);
        assert_eq!(o.external_id("acme").await.unwrap(), a.external_id);
        let other = o.begin("globex", OnboardingHints::default()).await.unwrap();
        assert_ne!(other.external_id, a.external_id);

        let p = o
            .redeem("acme", &a.token, "stack-1", "req-1")
            .await
            .unwrap();
        assert_eq!(p.redeemed.unwrap().stack_id, "stack-1");
        // Same stack again (Update): fine. Another stack: refused.
        o.redeem("acme", &a.token, "stack-1", "req-2")
            .await
            .unwrap();
        assert!(matches!(
            o.redeem("acme", &a.token, "stack-2", "req-3").await,
            Err(OnboardingError::TokenUsed { .. })
        ));
        // Another tenant's token, or an unknown one: refused.
        assert!(matches!(
            o.redeem("globex", &a.token, "stack-9", "r").await,
            Err(OnboardingError::UnknownToken { .. })
        ));
        let forged = OnboardingToken::presented("cwt_forged");
        assert!(matches!(
            o.redeem("acme", &forged, "stack-9", "r").await,
            Err(OnboardingError::UnknownToken { .. })
        ));
        assert!(matches!(
            o.begin("../x", OnboardingHints::default()).await,
            Err(OnboardingError::BadTenant(_))
        ));
        // The store holds digests, never the token itself.
        let mut found = Vec::new();
        for e in walk(dir.path()) {
            found.push(std::fs::read_to_string(&e).unwrap_or_default());
            found.push(e.display().to_string());
        }
        assert!(found.iter().all(|s| !s.contains(a.token.expose())));
    }

    fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(p).unwrap().flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }
}
