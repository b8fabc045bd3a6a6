//! The `curlew` binary end to end: demo, sample + ingest + report on disk, and
//! ingest/report/gc against S3 (moto_server on 127.0.0.1) through the real SDK.

mod common;
use curlew_testkit::moto;

use std::process::Command;

fn curlew() -> Command {
    Command::new(env!("CARGO_BIN_EXE_curlew"))
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("curlew runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{cmd:?} failed\nstdout:\n{out}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

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
    // Re-running changes nothing; gc keeps what CURRENT names.
    assert!(on_s3(&ingest).contains("already committed"));
    assert!(on_s3(&["gc", "--tenant", "acme", "--store", &store]).contains("deleted 0 superseded"));
}
