//! The sweep Lambda's handler against moto_server (SNS, SQS, S3, STS):
//! the schedule event fans out one job per connection, each job sweeps its
//! connection, and a change reaches the results topic once with the filter
//! attributes tenant, payer_account, status and cause.

use curlew::onboard::{OnboardingHints, Onboardings};
use curlew::registry::{AccessMode, Connection, ConnectionStatus};
use curlew_testkit::aws::{drain_bodies, queue_subscribed, sdk_conf, topic};
use curlew_testkit::moto::{new_bucket, s3_client};
use serde_json::{json, Value};
use sweep::handler::{handle, SweepJob};
use sweep::{Config, Deps};

struct World {
    deps: Deps,
    sqs: aws_sdk_sqs::Client,
    sweep_queue: String,
    results_queue: String,
}

async fn world(tag: &str) -> World {
    let conf = sdk_conf();
    let s3 = s3_client();
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let store_bucket = new_bucket(&s3, &format!("{tag}-own")).await;
    let sweep_topic = topic(&sns, &format!("{tag}-sweep")).await;
    let results_topic = topic(&sns, &format!("{tag}-results")).await;
    let parts_topic = topic(&sns, &format!("{tag}-parts")).await;
    let sweep_queue = queue_subscribed(&sns, &sqs, &sweep_topic, &format!("{tag}-sweep")).await;
    let results_queue =
        queue_subscribed(&sns, &sqs, &results_topic, &format!("{tag}-results")).await;
    let deps = Deps {
        config: Config {
            store_bucket,
            store_prefix: "curlew".into(),
            sweep_topic_arn: sweep_topic,
            parts_topic_arn: parts_topic,
            results_topic_arn: results_topic,
            max_files: curlew::pipeline::DEFAULT_MAX_FILES,
            stale_hours: 48,
            concurrency: 4,
            // The test runs three scheduled sweeps within seconds.
            min_interval_minutes: 0,
        },
        s3,
        sns,
        sts: aws_sdk_sts::Client::new(&conf),
        org: aws_sdk_organizations::Client::new(&conf),
        exports: aws_sdk_bcmdataexports::Client::new(&conf),
        cur: aws_sdk_costandusagereport::Client::new(&conf),
    };
    World {
        deps,
        sqs,
        sweep_queue,
        results_queue,
    }
}

async fn connect(w: &World, tenant: &str, payer: &str, bucket: &str) {
    Onboardings::new(w.deps.own_store(), "curlew")
        .begin(tenant, OnboardingHints::default())
        .await
        .unwrap();
    let mut c = Connection::new(tenant, payer, AccessMode::CrossAccountRole, bucket, "cur");
    c.role_arn = Some(format!("arn:aws:iam::{payer}:role/curlew-read-{tenant}"));
    c.status = ConnectionStatus::Connected;
    w.deps.registry().create(&c).await.unwrap();
}

/// The schedule event, then the fanned-out jobs as Lambda's SQS source hands them over.
async fn scheduled_sweep(w: &World) -> (Value, Value) {
    let fanned = handle(
        &w.deps,
        curlew_testkit::events::event("scheduled-sweep.json"),
    )
    .await
    .unwrap();
    let bodies = drain_bodies(&w.sqs, &w.sweep_queue).await;
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"messageId": format!("m{i}"), "body": b, "eventSource": "aws:sqs"}))
        .collect();
    let swept = handle(&w.deps, json!({ "Records": records }))
        .await
        .unwrap();
    (fanned, swept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_fans_out_and_a_change_is_notified_once_with_its_attributes() {
    let w = world("sweepfn").await;
    let billing = new_bucket(&w.deps.s3, "sweepfn-billing").await;
    connect(&w, "acme", "710987654321", "sweepfn-no-such-bucket").await;
    connect(&w, "acme", "710987654322", &billing).await;
    connect(&w, "globex", "710987654323", &billing).await;

    let (fanned, swept) = scheduled_sweep(&w).await;
    assert_eq!(fanned, json!({"fanned_out": 3}));
    assert_eq!(swept, json!({"batchItemFailures": []}));
    // One failed sweep each (bucket gone; no manifest): nothing changes, nothing is said.
    assert!(drain_bodies(&w.sqs, &w.results_queue).await.is_empty());

    let (_, swept) = scheduled_sweep(&w).await;
    assert_eq!(swept, json!({"batchItemFailures": []}));
    let notices = drain_bodies(&w.sqs, &w.results_queue).await;
    let changed: Vec<Value> = notices
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|env| env["MessageAttributes"]["event"]["Value"] == "connection-changed")
        .collect();
    assert_eq!(changed.len(), 3, "{notices:?}");
    let gone = changed
        .iter()
        .find(|e| e["MessageAttributes"]["payer_account"]["Value"] == "710987654321")
        .expect("the lost bucket's notice");
    let attrs = &gone["MessageAttributes"];
    assert_eq!(
        (
            attrs["tenant"]["Value"].as_str(),
            attrs["status"]["Value"].as_str(),
            attrs["cause"]["Value"].as_str()
        ),
        (Some("acme"), Some("broken"), Some("bucket-gone"))
    );
    let others: Vec<&str> = changed
        .iter()
        .filter(|e| e["MessageAttributes"]["payer_account"]["Value"] != "710987654321")
        .map(|e| e["MessageAttributes"]["cause"]["Value"].as_str().unwrap())
        .collect();
    assert_eq!(others, vec!["export-missing", "export-missing"]);

    // A third sweep: still broken, nothing new to say.
    scheduled_sweep(&w).await;
    assert!(drain_bodies(&w.sqs, &w.results_queue).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_no_sweep_job_is_reported_failed_alone() {
    let w = world("sweeppoison").await;
    let billing = new_bucket(&w.deps.s3, "sweeppoison-billing").await;
    connect(&w, "acme", "810987654321", &billing).await;
    let job = serde_json::to_string(&SweepJob {
        version: 1,
        tenant: "acme".into(),
        payer_account: "810987654321".into(),
    })
    .unwrap();
    let out = handle(
        &w.deps,
        json!({"Records": [
            {"messageId": "good", "body": job, "eventSource": "aws:sqs"},
            {"messageId": "bad", "body": "{not json", "eventSource": "aws:sqs"}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "bad"}]})
    );
    let (c, _) = w.deps.registry().get("acme", "810987654321").await.unwrap();
    assert!(c.last_checked_at.is_some());
}

#[tokio::test]
async fn an_unknown_event_is_an_error() {
    let w = world("sweepunknown").await;
    assert!(handle(&w.deps, json!({"hello": "world"})).await.is_err());
}
