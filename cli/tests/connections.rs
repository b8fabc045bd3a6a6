//! `curlew sweep` and `curlew connections` end to end against moto_server:
//! the same sweep as the Lambda (a delivery no event announced is ingested,
//! a lost bucket breaks on the second sweep), then the registry as JSON and
//! as a table.

use chrono::Datelike;
use curlew::onboard::{OnboardingHints, Onboardings};
use curlew::registry::{AccessMode, Connection, ConnectionStatus, Registry};
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use curlew::store::Store;
use curlew_testkit::moto;
use serde_json::Value;
use std::process::{Command, Output};

fn curlew(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_curlew"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto::moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("curlew runs")
}

#[test]
fn sweep_then_connections_show_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store_arg = store_dir.display().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s3 = moto::s3_client();
        let billing = moto::new_bucket(&s3, "clisweep").await;
        let local = tempfile::tempdir().unwrap();
        let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 300);
        spec.versioning = Versioning::New;
        spec.payer = Some("910987654321".into());
        let now = chrono::Utc::now();
        spec.period = format!("{}-{:02}", now.year(), now.month());
        let out = write_sample(&spec, local.path()).unwrap();
        curlew_testkit::upload::upload_keys(
            &s3,
            &billing,
            local.path(),
            out.data_keys.iter().chain(&out.manifest_keys),
        )
        .await;
        let store = Store::local(&store_arg);
        Onboardings::new(store.clone(), "")
            .begin("acme", OnboardingHints::default())
            .await
            .unwrap();
        let registry = Registry::new(store, "");
        for (payer, bucket) in [
            ("910987654321", billing.clone()),
            ("910987654322", format!("{billing}-gone")),
        ] {
            let mut c =
                Connection::new("acme", payer, AccessMode::CrossAccountRole, &bucket, "cur");
            c.role_arn = Some(format!("arn:aws:iam::{payer}:role/curlew-read-acme"));
            c.status = ConnectionStatus::Connected;
            c.since = Some("2024-01".into());
            registry.create(&c).await.unwrap();
        }
    });

    let first = curlew(&["sweep", "--store", &store_arg]);
    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout);
    // The missed delivery was committed here and announced (one JSON line).
    assert_eq!(
        stdout.matches("\"event\":\"revision-committed\"").count(),
        1,
        "{stdout}"
    );
    let second = curlew(&["sweep", "--store", &store_arg, "--tenant", "acme"]);
    assert!(second.status.success(), "{second:?}");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(!stdout.contains("revision-committed"), "{stdout}");
    assert_eq!(
        stdout.matches("\"event\":\"connection-changed\"").count(),
        1,
        "{stdout}"
    );

    let json = curlew(&["connections", "--store", &store_arg, "--format", "json"]);
    assert!(json.status.success(), "{json:?}");
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let ok = rows
        .iter()
        .find(|r| r["payer_account"] == "910987654321")
        .unwrap();
    assert_eq!(
        (
            ok["tenant"].as_str(),
            ok["mode"].as_str(),
            ok["status"].as_str(),
            ok["since"].as_str()
        ),
        (
            Some("acme"),
            Some("role"),
            Some("connected"),
            Some("2024-01")
        )
    );
    assert!(ok["cause"].is_null());
    assert!(ok["last_checked_at"].is_string() && ok["last_delivery_at"].is_string());
    assert!(ok["linked_accounts"].is_array());
    let gone = rows
        .iter()
        .find(|r| r["payer_account"] == "910987654322")
        .unwrap();
    assert_eq!(
        (gone["status"].as_str(), gone["cause"].as_str()),
        (Some("broken"), Some("bucket-gone"))
    );
    assert!(gone["remedy"].as_str().unwrap().contains("bucket"));
    assert!(gone["status_since"].is_string());

    let table = curlew(&["connections", "--store", &store_arg, "--tenant", "acme"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("broken") && text.contains("bucket-gone") && text.contains("connected"),
        "{text}"
    );
    let other = curlew(&[
        "connections",
        "--store",
        &store_arg,
        "--tenant",
        "globex",
        "--format",
        "json",
    ]);
    assert_eq!(String::from_utf8_lossy(&other.stdout).trim(), "[]");

    let accounts = curlew(&[
        "accounts", "--store", &store_arg, "--tenant", "acme", "--format", "json",
    ]);
    assert!(accounts.status.success(), "{accounts:?}");
    let v: Value = serde_json::from_slice(&accounts.stdout).unwrap();
    let r = v.as_array().unwrap();
    assert_eq!(r.len(), 1, "{v}");
    assert_eq!(r[0]["payer_account"], "910987654321");
    for k in [
        "billed_not_connected",
        "connected_not_billed",
        "billed_not_active",
    ] {
        assert!(r[0][k].is_array(), "{k}: {v}");
    }
    let bad = curlew(&[
        "accounts", "--store", &store_arg, "--tenant", "acme", "--period", "2024-13",
    ]);
    assert!(!bad.status.success());
}

