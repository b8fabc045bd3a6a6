//! The `curlew` binary end to end: demo, sample + ingest + report on disk, and
//! ingest/report/gc against S3 (moto_server on 127.0.0.1) through the real SDK.

mod common;
use curlew_testkit::moto;

use common::{curlew, run};

#[test]
fn demo_prints_a_cost_table_whose_total_matches_the_generator() {
    let out = run(curlew().args(["demo", "--rows", "5000"]));
    assert!(out.contains("BilledCost by ServiceName"), "{out}");
    let exact: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("exact total: "))
        .collect();
    let generator = out
        .lines()
        .find_map(|l| l.strip_prefix("generator's own total BilledCost: "))
        .unwrap();
    let generator = generator.split_whitespace().next().unwrap();
    assert!(!exact.is_empty());
    assert!(
        exact.iter().all(|t| *t == generator),
        "{exact:?} vs {generator}"
    );
}

#[test]
fn bad_arguments_say_what_to_do() {
    let o = curlew()
        .args(["report", "--measure", "bogus", "--store", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--measure \"bogus\" is not a measure; use billed"),
        "{err}"
    );
    let o = curlew()
        .args(["ingest", "/definitely/not/here"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a directory"));
    let dir = tempfile::tempdir().unwrap();
    // Five dimensions: refused in one line, nothing written.
    let o = curlew()
        .arg("ingest")
        .arg(dir.path())
        .args([
            "--tag",
            "a",
            "--tag",
            "b",
            "--tag",
            "c",
            "--cost-category",
            "d",
        ])
        .args(["--cost-category", "e", "--store"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("at most 4 tag and cost category dimensions; 5 were named"),
        "{err}"
    );
    for (flag, value, says) in [
        ("--payer", "12345", "is not an AWS account id"),
        ("--report", "my report", "is not a report name"),
        (
            "--cardinality",
            "huge",
            "--cardinality \"huge\" is not known; use low or high",
        ),
    ] {
        let o = curlew()
            .args(["sample", flag, value, "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
    }
    assert!(walk_all(dir.path()).is_empty(), "nothing is written");
}

fn walk_all(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    if dir.exists() {
        common::walk(dir)
    } else {
        Vec::new()
    }
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    walk_all(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// `curlew sample --payer P --report R` of 2024-01 into `src`, ingested into `out` for tenant acme.
fn sample_and_ingest(src: &std::path::Path, out: &std::path::Path) {
    let said = run(curlew()
        .args([
            "sample", "--rows", "300", "--payer", PAYER, "--report", "my-cur", "--out",
        ])
        .arg(src));
    assert!(said.contains("cur/my-cur/"), "{said}");
    let said = run(curlew()
        .arg("ingest")
        .arg(src)
        .args(["--tenant", "acme", "--store"])
        .arg(out));
    assert!(
        said.contains("my-cur (payer 123456789012) 2024-01"),
        "{said}"
    );
}

const PAYER: &str = "123456789012";

#[test]
fn sql_prints_the_query_over_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("billing"), dir.path().join("out"));
    let sql = |engine: &str| {
        let mut c = curlew();
        c.args(["sql", engine, "--tenant", "acme", "--store"])
            .arg(&out)
            .env("RUST_BACKTRACE", "1");
        c
    };
    // Nothing ingested yet: say what to do.
    let o = sql("duckdb").output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no index of tenant \"acme\"") && err.contains("run `curlew ingest"),
        "{err}"
    );
    sample_and_ingest(&src, &out);
    let index = out.join("tenant=acme/_current/symlink.txt");
    let listed = std::fs::read_to_string(&index).unwrap();
    assert!(
        listed.contains(&format!("payer={PAYER}/report=my-cur/revision=")),
        "{listed}"
    );
    let text = run(&mut sql("duckdb"));
    assert!(
        text.contains(&format!("read_text('{}')", index.display())),
        "{text}"
    );
    assert!(
        text.contains("CREATE OR REPLACE VIEW curlew_rollup"),
        "{text}"
    );
    // Athena reads S3 only: one line that says so, no backtrace.
    let o = sql("athena").output().unwrap();
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("local store") && err.contains("s3://bucket/prefix"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
}

/// Rewrite the store at `out` into the old layout: `billing_period=P/CURRENT`
/// naming `billing_period=P/revision=R/`, no index.
fn to_old_layout(out: &std::path::Path) {
    for cur in walk_all(out).into_iter().filter(|p| p.ends_with("CURRENT")) {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cur).unwrap()).unwrap();
        let rev = v["revision"].as_str().unwrap().to_owned();
        let source_dir = cur.parent().unwrap();
        let payer_dir = source_dir.parent().unwrap();
        let period_dir = payer_dir.parent().unwrap();
        std::fs::rename(
            source_dir.join(format!("revision={rev}")),
            period_dir.join(format!("revision={rev}")),
        )
        .unwrap();
        let rel = period_dir.strip_prefix(out).unwrap().display().to_string();
        let old = serde_json::json!({
            "revision": rev,
            "time": v["time"],
            "id": v["id"],
            "rollup_key": format!("{rel}/revision={rev}/rollup.parquet"),
            "summary_key": format!("{rel}/revision={rev}/summary.json"),
        });
        std::fs::write(period_dir.join("CURRENT"), old.to_string()).unwrap();
        std::fs::remove_dir_all(payer_dir).unwrap();
    }
    std::fs::remove_dir_all(out.join("tenant=acme/_current")).unwrap();
}

#[test]
fn migrate_dry_run_prints_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("billing"), dir.path().join("out"));
    sample_and_ingest(&src, &out);
    to_old_layout(&out);
    let migrate = |extra: &[&str]| {
        let mut c = curlew();
        c.args(["migrate", "--store"]).arg(&out).args(extra);
        run(&mut c)
    };
    let before = snapshot(&out);
    let dry = migrate(&["--dry-run"]);
    let line =
        format!("would move tenant=acme billing_period=2024-01 to payer={PAYER}/report=my-cur/");
    assert!(dry.contains(&line), "{dry}");
    assert!(
        dry.contains("dry run; nothing was written or deleted"),
        "{dry}"
    );
    assert!(before == snapshot(&out), "the dry run changed the store");
    let o = curlew()
        .args(["report", "--tenant", "acme", "--store"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success(), "the old layout is not read");

    let moved = migrate(&["--tenant", "acme"]);
    assert!(
        moved.contains(&format!(
            "moved tenant=acme billing_period=2024-01 to payer={PAYER}/report=my-cur/"
        )),
        "{moved}"
    );
    let report = run(curlew()
        .args([
            "report", "--tenant", "acme", "--by", "payer", "--format", "json", "--store",
        ])
        .arg(&out));
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json[0]["BillingAccountId"], PAYER);
    assert_eq!(json[0]["x_LineItemCount"], 300);
    let before = snapshot(&out);
    assert!(migrate(&[]).contains("nothing to migrate"));
    assert!(
        before == snapshot(&out),
        "a second migrate changed the store"
    );
}

