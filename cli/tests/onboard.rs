//! `curlew onboard`: a tenant goes from `onboard new` to a template that
//! cfn-lint accepts, in every variant the CLI generates, and the policies it
//! prints are the least-privilege ones.

mod common;
use curlew_testkit::moto;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const PRINCIPAL: &str = "arn:aws:iam::999988887777:role/curlew-ingest";
const TOPIC: &str = "arn:aws:sns:us-east-1:999988887777:curlew-onboard";
const HEALTH_BUS: &str = "arn:aws:events:us-east-1:999988887777:event-bus/curlew-health";

fn curlew(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_curlew"));
    c.env("CURLEW_PLATFORM_PRINCIPAL", PRINCIPAL)
        .env("CURLEW_ONBOARD_TOPIC_ARN", TOPIC)
        .env("CURLEW_HEALTH_BUS_ARN", HEALTH_BUS)
        .env("CURLEW_LOG", "debug")
        .current_dir(store);
    c
}

fn run(cmd: &mut Command) -> (String, String) {
    let o = cmd.output().expect("curlew runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "{cmd:?} failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    (out, err)
}

/// cfn-lint, in a region of each partition (aws, aws-cn, aws-us-gov): one
/// template deploys in all of them.
fn cfn_lint(path: &Path) {
    let o = Command::new("cfn-lint")
        .args(["--regions", "us-east-1", "cn-northwest-1", "us-gov-west-1", "--"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
        panic!("cfn-lint is needed for this test ({e}): run ./scripts/test, which installs it, or `python3 -m pip install cfn-lint`")
    });
    assert!(
        o.status.success(),
        "cfn-lint rejected {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn onboard_new_writes_a_template_cfn_lint_accepts_in_every_variant() {
    let dir = tempfile::tempdir().unwrap();
    let variants: [&[&str]; 5] = [
        &[],
        &["--health", "--organizations"],
        &["--organizations", "--report-definitions", "--data-exports"],
        &["--delivery-policy", "--payer-account", "111122223333"],
        &[
            "--bucket",
            "acme-billing",
            "--prefix",
            "cur/",
            "--report",
            "acme-cur",
        ],
    ];
    let mut external_ids = Vec::new();
    let mut tokens = Vec::new();
    for (i, extra) in variants.iter().enumerate() {
        let file = dir.path().join(format!("t{i}.json"));
        let (out, err) = run(curlew(dir.path())
            .args(["onboard", "new", "--tenant", "acme", "--store", "store"])
            .arg("--template-out")
            .arg(&file)
            .args(*extra));
        cfn_lint(&file);
        let text = std::fs::read_to_string(&file).unwrap();
        // The Data Exports grant is there only when asked for.
        assert_eq!(
            text.contains("bcm-data-exports:GetExport"),
            extra.contains(&"--data-exports"),
            "{extra:?}"
        );
        let t: Value = serde_json::from_str(&text).unwrap();
        let id = t["Resources"]["CurlewReadRole"]["Properties"]["AssumeRolePolicyDocument"]
            ["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = t["Resources"]["CurlewConnection"]["Properties"]["OnboardingToken"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(id.len() >= 32, "External ID too short: {} chars", id.len());
        assert!(out.contains(&id), "the operator is shown the External ID");
        // Nothing secret reaches the log stream.
        assert!(!err.contains(&id) && !err.contains(&token), "{err}");
        assert_eq!(
            t["Resources"].get("BillingDeliveryBucketPolicy").is_some(),
            extra.contains(&"--delivery-policy")
        );
        // The AWS Health rule (to curlew's bus only) only when asked, and the
        // operator is told it is regional.
        let health = extra.contains(&"--health");
        assert_eq!(t["Resources"].get("CurlewHealthRule").is_some(), health);
        assert_eq!(
            text.contains("health:DescribeEventsForOrganization"),
            health,
            "the read role may poll Health only with --health"
        );
        if health {
            assert_eq!(
                t["Resources"]["CurlewHealthRule"]["Properties"]["Targets"][0]["Arn"],
                HEALTH_BUS
            );
            assert!(
                out.contains("regional") && out.contains("HealthRegionOnly=true"),
                "{out}"
            );
        }
        external_ids.push(id);
        tokens.push(token);
    }
    // --health without curlew's bus: one readable error, nothing recorded.
    let o = curlew(dir.path())
        .env_remove("CURLEW_HEALTH_BUS_ARN")
        .args([
            "onboard", "new", "--tenant", "acme", "--store", "store", "--health",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--health needs curlew's AWS Health event bus"),
        "{err}"
    );
    // One External ID per tenant, a new single-use token per onboarding.
    assert!(external_ids.windows(2).all(|w| w[0] == w[1]));
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), variants.len());
    // Pending onboardings are recorded by token digest, never the token itself.
    let pending: Vec<_> = std::fs::read_dir(dir.path().join("store/onboarding/tenant=acme"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        pending.iter().filter(|n| n.starts_with("token=")).count(),
        variants.len()
    );
    assert!(pending
        .iter()
        .all(|n| tokens.iter().all(|t| !n.contains(t))));

    // `onboard policy trust` prints the same External ID the template carries.
    let (trust, _) = run(curlew(dir.path()).args([
        "onboard", "policy", "trust", "--tenant", "acme", "--store", "store",
    ]));
    let trust: Value = serde_json::from_str(&trust).unwrap();
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
        external_ids[0].as_str()
    );
}

#[test]
fn onboard_policy_prints_least_privilege_documents() {
    let dir = tempfile::tempdir().unwrap();
    let (read, _) = run(curlew(dir.path()).args([
        "onboard", "policy", "read", "--bucket", "bill", "--prefix", "cur",
    ]));
    let read: Value = serde_json::from_str(&read).unwrap();
    let actions: Vec<&str> = read["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]
    );
    let (delivery, _) = run(curlew(dir.path()).args([
        "onboard",
        "policy",
        "delivery",
        "--bucket",
        "bill",
        "--payer-account",
        "111122223333",
    ]));
    assert!(delivery.contains("bcm-data-exports.amazonaws.com"));
    assert!(delivery.contains("arn:aws:cur:*:111122223333:definition/*"));
    // Another partition: its ARNs throughout.
    let (cn, _) = run(curlew(dir.path()).args([
        "onboard",
        "policy",
        "read",
        "--bucket",
        "bill",
        "--prefix",
        "cur",
        "--partition",
        "aws-cn",
    ]));
    let cn: Value = serde_json::from_str(&cn).unwrap();
    assert_eq!(cn["Statement"][0]["Resource"], "arn:aws-cn:s3:::bill/cur/*");
    assert!(!cn.to_string().contains("arn:aws:"));
    // Bad input is refused with what to do, and nothing is recorded.
    let o = curlew(dir.path())
        .args(["onboard", "new", "--tenant", "../evil", "--store", "store"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("letters, digits"));
    assert!(!dir.path().join("store").exists());
    let o = curlew(dir.path())
        .args(["onboard", "new", "--tenant", "acme", "--store", "store"])
        .args(["--token-ttl-days", "0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--token-ttl-days") && err.contains("1..=90"),
        "{err}"
    );
    assert!(!dir.path().join("store").exists());
}

/// The token's validity and payer binding are stored with it and shown to
/// the operator.
#[test]
fn onboard_new_binds_the_token_to_its_payer_and_an_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.json");
    let (out, _) = run(curlew(dir.path())
        .args(["onboard", "new", "--tenant", "acme", "--store", "store"])
        .args(["--payer-account", "111122223333", "--token-ttl-days", "2"])
        .arg("--template-out")
        .arg(&file));
    assert!(out.contains("for account 111122223333 only"), "{out}");
    let pending = std::fs::read_dir(dir.path().join("store/onboarding/tenant=acme"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("token="))
        .unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(pending.path()).unwrap()).unwrap();
    assert_eq!(doc["payer_account"], "111122223333");
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(doc[k].as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    assert_eq!(
        at("expires_at") - at("created_at"),
        chrono::Duration::days(2)
    );
    let until = at("expires_at").format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(out.contains(&until), "{out}");
}

/// Legacy access keys: the proof runs with them first; then they are stored in
/// curlew's store only and the connection is registered. Neither the key id
/// nor the secret is ever printed.
#[test]
fn onboard_keys_proves_access_then_stores_the_keys_without_echoing_them() {
    let m = moto::moto();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = moto::s3_client();
    let bucket = rt.block_on(moto::new_bucket(&client, "keys-src"));
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    run(curlew(dir.path())
        .args(["sample", "--format", "cur1-csv", "--rows", "500", "--out"])
        .arg(&sample));
    rt.block_on(common::upload_dir(&client, &bucket, "cur/", &sample));
    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    let keys = |c: &mut Command| {
        c.env("AWS_ENDPOINT_URL", &m.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("CURLEW_CUSTOMER_ACCESS_KEY_ID", KEY_ID)
            .env("CURLEW_CUSTOMER_SECRET_ACCESS_KEY", SECRET)
            .args(["onboard", "keys", "--tenant", "acme", "--bucket", &bucket])
            .args(["--prefix", "cur", "--store", "store"]);
    };
    // moto's default account is 123456789012: a different payer is refused
    // by the proof, and nothing is stored.
    let mut c = curlew(dir.path());
    keys(&mut c);
    let o = c
        .args(["--payer-account", "111122223333"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{all}");
    assert!(!dir.path().join("store").exists(), "nothing stored: {all}");
    assert!(!all.contains(KEY_ID) && !all.contains(SECRET), "{all}");

    let mut c = curlew(dir.path());
    keys(&mut c);
    let (out, err) = run(c.args(["--payer-account", "123456789012"]));
    assert!(out.contains("connected acme/123456789012"), "{out}");
    for text in [&out, &err] {
        assert!(!text.contains(KEY_ID) && !text.contains(SECRET), "{text}");
    }
    let conn: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("store/registry/tenant=acme/123456789012.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(conn["access_mode"], "access-keys");
    assert_eq!(conn["status"], "connected");
    assert!(!conn.to_string().contains(SECRET));
    let stored = std::fs::read_to_string(
        dir.path()
            .join("store/secrets/tenant=acme/123456789012.json"),
    )
    .unwrap();
    assert!(stored.contains(KEY_ID) && stored.contains(SECRET));
}
