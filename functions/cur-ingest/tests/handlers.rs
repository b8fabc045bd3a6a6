//! Handler tests driven by the files in events/, against moto_server on
//! 127.0.0.1 through the real S3, SNS and SQS clients: a CUR delivery put into
//! the emulated bucket ends, through real SNS/SQS messages, as exactly one
//! committed revision with the totals a local `curlew ingest` gives.

#[path = "../../../shared/tests/common/moto.rs"]
mod moto;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use cur_ingest::part::PartOutcome;
use cur_ingest::{part, plan, Config, Deps};
use curlew::discover::Source;
use curlew::ingest::{ingest, IngestOptions};
use curlew::ledger::Ledger;
use curlew::onboard::{OnboardingHints, Onboardings};
use curlew::registry::{AccessMode, Connection};
use curlew::report::load_committed;
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use curlew::store::Store;
use serde_json::Value;
use std::path::Path;

fn event(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// An events/ S3 notification re-pointed at `bucket`/`key` (key URL-encoded as S3 does).
fn s3_event(name: &str, bucket: &str, key: &str) -> Value {
    let mut v = event(name);
    let rec = &mut v["Records"][0]["s3"];
    rec["bucket"]["name"] = bucket.into();
    rec["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    rec["object"]["key"] = key.replace('=', "%3D").into();
    v
}

struct World {
    deps: Deps,
    sqs: aws_sdk_sqs::Client,
    parts_queue: String,
    results_queue: String,
    billing: String,
}

fn sdk_conf() -> aws_config::SdkConfig {
    let creds =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "curlew-tests");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&moto::moto().endpoint)
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(creds))
        .build()
}

async fn queue_subscribed(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic: &str,
    name: &str,
) -> String {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .unwrap();
    url
}

