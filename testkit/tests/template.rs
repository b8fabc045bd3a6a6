//! infra/template.yaml as CloudFormation reads it (cfn-lint's decoder turns
//! the short-form tags into their long form), checked for the security
//! conditions a lint cannot know about.

use curlew_testkit::template::{actions, function_statements, template, Bindings};
use serde_json::{json, Value};

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
    for st in function_statements(t, function) {
        if st["Effect"] == "Allow" && actions(&st).iter().any(|a| a == action) {
            let resources = match &st["Resource"] {
                Value::Array(a) => a.clone(),
                r => vec![r.clone()],
            };
            for r in resources {
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

const FUNCTIONS: [&str; 5] = [
    "PlanFunction",
    "PartFunction",
    "OnboardFunction",
    "SweepFunction",
    "HealthNotifyFunction",
];

/// Every function writes only the store prefixes its code writes (the plan
/// and part functions' grants are proven enough by running the pipeline
/// under them on moto: functions/cur-ingest/tests/iam.rs); none writes
/// secrets/, and only onboarding writes onboarding/.
#[test]
fn each_function_writes_only_its_own_prefixes() {
    let t = template();
    let s = |p: &str| format!("${{StoreBucket.Arn}}/curlew/{p}");
    let expected: [(&str, Vec<String>); 5] = [
        (
            "PlanFunction",
            vec![
                s("tenant=*/_staging/*"),
                s("tenant=*/_failures/*"),
                s("tenant=*/_parked/*"),
                s("registry/*"),
            ],
        ),
        ("PartFunction", vec![s("tenant=*"), s("registry/*")]),
        (
            "OnboardFunction",
            vec![
                s("registry/*"),
                s("registry-by-bucket/*"),
                s("registry-by-account/*"),
                s("onboarding/*"),
                s("onboard-answers/*"),
                s("onboard-claims/*"),
                s("onboard-bindings/*"),
            ],
        ),
        (
            "SweepFunction",
            vec![
                s("registry/*"),
                s("registry-by-account/*"),
                s("tenant=*/_staging/*"),
                s("tenant=*/_failures/*"),
                s("tenant=*/_parked/*"),
            ],
        ),
        (
            "HealthNotifyFunction",
            vec![s("registry/*"), s("health/dedupe/*")],
        ),
    ];
    for (function, want) in expected {
        assert_eq!(
            store_resources(&t, function, "s3:PutObject"),
            want,
            "{function}"
        );
    }
    for function in FUNCTIONS {
        for action in ["s3:PutObject", "s3:DeleteObject"] {
            for r in store_resources(&t, function, action) {
                assert!(
                    !r.ends_with("/curlew/*") && !r.contains("secrets/"),
                    "{function} {action} {r}"
                );
            }
        }
    }
}

/// Every grant on the customers' billing buckets names their objects (`/*`),
/// each bucket of the list: the old idiom (a join by "/*,") left the last
/// bucket without it, so a bucket-policy connection's data was unreadable.
#[test]
fn billing_bucket_object_grants_cover_every_bucket() {
    let t = template();
    let mut b = Bindings::new();
    b.set(
        "BillingBucketArns",
        json!(["arn:aws:s3:::one", "arn:aws:s3:::two"]),
    );
    let mut seen = 0;
    for function in FUNCTIONS {
        for st in function_statements(&t, function) {
            if actions(&st) == ["s3:GetObject"]
                && st["Resource"].to_string().contains("BillingBucketArns")
            {
                assert_eq!(
                    b.resolve(&st["Resource"]),
                    json!(["arn:aws:s3:::one/*", "arn:aws:s3:::two/*"]),
                    "{function}"
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 3, "plan, part and sweep read billing objects");
}

/// Stored access keys are under a customer-managed key that only the
/// functions reading keys may use to decrypt (through S3); the account may
/// administer it but holds no kms:* (which would let any IAM policy grant
/// Decrypt); the bucket refuses a secrets/ write under any other key.
#[test]
fn secrets_are_under_a_kms_key_only_key_readers_decrypt() {
    let t = template();
    let key = &t["Resources"]["SecretsKey"];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap();
    let mut decrypters = Vec::new();
    for st in statements {
        let acts = actions(st);
        assert!(!acts.iter().any(|a| a == "kms:*" || a == "*"), "{st}");
        if acts
            .iter()
            .any(|a| a == "kms:Decrypt" || a == "kms:Decrypt*")
        {
            assert_eq!(
                st["Condition"]["StringEquals"]["kms:ViaService"],
                json!({"Fn::Sub": "s3.${AWS::Region}.${AWS::URLSuffix}"})
            );
            decrypters.extend(st["Principal"]["AWS"].as_array().unwrap().clone());
        }
    }
    let role = |f: &str| json!({"Fn::GetAtt": [format!("{f}Role"), "Arn"]});
    assert_eq!(
        decrypters,
        [
            role("PlanFunction"),
            role("PartFunction"),
            role("SweepFunction"),
            role("HealthNotifyFunction")
        ],
        "only the functions that read stored keys (not onboarding)"
    );
    let deny = t["Resources"]["StoreBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "SecretsOnlyUnderTheSecretsKey")
        .expect("the secrets statement")
        .clone();
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(deny["Action"], "s3:PutObject");
    assert_eq!(
        deny["Resource"],
        json!({"Fn::Sub": "${StoreBucket.Arn}/curlew/secrets/*"})
    );
    assert_eq!(
        deny["Condition"]["StringNotEquals"]["s3:x-amz-server-side-encryption-aws-kms-key-id"],
        json!({"Fn::GetAtt": ["SecretsKey", "Arn"]})
    );
}
