//! Secrets minted by curlew: the tenant's External ID and the single-use
//! onboarding token. Both come from the OS RNG, never from a request, and
//! neither ever reaches a log: `Debug` and `Display` print a redaction.

use sha2::{Digest, Sha256};
use std::fmt;

/// Letters and digits: safe in IAM conditions, URLs, YAML and shells.
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of a minted External ID (AWS allows 2–1224; 40 random base-62
/// characters carry about 238 bits).
pub const EXTERNAL_ID_LEN: usize = 40;
const TOKEN_PREFIX: &str = "cwt_";
const TOKEN_RANDOM_LEN: usize = 40;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

/// `n` characters of [`ALPHABET`], uniformly, from the OS RNG (rejection sampling).
fn random_chars(n: usize) -> Result<String, RngError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(|e| RngError(e.to_string()))?;
        for b in buf {
            // 248 = 4 * 62: bytes at or above it would bias the draw.
            if b < 248 && out.len() < n {
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(out)
}

/// SHA-256 of `s` as lower-case hex (used to name stored tokens without storing them).
pub fn sha256_hex(s: &[u8]) -> String {
    Sha256::digest(s)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

macro_rules! secret_string {
    ($name:ident, $what:literal) => {
        #[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The secret itself: only for the request that needs it (an
            /// AssumeRole call, a template the customer deploys), never a log.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "(redacted)"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "(redacted)"))
            }
        }
    };
}

secret_string!(ExternalId, "ExternalId");
secret_string!(OnboardingToken, "OnboardingToken");

impl ExternalId {
    /// A new External ID from the OS RNG.
    pub fn mint() -> Result<ExternalId, RngError> {
        random_chars(EXTERNAL_ID_LEN).map(ExternalId)
    }

    /// Wrap a stored External ID (read back from curlew's own registry).
    pub fn from_stored(s: String) -> ExternalId {
        ExternalId(s)
    }
}

impl OnboardingToken {
    /// A new single-use onboarding token from the OS RNG.
    pub fn mint() -> Result<OnboardingToken, RngError> {
        Ok(OnboardingToken(format!(
            "{TOKEN_PREFIX}{}",
            random_chars(TOKEN_RANDOM_LEN)?
        )))
    }

    /// A token as presented by a request (a CloudFormation property). It is
    /// only ever compared with stored ones, never trusted by itself.
    pub fn presented(s: &str) -> OnboardingToken {
        OnboardingToken(s.to_owned())
    }

    /// The name a token is stored under: its SHA-256, so a listing of the
    /// store does not reveal usable tokens.
    pub fn digest(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn minted_ids_are_long_random_and_redacted() {
        let ids: HashSet<String> = (0..200)
            .map(|_| ExternalId::mint().unwrap().expose().to_owned())
            .collect();
        assert_eq!(ids.len(), 200, "200 mints, 200 distinct ids");
        for id in &ids {
            assert_eq!(id.len(), EXTERNAL_ID_LEN);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        // Every character of the alphabet shows up over 8,000 draws.
        let seen: HashSet<char> = ids.iter().flat_map(|s| s.chars()).collect();
        assert_eq!(seen.len(), 62);
        let id = ExternalId::mint().unwrap();
        assert!(!format!("{id:?} {id}").contains(id.expose()));
        let t = OnboardingToken::mint().unwrap();
        assert!(t.expose().starts_with("cwt_") && t.expose().len() == 44);
        assert!(!format!("{t:?} {t}").contains(t.expose()));
        assert_eq!(t.digest().len(), 64);
        assert_ne!(t.digest(), OnboardingToken::mint().unwrap().digest());
    }
}
