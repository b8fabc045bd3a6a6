//! DuckDB (the Python package `./scripts/test` installs) as an independent
//! reader of billing files and of curlew's output.

use std::process::Command;

/// Whether python3 can import duckdb. Under CI=true a missing duckdb is a
/// failure, not a skip.
pub fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("python3 with duckdb is required in CI (the test command installs it)");
        }
        eprintln!("skipping: python3 -c 'import duckdb' failed");
    }
    ok
}

/// The rows of `sql`, every value as text (`None` for NULL); `None` when
/// DuckDB is not installed outside CI.
pub fn query(sql: &str) -> Option<Vec<Vec<Option<String>>>> {
    if !available() {
        return None;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import duckdb, json, sys\nrows = duckdb.sql(sys.argv[1]).fetchall()\nprint(json.dumps([[None if v is None else str(v) for v in r] for r in rows]))",
        ])
        .arg(sql)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "duckdb: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("JSON rows"))
}

/// Run a statement for its effect (COPY ... TO ...).
pub fn execute(sql: &str) {
    query(sql);
}
