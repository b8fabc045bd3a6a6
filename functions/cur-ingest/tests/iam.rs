//! The plan and part functions with exactly the grants infra/template.yaml
//! gives their roles, enforced by moto_server with its access control on
//! (this test binary's own server: turning auth on is server-wide).
//!
//! moto enforces a policy's actions and S3 resources (prefix wildcards
//! included), not its conditions; it authorises SNS and SQS calls against
//! resource `*` only, so the non-S3 statements keep their actions with
//! resource `*` here (and sns:Publish gains sns:PublishBatch, which AWS
//! authorises as sns:Publish and moto as itself). What the S3 statements
//! allow is exactly the template's.

mod common;

use common::*;
use curlew::registry::AccessMode;
use curlew_testkit::moto::{enable_auth_with_users, UserKeys};
use curlew_testkit::template::{actions, function_statements, template, Bindings};
use serde_json::{json, Value};

/// The function's statements as the deployed template resolves them for this
/// world's buckets and topics.
fn grants(t: &Value, w: &World, function: &str) -> Vec<Value> {
    let mut b = Bindings::new();
    b.set("StoreBucket", w.deps.config.store_bucket.as_str())
        .set(
            "StoreBucket.Arn",
            format!("arn:aws:s3:::{}", w.deps.config.store_bucket),
        )
        .set(
            "BillingBucketArns",
            json!([format!("arn:aws:s3:::{}", w.billing)]),
        )
        .set("PartsTopic", w.deps.config.parts_topic_arn.as_str())
        .set("ResultsTopic", w.deps.config.results_topic_arn.as_str());
    function_statements(t, function)
        .iter()
        .map(|st| {
            let mut st = b.resolve(st);
            let acts = actions(&st);
            if !acts.iter().all(|a| a.starts_with("s3:")) {
                st["Resource"] = json!("*");
            }
            if acts.iter().any(|a| a == "sns:Publish") {
                let mut with_batch = acts.clone();
                with_batch.push("sns:PublishBatch".into());
                st["Action"] = json!(with_batch);
            }
            st
        })
        .collect()
}

fn deps_as(w: &World, user: &UserKeys) -> cur_ingest::Deps {
    let conf = curlew_testkit::aws::sdk_conf_for(user);
    cur_ingest::Deps {
        config: w.deps.config.clone(),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .build(),
        ),
        sns: aws_sdk_sns::Client::new(&conf),
        sts: aws_sdk_sts::Client::new(&conf),
    }
}

/// A three-file delivery announced, planned, read, staged, merged and
/// committed, each step with its function's grants only: the template lets
/// the code do its whole job (the billing bucket's objects, the store's
/// prefixes each function writes), and no more than the template says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_part_do_their_whole_job_within_the_templates_grants() {
    let mut w = world("iam").await;
    // Bucket-policy mode: the functions read the billing bucket with their own role.
    w.deps
        .registry()
        .update("acme", PAYER, |c| {
            c.access_mode = AccessMode::BucketPolicy;
            c.role_arn = None;
        })
        .await
        .unwrap();
    let (_dir, out) = deliver(&w, 41, 3).await;

    let t = template();
    let users = json!({
        "plan": grants(&t, &w, "PlanFunction"),
        "part": grants(&t, &w, "PartFunction"),
    });
    let keys = enable_auth_with_users(&users);
    let plan = deps_as(&w, &keys["plan"]);
    let part = deps_as(&w, &keys["part"]);
    let admin = deps_as(&w, &keys["admin"]);
    assert!(
        w.deps.s3.list_buckets().send().await.is_err(),
        "auth is on: the made-up test keys no longer work"
    );
    w.sqs = aws_sdk_sqs::Client::new(&curlew_testkit::aws::sdk_conf_for(&keys["admin"]));

    let r = cur_ingest::plan::handle(
        &plan,
        s3_event(
            "s3-put-cur1-manifest.json",
            &w.billing,
            &out.manifest_keys[0],
        ),
    )
    .await
    .unwrap();
    assert!(r["outcomes"].to_string().contains("Planned"), "{r}");
    let drained = drain_with(&w, &part).await;
    assert!(drained.retried.is_empty(), "{drained:?}");
    assert_eq!(count(&drained.outcomes, is_commit), 1, "{drained:?}");

    w.deps = admin;
    let c = committed(&w).await;
    assert_eq!(c.summary.totals.billed_cost, out.expected.billed);

    // The grants are what moto enforced: the same roles may not write where
    // their function never writes.
    let own = |d: &cur_ingest::Deps, key: &str| {
        d.s3.put_object()
            .bucket(&d.config.store_bucket)
            .key(key)
            .body(b"x".to_vec().into())
            .send()
    };
    for (who, d) in [("plan", &plan), ("part", &part)] {
        for key in [
            "curlew/secrets/tenant=acme/111122223333.json",
            "curlew/onboarding/tenant=acme/external-id.json",
            "curlew/registry-by-bucket/evil/tenant=acme/111122223333",
        ] {
            let e = own(d, key).await.expect_err(key);
            assert!(
                format!("{e:?}").contains("AccessDenied"),
                "{who} writing {key}: {e:?}"
            );
        }
    }
    let current_key = w.deps.ledger().layout.current(&c.source, &c.period);
    let e = own(&plan, &current_key).await.expect_err("CURRENT");
    assert!(format!("{e:?}").contains("AccessDenied"), "{e:?}");
}
