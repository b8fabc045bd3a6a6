//! The health-notify Lambda: an AWS Health event put on curlew's event bus
//! (by the customer's rule, `curlew onboard new --health`) becomes one
//! de-duplicated notice per connection it concerns, through
//! `curlew::health::process` (the code `curlew health replay` runs).

pub mod config;
pub mod handler;

pub use config::{Config, Deps};
