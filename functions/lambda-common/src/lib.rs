//! `curlew-lambda`: the Lambda glue every curlew function shares, so that no
//! function writes its own — event envelopes ([`announced`], [`envelope`]),
//! batch item failures ([`batch`]), logging ([`logging`]), one SDK set-up
//! ([`sdk`]), environment settings ([`env`]) and SNS publishing ([`publish`]).
//! Lambda-only types stay here, out of the `curlew` crate.

pub mod announced;
pub mod batch;
pub mod env;
pub mod envelope;
pub mod logging;
pub mod publish;
pub mod sdk;
