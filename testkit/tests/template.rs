//! infra/template.yaml as CloudFormation reads it (cfn-lint's decoder turns
//! the short-form tags into their long form), checked for the security
//! conditions a lint cannot know about.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// The deployed template as JSON.
fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom cfnlint.decode import decode\nt, m = decode(sys.argv[1])\nassert t is not None, m\nprint(json.dumps(t, default=str))",
        ])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "cfn-lint's decoder (pip install cfn-lint; ./scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// S3 notifications reach the billing-events topic only from the listed
/// billing buckets *and* from accounts curlew onboarded (a deleted bucket's
/// name can be taken by anyone, in any account).
#[test]
fn only_onboarded_accounts_buckets_publish_billing_events() {
    let t = template();
    let st =
        &t["Resources"]["BillingEventsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"];
    let st: Vec<&Value> = st.as_array().unwrap().iter().collect();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["Principal"]["Service"], "s3.amazonaws.com");
    assert_eq!(st[0]["Action"], "sns:Publish");
    let c = &st[0]["Condition"];
    assert_eq!(
        c["ArnLike"]["aws:SourceArn"],
        json!({"Ref": "BillingBucketArns"})
    );
    assert_eq!(
        c["StringEquals"]["aws:SourceAccount"],
        json!({"Fn::If": ["HasOnboardingAccounts", {"Ref": "OnboardingAccountIds"}, [{"Ref": "AWS::AccountId"}]]})
    );
}

/// A failed scheduled fan-out is retried, then kept in the sweep DLQ.
#[test]
fn the_sweep_schedule_keeps_what_failed() {
    let t = template();
    let f = &t["Resources"]["SweepFunction"]["Properties"];
    let on_failure = &f["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"], "SQS");
    assert_eq!(
        on_failure["Destination"],
        json!({"Fn::GetAtt": ["SweepDLQ", "Arn"]})
    );
    assert_eq!(f["EventInvokeConfig"]["MaximumRetryAttempts"], 2);
    let schedule = &f["Events"]["Schedule"]["Properties"];
    assert_eq!(schedule["RetryPolicy"]["MaximumRetryAttempts"], 2);
    assert_eq!(schedule["DeadLetterConfig"]["Type"], "SQS");
}

/// Records that are worthless after a while expire by themselves: the
/// stored CloudFormation answers and claims (a request is redelivered within
/// the hour), and old object versions.
#[test]
fn the_store_expires_what_only_matters_for_a_while() {
    let t = template();
    let rules = t["Resources"]["StoreBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_array()
        .unwrap()
        .clone();
    let days = |prefix: &str| {
        rules
            .iter()
            .find(|r| r["Prefix"] == prefix && r["Status"] == "Enabled")
            .map(|r| r["ExpirationInDays"].clone())
    };
    assert_eq!(days("curlew/onboard-answers/"), Some(json!(7)));
    assert_eq!(days("curlew/onboard-claims/"), Some(json!(1)));
    // Nothing that must last (registry, onboarding, ledger) expires by prefix.
    for r in &rules {
        let p = r["Prefix"].as_str().unwrap_or("");
        assert!(
            p.is_empty()
                || p.starts_with("curlew/onboard-answers/")
                || p.starts_with("curlew/onboard-claims/"),
            "{r}"
        );
    }
}

/// The resources a function's role may act on with `action` in the store
/// bucket (the Fn::Sub strings of its inline statements).
fn store_resources(t: &Value, function: &str, action: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in t["Resources"][function]["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for st in p["Statement"].as_array().into_iter().flatten() {
            let actions = match &st["Action"] {
                Value::Array(a) => a.clone(),
                a => vec![a.clone()],
            };
            if st["Effect"] == "Allow" && actions.iter().any(|a| a == action) {
                let r = &st["Resource"];
                let text = r["Fn::Sub"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| r.to_string());
                out.push(text);
            }
        }
    }
    out
}

/// The part worker deletes staging only: never a revision, CURRENT, the
/// registry, onboarding or secrets.
#[test]
fn the_part_function_deletes_only_staging() {
    let t = template();
    assert_eq!(
        store_resources(&t, "PartFunction", "s3:DeleteObject"),
        ["${StoreBucket.Arn}/curlew/tenant=*/_staging/*"]
    );
}
