//! `curlew check` end to end against moto_server (access control off, so
//! every probe is allowed): exit codes, both renderings, and the External ID
//! never on the command line nor in the output.

use curlew_testkit::moto;

use curlew::onboard::{OnboardingHints, Onboardings};
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use curlew::store::Store;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `curlew check ARGS` against moto with the standard AWS settings; `stdin` is piped in.
fn check(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_curlew"))
        .arg("check")
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto::moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curlew runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_reports_item_by_item_and_fails_on_any_failure() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = rt.block_on(async {
        let s3 = moto::s3_client();
        let bucket = moto::new_bucket(&s3, "check").await;
        let dir = tempfile::tempdir().unwrap();
        let out = write_sample(&SampleSpec::new(SampleFormat::Cur1Csv, 200), dir.path()).unwrap();
        for key in out.data_keys.iter().chain(&out.manifest_keys) {
            let body = std::fs::read(dir.path().join(key)).unwrap();
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
        bucket
    });

    // Bucket-policy mode (curlew's own credentials): moto allows everything,
    // so the outside probes warn "wider than needed" but nothing fails.
    let o = check(
        &["--bucket", &bucket, "--prefix", "cur", "--format", "json"],
        "",
    );
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert!(o.status.success(), "{json:#}");
    assert_eq!(json["mode"], "bucket-policy");
    assert_eq!(json["reports"][0]["kind"], "CUR1");
    assert_eq!(json["reports"][0]["newest_period"], "2024-01");
    let outcome = |id: &str| {
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .map(|i| i["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(outcome("list-prefix").as_deref(), Some("pass"));
    assert_eq!(outcome("write-probe").as_deref(), Some("warn"));
    assert_eq!(outcome("report").as_deref(), Some("pass"));

    // No such bucket: exit code 1, the cause named.
    let o = check(
        &["--bucket", "no-such-bucket-curlew", "--prefix", "cur"],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    let table = stdout(&o);
    assert!(
        table.contains("FAIL  bucket-region") && table.contains("[NoSuchBucket]"),
        "{table}"
    );
    assert!(table.contains("NOT PROVEN"), "{table}");

    // Role mode, the External ID from stdin: moto lets a missing External ID
    // through, which curlew refuses (confused deputy) with exit code 1.
    let role = "arn:aws:iam::123456789012:role/curlew-reader";
    let secret = "StdinExternalId0123456789abcdefghijklmn";
    let args = [
        "--role-arn",
        role,
        "--external-id-stdin",
        "--bucket",
        &bucket,
        "--prefix",
        "cur",
    ];
    let o = check(&args, &format!("{secret}\n"));
    let table = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{table}");
    assert!(
        table.contains("FAIL  assume-without-id  confused deputy"),
        "{table}"
    );
    assert!(!table.contains(secret) && !String::from_utf8_lossy(&o.stderr).contains(secret));

    // The External ID from the onboarding store, by tenant.
    let store = tempfile::tempdir().unwrap();
    let started = rt
        .block_on(
            Onboardings::new(Store::local(store.path()), "")
                .begin("acme", OnboardingHints::default()),
        )
        .unwrap();
    let store_arg = store.path().to_str().unwrap();
    let args = [
        "--role-arn",
        role,
        "--external-id-from-tenant",
        "acme",
        "--store",
        store_arg,
        "--bucket",
        &bucket,
        "--prefix",
        "cur",
        "--format",
        "json",
    ];
    let o = check(&args, "");
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(json["items"][0]["id"], "assume");
    assert_eq!(json["items"][0]["outcome"], "pass", "{json:#}");
    assert!(!stdout(&o).contains(started.external_id.expose()));

    // Role mode without any External ID is refused before any AWS call.
    let o = check(&["--role-arn", role, "--bucket", &bucket], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--role-arn needs the tenant's External ID")
    );
}
