//! The one ingestion pipeline, plan -> part -> commit, called by `curlew
//! ingest` (a task pool) and by the cur-ingest Lambdas (SNS/SQS between the
//! steps) alike: transport differs, logic does not.
//!
//! - [`plan_delivery`] decides everything about a delivery under a [`Scope`]
//!   (the connection's report, start date, UPDATING hold, newer than CURRENT,
//!   keys inside the prefix, a file cap) and gives a versioned [`Plan`];
//! - [`run_job`] reads one data file pinned to its planned ETag, stages it,
//!   and, when the staging listing shows the set complete, commits through
//!   [`commit_plan`] and publishes the notice via the outbox;
//! - every error carries its [`crate::failure::Class`]; permanent ones become
//!   one failure record and one `delivery-failed` notice.

mod announce;
mod commit;
mod error;
pub mod index;
mod notice;
mod park;
mod part;
mod plan;
mod worker;

/// The version of [`Plan`] and [`PartJob`] on the wire.
pub const WIRE_VERSION: u32 = 1;

pub use announce::{park_manifest, plan_manifest, AnnounceError, Announced};
pub use commit::{commit_plan, CommitResult, PeriodCommit};
pub use error::PipelineError;
pub(crate) use notice::outbox_sent;
pub use notice::{
    deliver_notices, failures, record_failure, AccountsChanged, CommittedNotice, ConnectionChanged,
    FailureRecord, Notice, Notify, NotifyFuture, Silent,
};
pub use park::{park, parked, unpark, Parked};
pub use part::{
    abandon, abandoned, clear_staging, load_part, process_part, stage_part, staged_indexes,
    OffPeriod, Part, PartJob, PartRead,
};
pub use plan::{
    load_plan, plan_delivery, stage_plan, within_prefix, Decision, Plan, Scope, Skip,
    DEFAULT_MAX_FILES,
};
pub use worker::{finish, finish_with, read_or_stage, run_job, stage_one, InHand, JobOutcome};
