//! Pending onboardings: the tenant's External ID (one per tenant, minted on
//! its first onboarding) and single-use onboarding tokens, on curlew's own
//! store next to the connection registry:
//!
//! - `<prefix>onboarding/tenant=T/external-id.json`
//! - `<prefix>onboarding/tenant=T/token=<sha256 of token>.json`
//!
//! Tokens are stored by digest only. A token is redeemed by the first
//! CloudFormation stack that presents it *and succeeds* (a conditional write
//! after the access proof: a stack that fails and rolls back leaves it for
//! the customer's next try); later requests of that same stack (Update, a
//! repeated Create) may present it again, any other stack is refused. A
//! token not yet redeemed expires ([`DEFAULT_TOKEN_TTL_DAYS`]), and one
//! started for a payer account (`--payer-account`) is refused to a stack of
//! any other account: a leaked template cannot attach another account.

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

/// Days an onboarding token can be redeemed (`curlew onboard new --token-ttl-days`).
pub const DEFAULT_TOKEN_TTL_DAYS: i64 = 7;

/// One pending (or redeemed) onboarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOnboarding {
    pub tenant: String,
    #[serde(flatten)]
    pub hints: OnboardingHints,
    pub created_at: DateTime<Utc>,
    /// Not redeemed by then: refused. (Documents from before expiry existed
    /// expire [`DEFAULT_TOKEN_TTL_DAYS`] after `created_at`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed: Option<Redemption>,
    /// When the stack that redeemed it was deleted (its connection
    /// disconnected): `curlew gc` removes the token [`RETIRED_KEEP_DAYS`] later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<DateTime<Utc>>,
}

/// Days an unredeemed token stays after it expired (so a stack deployed at
/// the last minute is still told "expired", not "unknown").
pub const UNREDEEMED_KEEP_DAYS: i64 = 1;
/// Days a retired token stays after its stack's Delete: as long as the stored
/// CloudFormation answers (a redelivered Delete is answered from those).
pub const RETIRED_KEEP_DAYS: i64 = 7;

impl PendingOnboarding {
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
            .unwrap_or(self.created_at + chrono::Duration::days(DEFAULT_TOKEN_TTL_DAYS))
    }
}

