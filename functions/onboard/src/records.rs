//! What the function keeps on curlew's store, next to the registry:
//!
//! - `<prefix>onboard-answers/<sha256(StackId|RequestId)>.json`: the answer
//!   to a request, written before it is sent, so a repeated delivery of the
//!   same request is answered the same way and does nothing else;
//! - `<prefix>onboard-claims/<sha256(StackId|RequestId)>.json`: which copy
//!   of a request is deciding it, until when (SNS and Lambda may deliver one
//!   request twice at once: the first to claim decides and answers, the
//!   other stays silent; a claim whose holder died is taken over once its
//!   time is up);
//! - `<prefix>onboard-bindings/tenant=T/<account>.json`: which stack (and
//!   which onboarding token, by digest) last created or updated connection
//!   T/account. Only that stack, presenting that token, may disconnect it.

use crate::request::PhysicalId;
use crate::response::Answer;
use chrono::{DateTime, Utc};
use curlew::onboard::secret::sha256_hex;
use curlew::onboard::OnboardingToken;
use curlew::store::key_prefix;
use curlew::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("onboard records: {0}")]
    Store(#[from] StoreError),
    #[error("{key} is not an onboard record ({problem})")]
    Corrupt { key: String, problem: String },
}

/// A copy of a request deciding it, until `until` (its invocation's deadline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub until: DateTime<Utc>,
}

/// What claiming a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// This copy decides it.
    Mine,
    /// Another copy is deciding it until then.
    Theirs(DateTime<Utc>),
}

/// Who may disconnect a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub stack_id: String,
    /// SHA-256 of the onboarding token the stack presented.
    pub token_digest: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Records {
    store: Store,
    prefix: String,
}

impl Records {
    pub fn new(store: Store, prefix: &str) -> Records {
        Records {
            store,
            prefix: key_prefix(prefix),
        }
    }

    fn answer_key(&self, stack_id: &str, request_id: &str) -> String {
        format!(
            "{}onboard-answers/{}.json",
            self.prefix,
            sha256_hex(format!("{stack_id}|{request_id}").as_bytes())
        )
    }

    fn claim_key(&self, stack_id: &str, request_id: &str) -> String {
        format!(
            "{}onboard-claims/{}.json",
            self.prefix,
            sha256_hex(format!("{stack_id}|{request_id}").as_bytes())
        )
    }

    /// Claim the request for this copy until `until` (put-if-absent; a
    /// claim past its time is taken over by a conditional replace).
    pub async fn claim(
        &self,
        stack_id: &str,
        request_id: &str,
        until: DateTime<Utc>,
    ) -> Result<Claimed, RecordError> {
        let key = self.claim_key(stack_id, request_id);
        let body = serde_json::to_vec_pretty(&Claim { until }).expect("claim serialises");
        match self.store.put_if_absent(&key, body.clone()).await {
            Ok(_) => return Ok(Claimed::Mine),
            Err(StoreError::PreconditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (meta, bytes) = match self.store.get_bytes(&key).await {
            Ok(x) => x,
            // Gone between the two calls: claim it afresh.
            Err(StoreError::NotFound { .. }) => {
                return Box::pin(self.claim(stack_id, request_id, until)).await
            }
            Err(e) => return Err(e.into()),
        };
        let held: Claim = serde_json::from_slice(&bytes).map_err(|e| RecordError::Corrupt {
            key: key.clone(),
            problem: e.to_string(),
        })?;
        if held.until > Utc::now() {
            return Ok(Claimed::Theirs(held.until));
        }
        match self.store.put_if_match(&key, body, &meta.etag).await {
            Ok(_) => Ok(Claimed::Mine),
            Err(StoreError::PreconditionFailed { .. }) => Ok(Claimed::Theirs(
                self.read::<Claim>(&key).await?.map_or(until, |c| c.until),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn binding_key(&self, id: &PhysicalId) -> String {
        format!(
            "{}onboard-bindings/tenant={}/{}.json",
            self.prefix, id.tenant, id.account
        )
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, RecordError> {
        match self.store.get_bytes(key).await {
            Ok((_, bytes)) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| RecordError::Corrupt {
                        key: key.to_owned(),
                        problem: e.to_string(),
                    })
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The stored answer to a request, if it was answered before.
    pub async fn answer(
        &self,
        stack_id: &str,
        request_id: &str,
    ) -> Result<Option<Answer>, RecordError> {
        self.read(&self.answer_key(stack_id, request_id)).await
    }

    /// Store `answer` unless the request already has one (put-if-absent);
    /// returns the answer that is stored, which is the one to send.
    pub async fn keep_answer(&self, answer: &Answer) -> Result<Answer, RecordError> {
        let key = self.answer_key(&answer.stack_id, &answer.request_id);
        let body = serde_json::to_vec_pretty(answer).expect("answer serialises");
        match self.store.put_if_absent(&key, body).await {
            Ok(_) => Ok(answer.clone()),
            Err(StoreError::PreconditionFailed { .. }) => match self.read(&key).await? {
                Some(earlier) => Ok(earlier),
                None => Ok(answer.clone()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Record that `stack_id`, presenting `token`, owns connection `id`.
    pub async fn bind(
        &self,
        id: &PhysicalId,
        stack_id: &str,
        token: &OnboardingToken,
    ) -> Result<(), RecordError> {
        let b = Binding {
            stack_id: stack_id.to_owned(),
            token_digest: token.digest(),
            at: Utc::now(),
        };
        let body = serde_json::to_vec_pretty(&b).expect("binding serialises");
        self.store.put(&self.binding_key(id), body).await?;
        Ok(())
    }

    /// Whether `stack_id` presenting `token` is the owner of connection `id`.
    pub async fn owns(
        &self,
        id: &PhysicalId,
        stack_id: &str,
        token: &OnboardingToken,
    ) -> Result<bool, RecordError> {
        let b: Option<Binding> = self.read(&self.binding_key(id)).await?;
        Ok(b.is_some_and(|b| b.stack_id == stack_id && b.token_digest == token.digest()))
    }
}
