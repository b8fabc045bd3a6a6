//! `curlew-testkit`: the helpers every test binary of the workspace shares
//! (a dev-dependency only), instead of files copied or `#[path]`-included.
//!
//! - [`moto`]: one moto_server per test binary on 127.0.0.1, started on first
//!   use, stopped when the process exits; S3 clients and buckets on it.
//! - [`aws`]: SDK config, SNS topics and SQS queues on moto.
//! - [`aws_mocks`]: aws-smithy-mocks rules for what moto cannot show.
//! - [`events`]: the files of `events/`.
//! - [`data`]: `../shared/data` (a failure under CI=true when missing).
//! - [`duckdb`]: DuckDB queries over billing files and curlew's output.
//! - [`focus`]: the FinOps Foundation's focus_validator on a rollup.
//! - [`upload`]: walking and uploading local trees.
//! - [`net`]: a hanging endpoint on 127.0.0.1.
//! - [`template`]: infra/template.yaml decoded, its intrinsics resolved.

pub mod aws;
pub mod aws_mocks;
pub mod data;
pub mod duckdb;
pub mod events;
pub mod focus;
pub mod moto;
pub mod net;
pub mod template;
pub mod upload;

/// A two-worker runtime for tests that drive async code from a sync test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