/// Who presents a token: a CloudFormation stack, in its account.
#[derive(Debug, Clone, Copy)]
pub struct Presenter<'a> {
    pub stack_id: &'a str,
    pub request_id: &'a str,
    /// The stack's account (the payer being connected).
    pub account: &'a str,
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
    #[error("the onboarding token of tenant {tenant:?} expired at {expired_at} before a stack used it; start a new onboarding with `curlew onboard new`")]
    TokenExpired {
        tenant: String,
        expired_at: DateTime<Utc>,
    },
    #[error("the onboarding token of tenant {tenant:?} was issued for another payer account than this stack's; deploy the template in the account it was made for, or start a new onboarding with `curlew onboard new --payer-account <this account>`")]
    TokenOtherAccount { tenant: String },
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
    /// fresh single-use token bound to the tenant (and to
    /// `hints.payer_account` when given), valid [`DEFAULT_TOKEN_TTL_DAYS`].
    pub async fn begin(
        &self,
        tenant: &str,
        hints: OnboardingHints,
    ) -> Result<Started, OnboardingError> {
        self.begin_with_ttl(
            tenant,
            hints,
            chrono::Duration::days(DEFAULT_TOKEN_TTL_DAYS),
        )
        .await
    }

    /// [`Onboardings::begin`] with a token valid for `ttl`.
    pub async fn begin_with_ttl(
        &self,
        tenant: &str,
        hints: OnboardingHints,
        ttl: chrono::Duration,
    ) -> Result<Started, OnboardingError> {
        check_tenant(tenant)?;
        let external_id = self.external_id_or_mint(tenant).await?;
        let token = OnboardingToken::mint()?;
        let now = Utc::now();
        let pending = PendingOnboarding {
            tenant: tenant.to_owned(),
            hints,
            created_at: now,
            expires_at: Some(now + ttl),
            redeemed: None,
            retired_at: None,
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

    /// The token's document and its version, if `by` may redeem it: a
    /// pending, unexpired onboarding of `tenant` for `by`'s account, or one
    /// `by`'s own stack redeemed (an Update, a repeat: expiry no longer
    /// applies). Nothing is written: a stack checks before its access proof
    /// and redeems only after it.
    async fn checked(
        &self,
        tenant: &str,
        token: &OnboardingToken,
        by: Presenter<'_>,
    ) -> Result<(PendingOnboarding, String), OnboardingError> {
        check_tenant(tenant)?;
        let key = self.token_key(tenant, token);
        let unknown = || OnboardingError::UnknownToken {
            tenant: tenant.to_owned(),
        };
        let (meta, bytes) = match self.store.get_bytes(&key).await {
            Ok(x) => x,
            Err(StoreError::NotFound { .. }) => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let p: PendingOnboarding = serde_json::from_slice(&bytes).map_err(|e| corrupt(&key, e))?;
        if p.tenant != tenant {
            return Err(unknown());
        }
        match &p.redeemed {
            Some(r) if r.stack_id == by.stack_id => return Ok((p, meta.etag)),
            Some(_) => {
                return Err(OnboardingError::TokenUsed {
                    tenant: tenant.to_owned(),
                })
            }
            None => {}
        }
        if p.hints
            .payer_account
            .as_deref()
            .is_some_and(|a| a != by.account)
        {
            return Err(OnboardingError::TokenOtherAccount {
                tenant: tenant.to_owned(),
            });
        }
        if Utc::now() >= p.expires_at() {
            return Err(OnboardingError::TokenExpired {
                tenant: tenant.to_owned(),
                expired_at: p.expires_at(),
            });
        }
        Ok((p, meta.etag))
    }

    /// Delete every token document no stack redeemed that expired more than
    /// [`UNREDEEMED_KEEP_DAYS`] before `now`, and every one retired more
    /// than [`RETIRED_KEEP_DAYS`] before `now`; returns how many. Each is
    /// re-read just before its delete, so one redeemed meanwhile stays.
    pub async fn remove_stale(&self, now: DateTime<Utc>) -> Result<usize, OnboardingError> {
        let expired_before = now - chrono::Duration::days(UNREDEEMED_KEEP_DAYS);
        let retired_before = now - chrono::Duration::days(RETIRED_KEEP_DAYS);
        let root = format!("{}onboarding/", self.prefix);
        let mut removed = 0;
        for o in self.store.list(&root).await? {
            let name = o.key.rsplit('/').next().unwrap_or_default();
            if !(name.starts_with("token=") && name.ends_with(".json")) {
                continue;
            }
            let bytes = match self.store.get_bytes(&o.key).await {
                Ok((_, b)) => b,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let p: PendingOnboarding =
                serde_json::from_slice(&bytes).map_err(|e| corrupt(&o.key, e))?;
            let lapsed = p.redeemed.is_none() && p.expires_at() < expired_before;
            let retired = p.retired_at.is_some_and(|t| t < retired_before);
            if lapsed || retired {
                self.store.delete(&o.key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Whether `by` may redeem `token` (see [`Onboardings::redeem`]); writes nothing.
    pub async fn check(
        &self,
        tenant: &str,
        token: &OnboardingToken,
        by: Presenter<'_>,
    ) -> Result<PendingOnboarding, OnboardingError> {
        Ok(self.checked(tenant, token, by).await?.0)
    }

    /// Redeem `token` for `by`'s stack: the first stack to redeem it owns
    /// it; the same stack may present it again (Update, a repeated request).
    /// Any other stack, an expired token, one issued for another payer
    /// account, or a token the tenant never had, is refused.
    pub async fn redeem(
        &self,
        tenant: &str,
        token: &OnboardingToken,
        by: Presenter<'_>,
    ) -> Result<PendingOnboarding, OnboardingError> {
        let (mut p, etag) = self.checked(tenant, token, by).await?;
        if p.redeemed.is_some() {
            return Ok(p);
        }
        p.redeemed = Some(Redemption {
            stack_id: by.stack_id.to_owned(),
            request_id: by.request_id.to_owned(),
            at: Utc::now(),
        });
        let body = serde_json::to_vec_pretty(&p).expect("document serialises");
        match self
            .store
            .put_if_match(&self.token_key(tenant, token), body, &etag)
            .await
        {
            Ok(_) => Ok(p),
            // Another request redeemed it between our read and write: decide again.
            Err(StoreError::PreconditionFailed { .. }) => {
                Box::pin(self.redeem(tenant, token, by)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Mark `token` retired: `stack_id`, which redeemed it, was deleted.
    /// A token redeemed by another stack, or not at all, is left as it is.
    pub async fn retire(
        &self,
        tenant: &str,
        token: &OnboardingToken,
        stack_id: &str,
    ) -> Result<(), OnboardingError> {
        check_tenant(tenant)?;
        let key = self.token_key(tenant, token);
        let (meta, bytes) = match self.store.get_bytes(&key).await {
            Ok(x) => x,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut p: PendingOnboarding =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&key, e))?;
        if p.redeemed.as_ref().is_none_or(|r| r.stack_id != stack_id) || p.retired_at.is_some() {
            return Ok(());
        }
        p.retired_at = Some(Utc::now());
        let body = serde_json::to_vec_pretty(&p).expect("document serialises");
        match self.store.put_if_match(&key, body, &meta.etag).await {
            Ok(_) => Ok(()),
            Err(StoreError::PreconditionFailed { .. }) => {
                Box::pin(self.retire(tenant, token, stack_id)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Undo `stack_id`'s redemption of `token` (its stack failed after
    /// redeeming): the token is pending again for the customer's next try.
    /// A token redeemed by another stack, or not at all, is left as it is.
    pub async fn release(
        &self,
        tenant: &str,
        token: &OnboardingToken,
        stack_id: &str,
    ) -> Result<(), OnboardingError> {
        check_tenant(tenant)?;
        let key = self.token_key(tenant, token);
        let (meta, bytes) = match self.store.get_bytes(&key).await {
            Ok(x) => x,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut p: PendingOnboarding =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&key, e))?;
        if p.redeemed.as_ref().is_none_or(|r| r.stack_id != stack_id) {
            return Ok(());
        }
        p.redeemed = None;
        let body = serde_json::to_vec_pretty(&p).expect("document serialises");
        match self.store.put_if_match(&key, body, &meta.etag).await {
            Ok(_) => Ok(()),
            Err(StoreError::PreconditionFailed { .. }) => {
                Box::pin(self.release(tenant, token, stack_id)).await
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
            .redeem("acme", &a.token, by("stack-1", "req-1", "111122223333"))
            .await
            .unwrap();
        assert_eq!(p.redeemed.unwrap().stack_id, "stack-1");
        // Same stack again (Update): fine. Another stack: refused.
        o.redeem("acme", &a.token, by("stack-1", "req-2", "111122223333"))
            .await
            .unwrap();
        assert!(matches!(
            o.redeem("acme", &a.token, by("stack-2", "req-3", "111122223333"))
                .await,
            Err(OnboardingError::TokenUsed { .. })
        ));
        // Another tenant's token, or an unknown one: refused.
        assert!(matches!(
            o.redeem("globex", &a.token, by("stack-9", "r", "111122223333"))
                .await,
            Err(OnboardingError::UnknownToken { .. })
        ));
        let forged = OnboardingToken::presented("cwt_forged");
        assert!(matches!(
            o.redeem("acme", &forged, by("stack-9", "r", "111122223333"))
                .await,
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

    fn by<'a>(stack_id: &'a str, request_id: &'a str, account: &'a str) -> Presenter<'a> {
        Presenter {
            stack_id,
            request_id,
            account,
        }
    }

    #[tokio::test]
    async fn a_token_is_bound_to_its_payer_and_expires_unless_redeemed() {
        let dir = tempfile::tempdir().unwrap();
        let o = Onboardings::new(Store::local(dir.path()), "svc");
        let hints = OnboardingHints {
            payer_account: Some("111122223333".into()),
            ..OnboardingHints::default()
        };
        let a = o.begin("acme", hints.clone()).await.unwrap();
        assert_eq!(
            a.pending.expires_at(),
            a.pending.created_at + chrono::Duration::days(DEFAULT_TOKEN_TTL_DAYS)
        );
        // A leaked template deployed in another account: refused, not redeemed.
        assert!(matches!(
            o.redeem("acme", &a.token, by("stack-x", "r", "444455556666"))
                .await,
            Err(OnboardingError::TokenOtherAccount { .. })
        ));
        // Checking writes nothing; the payer's own stack then redeems it.
        o.check("acme", &a.token, by("stack-1", "r", "111122223333"))
            .await
            .unwrap();
        o.check("acme", &a.token, by("stack-2", "r", "111122223333"))
            .await
            .unwrap();
        o.redeem("acme", &a.token, by("stack-1", "r", "111122223333"))
            .await
            .unwrap();
        // Released by a stack that failed after redeeming: another stack may
        // redeem it; a release by a stack that does not hold it does nothing.
        o.release("acme", &a.token, "stack-2").await.unwrap();
        assert!(matches!(
            o.check("acme", &a.token, by("stack-2", "r", "111122223333"))
                .await,
            Err(OnboardingError::TokenUsed { .. })
        ));
        o.release("acme", &a.token, "stack-1").await.unwrap();
        o.redeem("acme", &a.token, by("stack-2", "r", "111122223333"))
            .await
            .unwrap();

        // Expired before any stack redeemed it: refused.
        let old = o
            .begin_with_ttl("acme", hints.clone(), chrono::Duration::seconds(-1))
            .await
            .unwrap();
        assert!(matches!(
            o.redeem("acme", &old.token, by("stack-3", "r", "111122223333"))
                .await,
            Err(OnboardingError::TokenExpired { .. })
        ));
        // Redeemed, then expired: its own stack (an Update months later) is
        // still let through.
        let brief = o
            .begin_with_ttl("acme", hints, chrono::Duration::milliseconds(300))
            .await
            .unwrap();
        o.redeem("acme", &brief.token, by("stack-4", "r", "111122223333"))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        o.redeem("acme", &brief.token, by("stack-4", "r2", "111122223333"))
            .await
            .unwrap();
        // A document from before expiry existed expires 7 days after creation.
        let legacy: PendingOnboarding =
            serde_json::from_str(r#"{"tenant":"acme","created_at":"2020-01-01T00:00:00Z"}"#)
                .unwrap();
        assert_eq!(
            legacy.expires_at().to_rfc3339(),
            "2020-01-08T00:00:00+00:00"
        );
    }

    #[tokio::test]
    async fn expired_unredeemed_tokens_are_removed_and_redeemed_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path());
        let o = Onboardings::new(store.clone(), "svc");
        let week = chrono::Duration::days(7);
        let used = o
            .begin_with_ttl(
                "acme",
                OnboardingHints::default(),
                chrono::Duration::seconds(1),
            )
            .await
            .unwrap();
        o.redeem("acme", &used.token, by("stack-1", "r", "111122223333"))
            .await
            .unwrap();
        let lapsed = o
            .begin_with_ttl("acme", OnboardingHints::default(), -week)
            .await
            .unwrap();
        let fresh = o.begin("acme", OnboardingHints::default()).await.unwrap();
        let removed =
            crate::gc::gc_onboarding(&store, "svc", Utc::now() + chrono::Duration::hours(1))
                .await
                .unwrap();
        assert_eq!(removed, 1);
        assert!(matches!(
            o.check("acme", &lapsed.token, by("s", "r", "111122223333"))
                .await,
            Err(OnboardingError::UnknownToken { .. })
        ));
        // The redeemed one (expired, but its stack will present it again)
        // and the fresh one stay, and so does the External ID.
        o.redeem("acme", &used.token, by("stack-1", "r2", "111122223333"))
            .await
            .unwrap();
        o.check("acme", &fresh.token, by("s", "r", "111122223333"))
            .await
            .unwrap();
        o.external_id("acme").await.unwrap();

        // Its stack deleted: retired (only by that stack), removed a week later.
        o.retire("acme", &used.token, "stack-2").await.unwrap();
        o.retire("acme", &used.token, "stack-1").await.unwrap();
        let week_on = Utc::now() + chrono::Duration::days(RETIRED_KEEP_DAYS);
        let removed = crate::gc::gc_onboarding(&store, "svc", week_on - chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(removed, 0, "retired less than a week ago");
        let removed = crate::gc::gc_onboarding(&store, "svc", week_on + chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(
            removed, 1,
            "the retired one (the fresh one expired less than a day ago)"
        );
        assert!(matches!(
            o.check("acme", &used.token, by("stack-1", "r3", "111122223333"))
                .await,
            Err(OnboardingError::UnknownToken { .. })
        ));
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
