//! The ingestion Lambdas: `cur-ingest-plan` turns an announced manifest into
//! one SNS message per data file; `cur-ingest-part` processes those from SQS,
//! stages each part and, when it finds every part staged, commits the revision.
//! All logic is in plain async functions that tests call with events from `events/`.

pub mod announced;
pub mod config;
pub mod messages;
pub mod part;
pub mod plan;

pub use config::{Config, Deps};
