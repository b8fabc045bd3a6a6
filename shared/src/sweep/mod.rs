//! The sweep (issue 11): per connection, on a schedule, re-verify access
//! (bounded), diagnose what fails ([`diagnose`]) and keep the connection's
//! health, notifying on change only.

pub mod definition;
pub mod diagnose;
pub mod orgs;
pub mod reconcile;
mod run;
pub mod state;

pub use diagnose::{diagnose, remedy, HealthCause, Stage};
pub use run::{
    sweep_connection, Dispatch, DispatchFuture, LocalDispatch, SweepCtx, SweepError, SweepOutcome,
    DEFAULT_STALE_HOURS,
};
pub use state::{observe, Observation};