#[test]
fn connect_stores_the_connection_only_when_the_proof_passes() {
    let dir = tempfile::tempdir().unwrap();
    let store_arg = dir.path().join("store").display().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let billing = rt.block_on(async {
        let s3 = moto::s3_client();
        let billing = moto::new_bucket(&s3, "cliconnect").await;
        let local = tempfile::tempdir().unwrap();
        let out = write_sample(&SampleSpec::new(SampleFormat::Cur1Csv, 100), local.path()).unwrap();
        curlew_testkit::upload::upload_keys(
            &s3,
            &billing,
            local.path(),
            out.data_keys.iter().chain(&out.manifest_keys),
        )
        .await;
        Onboardings::new(Store::local(&store_arg), "")
            .begin("acme", OnboardingHints::default())
            .await
            .unwrap();
        billing
    });
    let registry = || Registry::new(Store::local(&store_arg), "");

    // Role mode on moto: the role is assumable without the External ID (moto
    // ignores the condition), so the proof fails (confused deputy): nothing stored.
    let role = curlew(&[
        "connect",
        "--tenant",
        "acme",
        "--payer-account",
        "123456789012",
        "--mode",
        "role",
        "--role-arn",
        "arn:aws:iam::123456789012:role/curlew-read-acme",
        "--bucket",
        &billing,
        "--prefix",
        "cur",
        "--store",
        &store_arg,
    ]);
    assert_eq!(role.status.code(), Some(1), "{role:?}");
    assert!(String::from_utf8_lossy(&role.stderr).contains("nothing was stored"));
    let keys = rt.block_on(registry().keys(None)).unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    // Bucket-policy mode (curlew's own credentials): proven, stored connected.
    let ok = curlew(&[
        "connect",
        "--tenant",
        "acme",
        "--payer-account",
        "123456789012",
        "--mode",
        "bucket-policy",
        "--bucket",
        &billing,
        "--prefix",
        "cur",
        "--since",
        "2024-01",
        "--tag",
        "team",
        "--cost-category",
        "Env",
        "--store",
        &store_arg,
    ]);
    assert!(ok.status.success(), "{ok:?}");
    let (c, _) = rt.block_on(registry().get("acme", "123456789012")).unwrap();
    // The dimensions named at connect are the connection's (the pipeline
    // groups its deliveries by them).
    assert_eq!(
        c.dimensions,
        curlew::dimensions::Dimensions::from_args(&["team".into()], &["Env".into()]).unwrap()
    );
    assert_eq!(
        (
            c.access_mode,
            c.status,
            c.since.as_deref(),
            c.bucket.as_str()
        ),
        (
            AccessMode::BucketPolicy,
            ConnectionStatus::Connected,
            Some("2024-01"),
            billing.as_str()
        )
    );
    let bad = curlew(&[
        "connect",
        "--tenant",
        "acme",
        "--payer-account",
        "123456789012",
        "--mode",
        "role",
        "--bucket",
        &billing,
        "--store",
        &store_arg,
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--role-arn"));
    // A dimension no column can match is refused in one line before any
    // access is tried; the stored connection keeps its dimensions.
    let bad_tag = curlew(&[
        "connect",
        "--tenant",
        "acme",
        "--payer-account",
        "123456789012",
        "--mode",
        "bucket-policy",
        "--bucket",
        &billing,
        "--tag",
        "***",
        "--store",
        &store_arg,
    ]);
    assert_eq!(bad_tag.status.code(), Some(1), "{bad_tag:?}");
    let err = String::from_utf8_lossy(&bad_tag.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("has no letters or digits"), "{err}");
    let (after, _) = rt.block_on(registry().get("acme", "123456789012")).unwrap();
    assert_eq!(after.dimensions, c.dimensions);
}