#[test]
fn ingest_and_report_with_an_s3_store() {
    let m = moto::moto();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = moto::s3_client();
    let (src, out) = rt.block_on(async {
        (
            moto::new_bucket(&client, "cli-src").await,
            moto::new_bucket(&client, "cli-out").await,
        )
    });
    let local = tempfile::tempdir().unwrap();
    run(curlew()
        .args([
            "sample",
            "--format",
            "cur2-parquet",
            "--rows",
            "2000",
            "--files",
            "2",
            "--out",
        ])
        .arg(local.path()));
    // Upload the sample under a prefix that ends in '/' (AWS then writes a doubled slash in keys).
    rt.block_on(common::upload_dir(&client, &src, "billing/", local.path()));
    // The binary against moto: the standard AWS settings, nothing else.
    let on_s3 = |args: &[&str]| {
        let mut c = curlew();
        c.args(args)
            .env("AWS_ENDPOINT_URL", &m.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
        run(&mut c)
    };
    let store = format!("s3://{out}/curlew");
    let source = format!("s3://{src}/billing/");
    let ingest = [
        "ingest",
        source.as_str(),
        "--tenant",
        "acme",
        "--store",
        store.as_str(),
    ];
    let first = on_s3(&ingest);
    assert!(first.contains("period 2024-01: committed"), "{first}");
    let report = on_s3(&[
        "report", "--tenant", "acme", "--store", &store, "--by", "period", "--format", "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json[0]["BillingPeriod"], "2024-01");
    assert_eq!(json[0]["x_LineItemCount"], 2000);
    // The SQL follows the tenant's index on S3.
    let athena = on_s3(&["sql", "athena", "--tenant", "acme", "--store", &store]);
    assert!(
        athena.contains(&format!(
            "LOCATION 's3://{out}/curlew/tenant=acme/_current/';"
        )),
        "{athena}"
    );
    let duckdb = on_s3(&["sql", "duckdb", "--tenant", "acme", "--store", &store]);
    assert!(
        duckdb.contains(&format!(
            "read_text('s3://{out}/curlew/tenant=acme/_current/symlink.txt')"
        )),
        "{duckdb}"
    );
    // Re-running changes nothing; gc keeps what CURRENT names.
    assert!(on_s3(&ingest).contains("already committed"));
    assert!(on_s3(&["gc", "--tenant", "acme", "--store", &store]).contains("deleted 0 superseded"));
}

/// A grace shorter than a part job's retry horizon would let gc delete a
/// plan a retry still needs: refused in one readable line, nothing done.
#[test]
fn gc_refuses_a_grace_shorter_than_the_retry_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let o = curlew()
        .current_dir(dir.path())
        .args(["gc", "--tenant", "acme", "--grace-minutes", "60"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--grace-minutes") && err.contains("180"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn ingest_of_random_bytes_prints_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("billing"), dir.path().join("out"));
    std::fs::create_dir_all(&src).unwrap();
    // Deterministic noise (xorshift64): every byte value, no structure.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut body: Vec<u8> = (0..64 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect();
    body[0] = 0x9b; // not a gzip magic: read as CSV text; 0x9b is a C1 control (CSI) in some terminals
    std::fs::write(src.join("x.csv.gz"), &body).unwrap();
    let o = curlew()
        .arg("ingest")
        .arg(&src)
        .args(["--tenant", "acme", "--store"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a failed delivery exits 1");
    let stdout = String::from_utf8(o.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8(o.stderr).expect("UTF-8 output");
    for text in [&stdout, &stderr] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "control characters in {text:?}"
        );
    }
    let about: Vec<&str> = stdout.lines().filter(|l| l.contains("x.csv.gz")).collect();
    assert_eq!(about.len(), 1, "{stdout}");
    // The log says it once too, as plain text (stderr is not a terminal here).
    let logged: Vec<&str> = stderr.lines().filter(|l| l.contains("x.csv.gz")).collect();
    assert_eq!(logged.len(), 1, "{stderr}");
    assert!(logged[0].contains("ERROR"), "{stderr}");
    let line = about[0];
    assert!(
        line.contains("FAILED (permanent; recorded, not retried): x.csv.gz, line 1: the header is not a CUR, CUR 2.0 or FOCUS header (first columns: \"\\x9b"),
        "{line}"
    );
    assert!(line.len() < 2_000, "{} bytes: {line}", line.len());
}

/// `curlew bench` end to end on a small month: every case runs in its own
/// process and prints its figures, the ratios and the target verdicts.
#[test]
fn bench_prints_each_case_beside_its_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(curlew()
        .args([
            "bench",
            "--rows",
            "3000",
            "--cardinality",
            "low,high",
            "--no-duckdb",
            "--repeat",
            "2",
            "--dir",
        ])
        .arg(dir.path()));
    for want in [
        "each case runs 2 time(s) in turns",
        "peak RSS per group, high over low:",
        "Bytes per group <= 250",
        "Low cardinality",
        "High cardinality",
        "zlib-rs inflate (floor)",
        "curlew ingest, gzip CSV",
        "curlew ingest, Parquet",
        "x the floor (target <= 1.25x)",
        "High peak RSS",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    // Both cases of a cardinality commit the same groups, and high has more.
    let groups: Vec<u64> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("curlew ingest,"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "groups").unwrap();
            w[i - 1].parse().unwrap()
        })
        .collect();
    assert_eq!(groups.len(), 4, "{out}");
    assert_eq!(groups[0], groups[1]);
    assert_eq!(groups[2], groups[3]);
    assert!(groups[2] > groups[0], "{groups:?}");
}

/// `curlew diff` end to end: the second ingest of a month says what changed
/// against the revision it replaced; `diff --format json` carries the total
/// delta, equal to the difference of `curlew report`'s totals before and
/// after, and per-group changes that add up to it; the table shows the
/// revisions; a first revision gives one readable line and exit 1.
#[test]
fn diff_shows_what_a_new_revision_changed() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let store = out.path().to_str().unwrap();
    let sample = |seed: &str| {
        run(curlew()
            .args([
                "sample", "--rows", "400", "--payer", PAYER, "--seed", seed, "--out",
            ])
            .arg(src.path()));
    };
    let ingest = || {
        run(curlew()
            .arg("ingest")
            .arg(src.path())
            .args(["--store", store]))
    };
    let total = || {
        let r = run(curlew().args([
            "report", "--store", store, "--by", "period", "--format", "json",
        ]));
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        curlew::money::dec(v[0]["BilledCost"].as_str().unwrap())
    };
    sample("1");
    let first = ingest();
    assert!(!first.contains("against "), "{first}");
    let before = total();
    let o = curlew()
        .args(["diff", "--store", store, "--period", "2024-01"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("replaced no earlier revision"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sample("3");
    let second = ingest();
    let after = total();
    let delta = after - before;
    assert!(!delta.is_zero());
    assert!(
        second.contains(&format!(
            "BilledCost {}",
            if delta > curlew::money::Money::ZERO {
                "+"
            } else {
                ""
            }
        )) && second.contains(&format!(
            "(exact {}{})",
            if delta > curlew::money::Money::ZERO {
                "+"
            } else {
                ""
            },
            delta.normalize()
        )),
        "{second}"
    );
    let j: serde_json::Value = serde_json::from_str(&run(curlew().args([
        "diff", "--store", store, "--period", "2024-01", "--by", "account", "--format", "json",
    ])))
    .unwrap();
    assert_eq!(j["total_delta"], delta.normalize().to_string(), "{j}");
    let changes = j["sources"][0]["changes"].as_array().unwrap();
    let sum: curlew::money::Money = changes
        .iter()
        .map(|c| curlew::money::dec(c["delta"].as_str().unwrap()))
        .sum();
    assert_eq!(sum.normalize(), delta.normalize());
    assert!(changes[0]["key"]["SubAccountId"].is_string(), "{j}");
    let table = run(curlew().args(["diff", "--store", store, "--period", "2024-01"]));
    let (r1, r2) = (
        j["sources"][0]["from"]["revision"].as_str().unwrap(),
        j["sources"][0]["to"]["revision"].as_str().unwrap(),
    );
    assert!(table.contains(&format!("from revision={r1}")), "{table}");
    assert!(table.contains(&format!("to   revision={r2}")), "{table}");
    assert!(table.contains("exact delta"), "{table}");
    // The report says which months are final.
    let report = run(curlew().args(["report", "--store", store]));
    assert!(
        report.contains(&format!(
            "2024-01 payer {PAYER} report curlew-cur: final: invoiced ("
        )),
        "{report}"
    );
    // A second source with one revision of the month: said so, the first
    // source is still compared (and --from is refused for several sources).
    run(curlew()
        .args(["sample", "--rows", "100", "--payer", "210987654321"])
        .args(["--report", "other-cur", "--out"])
        .arg(src.path()));
    ingest();
    let j: serde_json::Value = serde_json::from_str(&run(curlew().args([
        "diff", "--store", store, "--period", "2024-01", "--format", "json",
    ])))
    .unwrap();
    assert_eq!(j["sources"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["total_delta"], delta.normalize().to_string(), "{j}");
    assert_eq!(
        j["only_one_revision"][0]["payer_account"], "210987654321",
        "{j}"
    );
    let o = curlew()
        .args([
            "diff", "--store", store, "--period", "2024-01", "--from", r1,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("add --payer and --report"),
        "{o:?}"
    );
}
