//! `curlew export focus` end to end: the shared legacy CSV to FOCUS 1.2
//! Parquet with its exact totals printed, and a bad value refused in one
//! readable line naming file, line, column and what to do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn export(root: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_curlew"))
        .args(["export", "focus"])
        .arg(root)
        .arg("--out")
        .arg(out)
        .output()
        .expect("curlew runs")
}

fn files(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir(p) {
        for e in dir.flatten() {
            if e.path().is_dir() {
                out.extend(files(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Totals expected: Python `decimal` over the CSV (shared/tests/expected,
/// as shared/tests/real_data.rs asserts for the rollup).
#[test]
fn export_focus_writes_the_hive_layout_and_prints_exact_totals() {
    let Some(file) = curlew_testkit::data::shared_data(
        "cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv",
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(&file, root.path().join("cur.csv")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = export(root.path(), &out.path().join("focus"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("exported 1 input files to 1 FOCUS 1.2 files, 1281 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "2023-11: 1281 rows, BilledCost 1.6823086974, EffectiveCost 1.6823086974, ListCost 3.3561726949, ContractedCost 1.6823086974, ConsumedQuantity 128100.5804537469"
        ),
        "{stdout}"
    );
    assert_eq!(
        files(&out.path().join("focus")),
        [out.path().join("focus/billing_period=2023-11/cur.parquet")]
    );
}

#[test]
fn a_bad_value_is_one_line_naming_file_line_column_and_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("bad.csv"),
        "identity/LineItemId,bill/PayerAccountId,lineItem/UsageAccountId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UnblendedCost\n\
         a,111111111111,222222222222,Usage,2024-01-05T00:00:00Z,AmazonEC2,1.5\n\
         b,111111111111,222222222222,Usage,2024-01-05T00:00:00Z,AmazonEC2,12abc\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = export(root.path(), out.path());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for want in [
        "error: bad.csv, line 3, column lineItem/UnblendedCost",
        "12abc",
        "What to do: fix or remove that row",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(
        files(out.path()).is_empty(),
        "nothing left of a failed file: {:?}",
        files(out.path())
    );

    let o = export(&root.path().join("nope"), out.path());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is not a directory; point `curlew export focus` at"),
        "{err}"
    );
}

/// The pipeline's option: `curlew ingest ROOT --export-focus DIR` commits the
/// rollups and writes the same line-level FOCUS as `curlew export focus`
/// (same files, same bytes); an s3:// ROOT is refused before anything runs.
#[test]
fn ingest_with_export_focus_writes_what_export_focus_writes() {
    let Some(file) = curlew_testkit::data::shared_data(
        "cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv",
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(&file, root.path().join("cur.csv")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_curlew"))
        .arg("ingest")
        .arg(root.path())
        .arg("--store")
        .arg(out.path().join("store"))
        .arg("--export-focus")
        .arg(out.path().join("via-ingest"))
        .output()
        .expect("curlew runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("period 2023-11: committed"), "{stdout}");
    assert!(
        stdout.contains("2023-11: 1281 rows, BilledCost 1.6823086974"),
        "{stdout}"
    );
    let direct = export(root.path(), &out.path().join("direct"));
    assert!(direct.status.success());
    let rel = |base: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut v: Vec<_> = files(base)
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p.strip_prefix(base).unwrap().to_path_buf(), bytes)
            })
            .collect();
        v.sort();
        v
    };
    let (a, b) = (
        rel(&out.path().join("via-ingest")),
        rel(&out.path().join("direct")),
    );
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a == b, "ingest --export-focus and export focus differ");

    let s3 = Command::new(env!("CARGO_BIN_EXE_curlew"))
        .args(["ingest", "s3://bucket/cur", "--export-focus"])
        .arg(out.path().join("never"))
        .output()
        .expect("curlew runs");
    let err = String::from_utf8_lossy(&s3.stderr);
    assert!(!s3.status.success());
    assert!(err.contains("--export-focus reads a local copy"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");
    assert!(!out.path().join("never").exists());
}
