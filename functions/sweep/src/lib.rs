//! The sweep Lambda: the schedule's event fans out one job per connection
//! (SNS -> SQS), and each job sweeps one connection with
//! `curlew::sweep::sweep_connection` (the code `curlew sweep` runs).

pub mod config;
pub mod handler;

pub use config::{Config, Deps};
