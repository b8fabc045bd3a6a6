//! Helpers the CLI test binaries share (from the workspace's test kit).
#![allow(unused_imports)]

pub use curlew_testkit::upload::{upload_dir, walk};
