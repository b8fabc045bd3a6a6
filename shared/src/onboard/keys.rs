//! Legacy access mode: an IAM user's access keys, accepted from the operator
//! (never from a request), kept only in curlew's own store under
//! `<prefix>secrets/tenant=T/<payer>.json`, never logged and never echoed back.
//! On S3 they are written under the deployment's customer-managed KMS key
//! (SSE-KMS, the stack's `SecretsKeyArn`): the store's bucket policy refuses
//! any other write to `secrets/`, and the key's policy lets only the functions
//! that read keys decrypt them.

use super::pending::check_tenant;
use crate::access::AccessKeys;
use crate::store::key_prefix;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    access_key_id: String,
    secret_access_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyVaultError {
    #[error("key store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tenant(#[from] super::OnboardingError),
    #[error("no access keys are stored for {tenant}/{payer}; add them with `curlew onboard keys`")]
    Missing { tenant: String, payer: String },
    #[error(
        "{key} is not an access key document; store the keys again with `curlew onboard keys`"
    )]
    Corrupt { key: String },
    #[error("access keys look wrong: {0}")]
    Invalid(&'static str),
    #[error("{0} is not a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>); give the curlew stack's SecretsKeyArn output, not a key id or alias: the store's bucket policy compares the ARN")]
    BadKmsKey(String),
}

/// Check the shape of a key pair before it is used or stored.
pub fn check_keys(k: &AccessKeys) -> Result<(), KeyVaultError> {
    let id = &k.access_key_id;
    if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyVaultError::Invalid(
            "the access key id must be 16-128 letters and digits (AKIA...)",
        ));
    }
    if id.starts_with("ASIA") {
        return Err(KeyVaultError::Invalid(
            "ASIA... keys are temporary session keys and expire; give an IAM user's long-term AKIA... key",
        ));
    }
    if k.secret_access_key.len() < 16 || k.secret_access_key.contains(char::is_whitespace) {
        return Err(KeyVaultError::Invalid(
            "the secret access key must be at least 16 characters, without spaces",
        ));
    }
    Ok(())
}

/// Access keys on curlew's store.
#[derive(Debug, Clone)]
pub struct KeyVault {
    store: Store,
    prefix: String,
    kms_key_arn: Option<String>,
}

/// Whether `arn` names a KMS key by ARN (what S3 records and the store's
/// bucket policy compares; an alias or bare key id would be refused there).
pub fn check_kms_key_arn(arn: &str) -> Result<(), KeyVaultError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "kms"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("key/")
            .is_some_and(|id| !id.is_empty());
    if ok {
        Ok(())
    } else {
        Err(KeyVaultError::BadKmsKey(arn.to_owned()))
    }
}

impl KeyVault {
    pub fn new(store: Store, prefix: &str) -> Self {
        KeyVault {
            store,
            prefix: key_prefix(prefix),
            kms_key_arn: None,
        }
    }

    /// Write keys encrypted under this customer-managed KMS key (SSE-KMS);
    /// reading needs nothing (S3 decrypts for a caller the key allows).
    pub fn with_kms_key(mut self, arn: Option<String>) -> Result<Self, KeyVaultError> {
        if let Some(a) = &arn {
            check_kms_key_arn(a)?;
        }
        self.kms_key_arn = arn;
        Ok(self)
    }

    fn key(&self, tenant: &str, payer: &str) -> String {
        format!("{}secrets/tenant={tenant}/{payer}.json", self.prefix)
    }

    /// Store (or replace) the keys of a connection.
    pub async fn put(
        &self,
        tenant: &str,
        payer: &str,
        keys: &AccessKeys,
    ) -> Result<(), KeyVaultError> {
        check_tenant(tenant)?;
        check_keys(keys)?;
        let doc = StoredKeys {
            access_key_id: keys.access_key_id.clone(),
            secret_access_key: keys.secret_access_key.clone(),
        };
        let body = serde_json::to_vec(&doc).expect("keys serialise");
        let key = self.key(tenant, payer);
        match &self.kms_key_arn {
            Some(arn) => self.store.put_encrypted(&key, body, arn).await?,
            None => self.store.put(&key, body).await?,
        };
        Ok(())
    }

    /// The keys of a connection.
    pub async fn get(&self, tenant: &str, payer: &str) -> Result<AccessKeys, KeyVaultError> {
        check_tenant(tenant)?;
        let key = self.key(tenant, payer);
        let bytes = match self.store.get_bytes(&key).await {
            Ok((_, b)) => b,
            Err(StoreError::NotFound { .. }) => {
                return Err(KeyVaultError::Missing {
                    tenant: tenant.to_owned(),
                    payer: payer.to_owned(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        // The parse error could quote the document: report only the key.
        let doc: StoredKeys =
            serde_json::from_slice(&bytes).map_err(|_| KeyVaultError::Corrupt { key })?;
        Ok(AccessKeys {
            access_key_id: doc.access_key_id,
            secret_access_key: doc.secret_access_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: &str, secret: &str) -> AccessKeys {
        AccessKeys {
            access_key_id: id.into(),
            secret_access_key: secret.into(),
        }
    }

    #[tokio::test]
    async fn keys_round_trip_and_bad_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let v = KeyVault::new(Store::local(dir.path()), "");
        let k = keys(
            "AKIAEXAMPLE123456789",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        v.put("acme", "111122223333", &k).await.unwrap();
        let back = v.get("acme", "111122223333").await.unwrap();
        assert_eq!(back.access_key_id, k.access_key_id);
        assert_eq!(back.secret_access_key, k.secret_access_key);
        assert!(!format!("{back:?}").contains("AKIA"));
        assert!(matches!(
            v.get("acme", "999999999999").await,
            Err(KeyVaultError::Missing { .. })
        ));
        for bad in [
            keys(
                "ASIAEXAMPLE123456789",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            keys("short", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            keys("AKIAEXAMPLE123456789", "has space in it 0123"),
        ] {
            let e = v.put("acme", "222233334444", &bad).await.unwrap_err();
            // The error names the problem, never the key material.
            let msg = e.to_string();
            assert!(
                !msg.contains("EXAMPLE") && !msg.contains("space in"),
                "{msg}"
            );
        }
        std::fs::write(
            dir.path().join("secrets/tenant=acme/111122223333.json"),
            "{oops",
        )
        .unwrap();
        let e = v.get("acme", "111122223333").await.unwrap_err();
        assert!(matches!(e, KeyVaultError::Corrupt { .. }));
    }
}
