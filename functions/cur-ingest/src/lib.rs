//! The ingestion Lambdas, thin over [`curlew::pipeline`]: `cur-ingest-plan`
//! turns an announced manifest into a stored plan and one SNS part job per
//! data file; `cur-ingest-part` runs those jobs from SQS (the worker that
//! completes the set commits). Handlers are plain async functions that tests
//! call with events from `events/`.

pub mod config;
pub mod part;
pub mod plan;

pub use config::{Config, Deps};
