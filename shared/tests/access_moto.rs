//! The access proof against moto_server with its access control on (this
//! test binary's own server: turning auth on is server-wide).
//!
//! What moto 5.2.5 enforces, as observed here: a caller's identity and
//! policies once auth is on; the role policy's Action and Resource (GetObject
//! outside the prefix and PutObject are denied); the trust policy's principal
//! and its sts:ExternalId StringEquals when an External ID is sent (a wrong one
//! is denied). What it ignores: a missing External ID (AssumeRole without one
//! succeeds, so the proof reports the confused-deputy failure, as it must for
//! such a role) and Conditions of role policies (an s3:prefix condition does
//! not stop a list of the whole bucket: "wider than needed"). The trust cases
//! moto cannot show (no ID refused, a role without the condition, retries)
//! are in access_mocks.rs.

mod common;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use common::moto::{moto, new_bucket, s3_client};
use curlew::access::{prove, render, AccessClients, AccessTarget, Cause, Outcome};
use curlew::onboard::ExternalId;
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use std::process::Command;

const ACCOUNT: &str = "123456789012";

/// What the setup script made.
struct Iam {
    access_key_id: String,
    secret_access_key: String,
    role_arn: String,
}

/// Create the IAM user, its key, the role and its policies, then turn auth on.
fn set_up_iam_and_enable_auth(bucket: &str, prefix: &str, external_id: &ExternalId) -> Iam {
    let script =
        curlew_testkit::data::workspace_root().join("testkit/support/moto_access_setup.py");
    let out = Command::new("python3")
        .arg(script)
        .args([&moto().endpoint, bucket, prefix, external_id.expose()])
        .output()
        .expect("run moto_access_setup.py");
    assert!(
        out.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("setup prints JSON");
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    Iam {
        access_key_id: s("access_key_id"),
        secret_access_key: s("secret_access_key"),
        role_arn: s("role_arn"),
    }
}

/// curlew's clients, signed with the IAM user's keys, pointed at moto.
fn clients_as(iam: &Iam) -> AccessClients {
    let creds = Credentials::new(
        &iam.access_key_id,
        &iam.secret_access_key,
        None,
        None,
        "moto-user",
    );
    let sts = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto().endpoint)
        .credentials_provider(creds.clone())
        .build();
    let s3 = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto().endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    AccessClients::new(
        aws_sdk_sts::Client::from_conf(sts),
        aws_sdk_s3::Client::from_conf(s3),
    )
}

/// Upload generated deliveries (their keys are `exports/...`) and one object outside that prefix.
async fn deliver(s3: &aws_sdk_s3::Client, bucket: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for (format, versioning) in [
        (SampleFormat::Cur2Parquet, Versioning::New),
        (SampleFormat::Focus, Versioning::Overwrite),
    ] {
        let mut spec = SampleSpec::new(format, 300);
        spec.versioning = versioning;
        spec.period = "2024-03".into();
        let out = write_sample(&spec, dir.path()).unwrap();
        keys.extend(out.data_keys.into_iter().chain(out.manifest_keys));
    }
    for key in keys {
        let body = std::fs::read(dir.path().join(&key)).unwrap();
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    s3.put_object()
        .bucket(bucket)
        .key("private/payroll.csv")
        .body(b"not for curlew".to_vec().into())
        .send()
        .await
        .unwrap();
}

fn item<'a>(r: &'a curlew::access::AccessReport, id: &str) -> &'a curlew::access::CheckItem {
    r.items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_enforces_actions_and_resources_but_not_conditions() {
    let admin = s3_client();
    let bucket = new_bucket(&admin, "billing").await;
    deliver(&admin, &bucket).await;
    let external_id = ExternalId::mint().unwrap();
    let iam = set_up_iam_and_enable_auth(&bucket, "exports/", &external_id);
    // From here on moto checks every request's credentials and policies.
    let denied = admin.list_buckets().send().await;
    assert!(
        denied.is_err(),
        "auth is on: the admin's made-up keys no longer work"
    );

    let clients = clients_as(&iam);
    let target = AccessTarget {
        role_arn: Some(iam.role_arn.clone()),
        external_id: Some(external_id.clone()),
        expected_account: Some(ACCOUNT.into()),
        bucket: bucket.clone(),
        prefix: "exports".into(),
        ..AccessTarget::default()
    };
    let r = prove(&clients, &target).await;
    let table = render::table(&r);
    let outcome = |id: &str| item(&r, id).outcome;

    // Enforced by moto.
    assert_eq!(outcome("assume"), Outcome::Pass, "{table}");
    assert_eq!(
        outcome("assume-wrong-id"),
        Outcome::Pass,
        "moto checks StringEquals on a sent id:\n{table}"
    );
    assert_eq!(outcome("account"), Outcome::Pass, "{table}");
    assert_eq!(outcome("bucket-region"), Outcome::Pass, "{table}");
    assert_eq!(r.region.as_deref(), Some("us-east-1"));
    assert_eq!(outcome("list-prefix"), Outcome::Pass, "{table}");
    assert_eq!(outcome("read-prefix"), Outcome::Pass, "{table}");
    let read_out = item(&r, "read-outside");
    assert_eq!(read_out.outcome, Outcome::Pass, "{table}");
    assert_eq!(read_out.detail, "refused (AccessDenied)");
    let write = item(&r, "write-probe");
    assert_eq!(
        (write.outcome, write.detail.as_str()),
        (Outcome::Pass, "refused (AccessDenied)")
    );

    // Ignored by moto: a missing External ID and the s3:prefix condition.
    let no_id = item(&r, "assume-without-id");
    assert_eq!(
        (no_id.outcome, no_id.cause),
        (Outcome::Fail, Some(Cause::ConfusedDeputy)),
        "{table}"
    );
    let list_out = item(&r, "list-outside");
    assert_eq!(list_out.outcome, Outcome::Warn, "{table}");
    assert!(
        list_out.detail.starts_with("wider than needed"),
        "{}",
        list_out.detail
    );
    assert!(
        !r.passed(),
        "moto's missing-id AssumeRole is a confused deputy to curlew"
    );
    assert!(!r.retryable());

    // The deliveries under the prefix, named.
    assert_eq!(outcome("report"), Outcome::Pass, "{table}");
    let found: Vec<_> = r
        .reports
        .iter()
        .map(|f| {
            (
                f.name.as_str(),
                f.kind.as_str(),
                f.format.as_str(),
                f.compression.as_str(),
                f.versioning.as_str(),
                f.newest_period.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "curlew-cur2",
                "CUR2",
                "Parquet",
                "snappy",
                "new version per delivery",
                Some("2024-03")
            ),
            (
                "curlew-focus",
                "FOCUS",
                "CSV",
                "gzip",
                "overwrite",
                Some("2024-03")
            ),
        ],
        "{table}"
    );
    assert!(r.reports.iter().all(|f| f.age_hours == 0));

    // Nothing secret in either rendering.
    for text in [table, render::json(&r), r.summary()] {
        for secret in [
            external_id.expose(),
            &iam.access_key_id,
            &iam.secret_access_key,
        ] {
            assert!(!text.contains(secret), "a secret leaked:\n{text}");
        }
    }
}