async fn world(tag: &str) -> World {
    let conf = sdk_conf();
    let s3 = moto::s3_client();
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let store = moto::new_bucket(&s3, &format!("{tag}-store")).await;
    let billing = moto::new_bucket(&s3, &format!("{tag}-billing")).await;
    let parts = sns
        .create_topic()
        .name(format!("{tag}-parts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let results = sns
        .create_topic()
        .name(format!("{tag}-results"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let parts_queue = queue_subscribed(&sns, &sqs, &parts, &format!("{tag}-parts-q")).await;
    let results_queue = queue_subscribed(&sns, &sqs, &results, &format!("{tag}-results-q")).await;
    let config = Config {
        store_bucket: store,
        store_prefix: "curlew".into(),
        parts_topic_arn: parts,
        results_topic_arn: results,
    };
    let own = Store::S3(curlew::store::S3Store::new(
        s3.clone(),
        config.store_bucket.clone(),
    ));
    let deps = Deps {
        config,
        s3,
        sns,
        sts: aws_sdk_sts::Client::new(&conf),
    };
    // The customer's bucket is read through the connection's role, assumed
    // (on moto's STS) with the tenant's External ID from the onboarding store.
    Onboardings::new(own, "curlew")
        .begin("acme", OnboardingHints::default())
        .await
        .unwrap();
    let mut conn = Connection::new(
        "acme",
        "111122223333",
        AccessMode::CrossAccountRole,
        &billing,
        "",
    );
    conn.role_arn = Some("arn:aws:iam::111122223333:role/curlew-read-acme".into());
    deps.registry().create(&conn).await.unwrap();
    World {
        deps,
        sqs,
        parts_queue,
        results_queue,
        billing,
    }
}

/// Put a generated sample into the billing bucket at the keys its manifests name
/// (the generator writes real layouts: manifests name full bucket keys).
async fn upload(w: &World, dir: &Path, out: &curlew::sample::SampleOutput) {
    for key in out.data_keys.iter().chain(&out.manifest_keys) {
        let body = std::fs::read(dir.join(key)).unwrap();
        w.deps
            .s3
            .put_object()
            .bucket(&w.billing)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
}

/// Upload a generated delivery into the billing bucket under `cur/`; returns
/// the local copy (for a reference `curlew ingest`) and its manifest keys.
async fn deliver(w: &World, seed: u64, files: usize) -> (tempfile::TempDir, Vec<String>) {
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 1_500);
    spec.versioning = Versioning::New;
    spec.seed = seed;
    spec.files = files;
    let out = write_sample(&spec, local.path()).unwrap();
    upload(w, local.path(), &out).await;
    (local, out.manifest_keys.clone())
}

/// Receive every part job from the queue and run the worker on it, as Lambda's
/// SQS event source would (messages reported as failed stay in the queue).
async fn drain(w: &World) -> Vec<PartOutcome> {
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        let got = w
            .sqs
            .receive_message()
            .queue_url(&w.parts_queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let msgs = got.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        let mut event = SqsEvent::default();
        event.records = msgs
            .iter()
            .map(|m| {
                let mut s = SqsMessage::default();
                s.message_id = m.message_id.clone();
                s.receipt_handle = m.receipt_handle.clone();
                s.body = m.body.clone();
                s.event_source = Some("aws:sqs".into());
                s
            })
            .collect();
        let (resp, o) = part::handle(&w.deps, event).await;
        assert!(
            resp.batch_item_failures.is_empty(),
            "{:?}",
            resp.batch_item_failures
        );
        outcomes.extend(o);
        for m in msgs {
            w.sqs
                .delete_message()
                .queue_url(&w.parts_queue)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    outcomes
}

async fn local_totals(dir: &Path) -> curlew::rollup::Sums {
    let out = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(Store::local(out.path()), "");
    let src = Source {
        store: Store::local(dir),
        prefix: String::new(),
    };
    let r = ingest(&src, &ledger, &IngestOptions::new("acme"))
        .await
        .unwrap();
    assert!(!r.failed(), "{r:?}");
    load_committed(&ledger, "acme", None).await.unwrap()[0]
        .summary
        .totals
        .clone()
}

async fn committed(w: &World) -> curlew::report::Committed {
    let all = load_committed(&w.deps.ledger(), "acme", None)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    all.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_to_commit_through_sns_and_sqs() {
    let w = world("e2e").await;
    let (v1, manifests) = deliver(&w, 1, 3).await;
    // AWS writes two manifests per new-version delivery; both events arrive.
    for key in &manifests {
        let r = plan::handle(
            &w.deps,
            s3_event("s3-put-cur1-manifest.json", &w.billing, key),
        )
        .await
        .unwrap();
        assert!(
            r["outcomes"].to_string().contains("Planned")
                || r["outcomes"].to_string().contains("NotNewer"),
            "{r}"
        );
    }
    let outcomes = drain(&w).await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, PartOutcome::Committed(_)))
            .count(),
        1,
        "{outcomes:?}"
    );
    let c = committed(&w).await;
    assert_eq!(c.summary.totals, local_totals(v1.path()).await);
    assert_eq!(c.summary.input_files.len(), 3);
    // The results topic announced the commit, with filterable attributes.
    let got = w
        .sqs
        .receive_message()
        .queue_url(&w.results_queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let notes = got.messages.unwrap_or_default();
    assert_eq!(notes.len(), 1);
    let envelope: Value = serde_json::from_str(notes[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope["MessageAttributes"]["tenant"]["Value"], "acme");
    let notice: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(notice["billing_period"], "2024-01");

    // A duplicate S3 event changes nothing.
    let r = plan::handle(
        &w.deps,
        s3_event("s3-put-cur1-manifest.json", &w.billing, &manifests[0]),
    )
    .await
    .unwrap();
    assert!(r["outcomes"].to_string().contains("NotNewer"), "{r}");
    assert!(drain(&w).await.is_empty());

    // A second revision, wrapped in SNS: only it counts.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (v2, manifests2) = deliver(&w, 2, 2).await;
    let mut sns = event("sns-s3-put-cur1-manifest.json");
    let inner = s3_event("s3-put-cur1-manifest.json", &w.billing, &manifests2[1]);
    sns["Records"][0]["Sns"]["Message"] = inner.to_string().into();
    plan::handle(&w.deps, sns).await.unwrap();
    drain(&w).await;
    let c2 = committed(&w).await;
    assert_ne!(c2.current.revision, c.current.revision);
    assert_eq!(c2.summary.totals, local_totals(v2.path()).await);
    assert_eq!(c2.summary.input_files.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_wrapped_cur2_manifest_and_ignored_objects() {
    let w = world("sqs").await;
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur2Parquet, 700);
    spec.files = 2;
    let out = write_sample(&spec, local.path()).unwrap();
    upload(&w, local.path(), &out).await;
    // S3 -> SNS -> SQS -> planner (batch item failures shape).
    let mut ev = event("sqs-sns-s3-put-cur2-manifest.json");
    let body: Value = serde_json::from_str(ev["Records"][0]["body"].as_str().unwrap()).unwrap();
    let mut envelope = body.clone();
    envelope["Message"] = s3_event(
        "s3-put-cur2-manifest.json",
        &w.billing,
        &out.manifest_keys[0],
    )
    .to_string()
    .into();
    ev["Records"][0]["body"] = envelope.to_string().into();
    let r = plan::handle(&w.deps, ev).await.unwrap();
    assert_eq!(r["batchItemFailures"], serde_json::json!([]));
    drain(&w).await;
    assert_eq!(committed(&w).await.summary.rows_read, 700);

    // A data file is not a manifest; an unknown bucket is logged, not failed.
    let r = plan::handle(
        &w.deps,
        s3_event("s3-put-data-file.json", &w.billing, &out.data_keys[0]),
    )
    .await
    .unwrap();
    assert!(r["outcomes"].to_string().contains("NotAManifest"), "{r}");
    let r = plan::handle(
        &w.deps,
        s3_event(
            "s3-put-cur2-manifest.json",
            "nobody-knows-this-bucket",
            "x/y-Manifest.json",
        ),
    )
    .await
    .unwrap();
    assert!(r["outcomes"].to_string().contains("UnknownBucket"), "{r}");
    assert!(drain(&w).await.is_empty());

    // A role-mode connection without a role (or a tenant without an External
    // ID) fails for good, naming the connection: no retry storm.
    let orphan = moto::new_bucket(&w.deps.s3, "orphan").await;
    w.deps
        .registry()
        .create(&Connection::new(
            "nobody",
            "444455556666",
            AccessMode::CrossAccountRole,
            &orphan,
            "",
        ))
        .await
        .unwrap();
    let obj = cur_ingest::announced::ObjectRef {
        bucket: orphan.clone(),
        key: "cur/r/20240101-20240201/r-Manifest.json".into(),
    };
    let e = plan::plan_object(&w.deps, &obj).await.unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert!(
        e.to_string()
            .contains("nobody/444455556666 has no role ARN"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_fails_alone() {
    let w = world("poison").await;
    let (_v1, manifests) = deliver(&w, 3, 1).await;
    plan::handle(
        &w.deps,
        s3_event("s3-put-cur1-manifest.json", &w.billing, &manifests[1]),
    )
    .await
    .unwrap();
    // Take the real job off the queue, then replay it beside the poison message from events/.
    let got = w
        .sqs
        .receive_message()
        .queue_url(&w.parts_queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let real = got.messages.unwrap_or_default().remove(0);
    let mut ev: SqsEvent =
        serde_json::from_value(event("sqs-parts-batch-with-poison.json")).unwrap();
    ev.records[0].body = real.body.clone();
    let poison_id = ev.records[1].message_id.clone().unwrap();
    let (resp, outcomes) = part::handle(&w.deps, ev).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec![poison_id.as_str()]);
    assert!(
        matches!(outcomes[..], [PartOutcome::Committed(_)]),
        "{outcomes:?}"
    );
}

/// The real anonymised legacy CUR from ../shared/data, delivered with a
/// manifest into the emulated bucket, ends committed with the exact totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cur_from_shared_data_through_the_functions() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv");
    if !file.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing; CI must have ../shared beside the repository",
            file.display()
        );
        eprintln!("skipping: {} not found", file.display());
        return;
    }
    let w = world("real").await;
    let asm = "0b7c5f2e-1111-4222-8333-944455556666";
    let data_key = format!("cur/anon/20231101-20231201/{asm}/anon-1.csv");
    let manifest = serde_json::json!({
        "assemblyId": asm, "reportName": "anon", "compression": "GZIP", "contentType": "text/csv",
        "billingPeriod": {"start": "20231101T000000.000Z", "end": "20231201T000000.000Z"},
        "bucket": w.billing, "reportKeys": [data_key], "additionalArtifactKeys": []
    });
    let manifest_key = format!("cur/anon/20231101-20231201/{asm}/anon-Manifest.json");
    w.deps
        .s3
        .put_object()
        .bucket(&w.billing)
        .key(&data_key)
        .body(std::fs::read(&file).unwrap().into())
        .send()
        .await
        .unwrap();
    w.deps
        .s3
        .put_object()
        .bucket(&w.billing)
        .key(&manifest_key)
        .body(manifest.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    plan::handle(
        &w.deps,
        s3_event("s3-put-cur1-manifest.json", &w.billing, &manifest_key),
    )
    .await
    .unwrap();
    drain(&w).await;
    let c = committed(&w).await;
    assert_eq!(c.period, "2023-11");
    assert_eq!(c.summary.rows_read, 1281);
    assert_eq!(
        c.summary.totals.billed_cost,
        curlew::money::dec("1.68230869740")
    );
    let local = tempfile::tempdir().unwrap();
    std::fs::copy(&file, local.path().join("anon.csv")).unwrap();
    assert_eq!(c.summary.totals, local_totals(local.path()).await);
}
