//! The FinOps Foundation's FOCUS tools (PyPI focus_validator 1.0.0, with
//! focus-converter 1.0.0), installed by `./scripts/test` into a venv of their
//! own (`target/focus-venv`, or `CURLEW_FOCUS_VENV`): they pin old pandas,
//! numpy and pyarrow.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv's python, `None` when it is missing outside CI (a failure in CI).
pub fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("CURLEW_FOCUS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::data::workspace_root().join("target/focus-venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import focus_validator"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let how = "./scripts/test installs it: python3 -m venv target/focus-venv && target/focus-venv/bin/pip install 'focus-converter==1.0.0' 'multimethod<1.11' 'click<8.2'";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("focus_validator is required in CI; {how}");
    }
    eprintln!("skipping: no focus_validator venv ({how})");
    None
}

/// What the validator said of a rollup file: how many checks ran, and the
/// ids of those that failed.
#[derive(Debug)]
pub struct Validation {
    pub tests: u64,
    pub failed: Vec<String>,
}

/// Validate `rollup` (see testkit/support/focus_validate.py for how the
/// validator is run); `set` = `Some("Column=value")` overwrites that column
/// on the first row of the validated copy.
pub fn validate(python: &Path, rollup: &Path, set: Option<&str>) -> Validation {
    let script = crate::data::workspace_root().join("testkit/support/focus_validate.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(python).arg(rollup);
    if let Some(s) = set {
        cmd.arg(s);
    }
    let out = cmd.output().expect("python3 runs");
    assert!(
        out.status.success(),
        "focus_validate.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    Validation {
        tests: v["tests"].as_u64().unwrap_or_default(),
        failed: v["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect(),
    }
}

/// Checks of focus_validator 1.0.0 that are wrong for FOCUS 1.0 itself:
/// they still require the pre-1.0 names FOCUS 1.0 renamed to ProviderName,
/// PublisherName, InvoiceIssuerName and ResourceId.
pub const PRE_1_0_NAMES: [&str; 4] = ["Provider", "Publisher", "InvoiceIssuer", "ResourceID"];

/// The validator failures a file of curlew's may show, sorted: `<column>_Required`
/// for each column it does not write (`not_written`, each a documented
/// deviation) and for the validator's pre-1.0 names. Anything else is a real failure.
pub fn allowed_failures(not_written: &[&str]) -> Vec<String> {
    let mut allowed: Vec<String> = not_written
        .iter()
        .chain(&PRE_1_0_NAMES)
        .map(|c| format!("{c}_Required"))
        .collect();
    allowed.sort();
    allowed
}

/// Run the FinOps Foundation's focus-converter 1.0.0 (from the venv of
/// `python`) on a legacy CUR CSV, writing `focus-{i}.parquet` files into
/// `out` without the source columns. Panics with its stderr when it fails.
pub fn convert_cur_csv(python: &Path, csv: &Path, out: &Path) {
    let run = Command::new(python.with_file_name("focus-converter"))
        .args([
            "convert",
            "--provider",
            "aws-cur",
            "--data-format",
            "csv",
            "--data-path",
        ])
        .arg(csv)
        .arg("--export-path")
        .arg(out)
        .args([
            "--no-export-include-source-columns",
            "--basename-template",
            "focus-{i}.parquet",
        ])
        .output()
        .expect("focus-converter runs");
    assert!(
        run.status.success(),
        "focus-converter: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}
