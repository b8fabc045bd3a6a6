//! The shared data sets beside the repository (`../shared/data`).

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding `testkit/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// `../shared/data/<rel>` beside the repository. In CI (CI=true) a missing file
/// is a failure; elsewhere the test is skipped with a message.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = workspace_root().join("../shared/data").join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "{} is missing; CI must have ../shared/data beside the repository",
            p.display()
        );
    }
    eprintln!(
        "skipping: {} not found (set up ../shared beside the repository)",
        p.display()
    );
    None
}
