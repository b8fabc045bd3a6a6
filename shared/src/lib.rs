//! curlew: the AWS billing engine. Discovery of CUR / CUR 2.0 / FOCUS
//! deliveries, exact parsing and rollups, and the revision ledger.
//!
//! See ARCHITECTURE.md at the repository root for the code map and invariants.

pub mod access;
pub mod charge;
pub mod commitments;
pub mod diff;
pub mod dimensions;
pub mod discover;
pub mod export;
pub mod failure;
pub mod fields;
pub mod focus;
pub mod gc;
pub mod health;
pub mod ingest;
pub mod ledger;
pub mod log_policy;
pub mod manifest;
pub mod migrate;
pub mod money;
pub mod onboard;
pub mod output;
pub mod pipeline;
pub mod read;
pub mod registry;
pub mod report;
pub mod rollup;
pub mod sample;
pub mod sql;
pub mod store;
pub mod sweep;
