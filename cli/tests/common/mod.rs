//! Helpers the CLI test binaries share (from the workspace's test kit).
#![allow(unused_imports, dead_code)]

pub use curlew_testkit::upload::{upload_dir, walk};

use std::process::Command;

/// The `curlew` binary under test.
pub fn curlew() -> Command {
    Command::new(env!("CARGO_BIN_EXE_curlew"))
}

/// Run `cmd`, panicking with its output unless it succeeds; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("curlew runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{cmd:?} failed\nstdout:\n{out}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}
