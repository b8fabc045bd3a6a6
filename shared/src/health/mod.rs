//! AWS Health events to de-duplicated notices (issue 12): the code the
//! health-notify Lambda and `curlew health replay` share.
//!
//! - [`detail`]: `HealthDetail` (every field optional) and what curlew takes
//!   from the envelope ([`Incoming`]).
//! - [`services`]: Health's service codes against the rollup's.
//! - [`route`]: the connections an event concerns (account index; spend for
//!   PUBLIC events without an account).
//! - [`dedupe`]: one record per (eventArn, account, communication) in
//!   curlew's store, written by conditional puts, with an expiry.
//! - [`process`]: route, merge pages, decide, publish ([`HealthNotice`]).
//! - [`poll`]: the optional poll of Health's organizational view (what a
//!   push missed), `SubscriptionRequiredException` a state, not a failure.

pub mod dedupe;
pub mod detail;
pub mod poll;
pub mod process;
pub mod route;
pub mod services;

pub use dedupe::{DedupeRecord, DEFAULT_TTL_DAYS};
pub use detail::{AffectedEntity, EventDescription, HealthDetail, Incoming};
pub use process::{process, HealthCtx, HealthNotice, Outcome, Processed};
pub use route::RoutedBy;

use crate::failure::Class;
use crate::ledger::LedgerError;
use crate::registry::RegistryError;
use crate::report::ReportError;
use crate::store::StoreError;

/// What can go wrong with one event.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Not a Health event curlew can use (no eventArn, not JSON...): logged,
    /// never retried.
    #[error("not a usable AWS Health event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("health dedupe record: {0}")]
    Store(#[from] StoreError),
    #[error("{key}: not a health dedupe record ({problem})")]
    Corrupt { key: String, problem: String },
    #[error("{key}: gave up after {tries} conflicting writes; the event is retried")]
    Contended { key: String, tries: u32 },
    #[error("publishing the health notice: {0}. What to do: nothing; the event is retried and publishes it")]
    Publish(String),
}

impl HealthError {
    /// Transient errors fail the invocation (EventBridge retries the event);
    /// permanent ones are logged and dropped.
    pub fn class(&self) -> Class {
        match self {
            HealthError::Malformed(_) | HealthError::Corrupt { .. } => Class::Permanent,
            HealthError::Registry(e) => e.class(),
            HealthError::Report(ReportError::Store(e)) => e.class(),
            HealthError::Report(ReportError::Ledger(LedgerError::Store(e))) => e.class(),
            HealthError::Report(ReportError::Ledger(LedgerError::Contended { .. })) => {
                Class::Transient
            }
            HealthError::Report(_) => Class::Permanent,
            HealthError::Store(e) => e.class(),
            HealthError::Contended { .. } | HealthError::Publish(_) => Class::Transient,
        }
    }
}
