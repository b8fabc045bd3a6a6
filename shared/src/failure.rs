//! The failure policy, in one place: every error type of the pipeline says
//! which [`Class`] it is (as ripgrep's errors say `is_io`), and the callers —
//! `curlew ingest`, the planner and the part worker — act on the class alone.
//!
//! - [`Class::Transient`]: throttling, 5xx, timeouts, a file not visible yet,
//!   a lost conditional write. Retried (SQS redelivery, or the next run).
//! - [`Class::Permanent`]: bad data, a bad manifest, a scope violation. Never
//!   retried blindly: recorded once in the store (file, place, what to do) and
//!   announced once as `delivery-failed`.
//! - [`Class::Access`]: the customer's account refused us (AccessDenied, KMS,
//!   bucket gone, wrong region). The connection is marked for the sweep and
//!   the announcement is parked, so nothing AWS will not deliver again is lost.

use serde::{Deserialize, Serialize};

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Transient,
    Permanent,
    Access,
}

impl Class {
    pub fn is_retryable(self) -> bool {
        self == Class::Transient
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Class::Transient => "transient",
            Class::Permanent => "permanent",
            Class::Access => "access",
        })
    }
}
