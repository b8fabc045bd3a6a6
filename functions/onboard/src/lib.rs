//! The onboarding Lambda: CloudFormation's `Custom::CurlewConnection`
//! requests, delivered through SNS, turned into proven, registered
//! connections, and answered to CloudFormation exactly once.
//!
//! - `request`: the SNS record -> a checked request (stack ARN, properties, physical id);
//! - `response`: which ResponseURLs may be answered at all, the answer body
//!   (at most 4096 bytes), and the one HTTP PUT;
//! - `records`: stored answers (a repeated request gets the same answer) and
//!   which stack owns a connection;
//! - `prove`: the access proof seam and its retry;
//! - `watchdog`: FAILED before the deadline when the work takes too long;
//! - `handler`: Create / Update / Delete.
//!
//! All logic is in plain async functions that tests call with events from `events/`.

pub mod config;
pub mod handler;
pub mod prove;
pub mod records;
pub mod request;
pub mod response;
pub mod watchdog;

pub use config::{Config, Deps, Settings};
