//! The cur-ingest test world: curlew's store, a customer's billing bucket,
//! the parts and results topics with a queue on each, all on moto_server
//! (127.0.0.1) through the real S3, SNS, SQS and STS clients.
#![allow(dead_code)]

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use cur_ingest::part::PartOutcome;
use cur_ingest::{part, Config, Deps};
use curlew::discover::Source;
use curlew::ingest::{ingest, IngestOptions};
use curlew::ledger::Ledger;
use curlew::onboard::{OnboardingHints, Onboardings};
use curlew::pipeline::{Silent, DEFAULT_MAX_FILES};
use curlew::registry::{AccessMode, Connection};
use curlew::report::load_committed;
use curlew::sample::{write_sample, SampleFormat, SampleOutput, SampleSpec, Versioning};
use curlew::store::Store;
#[allow(unused_imports)]
pub use curlew_testkit::events::{event, s3_event};
use curlew_testkit::{aws, moto};
use serde_json::Value;
use std::path::Path;

pub const PAYER: &str = "111122223333";

pub struct World {
    pub deps: Deps,
    pub sqs: aws_sdk_sqs::Client,
    pub parts_queue: String,
    pub results_queue: String,
    pub billing: String,
}

/// A world with tenant `acme` connected (role mode) to the billing bucket at `prefix`.
pub async fn world(tag: &str) -> World {
    world_at(tag, "").await
}

pub async fn world_at(tag: &str, prefix: &str) -> World {
    world_with(tag, prefix, |_| {}).await
}

/// [`world_at`], with `f` adjusting tenant acme's connection before it is stored.
pub async fn world_with(tag: &str, prefix: &str, f: impl FnOnce(&mut Connection)) -> World {
    let conf = aws::sdk_conf();
    let s3 = moto::s3_client();
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let store = moto::new_bucket(&s3, &format!("{tag}-store")).await;
    let billing = moto::new_bucket(&s3, &format!("{tag}-billing")).await;
    let parts = aws::topic(&sns, &format!("{tag}-parts")).await;
    let results = aws::topic(&sns, &format!("{tag}-results")).await;
    let parts_queue = aws::queue_subscribed(&sns, &sqs, &parts, &format!("{tag}-parts-q")).await;
    let results_queue =
        aws::queue_subscribed(&sns, &sqs, &results, &format!("{tag}-results-q")).await;
    let config = Config {
        store_bucket: store,
        store_prefix: "curlew".into(),
        parts_topic_arn: parts,
        results_topic_arn: results,
        max_files: DEFAULT_MAX_FILES,
    };
    let deps = Deps {
        config,
        s3,
        sns,
        sts: aws_sdk_sts::Client::new(&conf),
    };
    let w = World {
        deps,
        sqs,
        parts_queue,
        results_queue,
        billing,
    };
    connect(&w, "acme", PAYER, prefix, f).await;
    w
}

/// Register a connection (role mode; the tenant's External ID minted) and let `f` adjust it.
pub async fn connect(
    w: &World,
    tenant: &str,
    payer: &str,
    prefix: &str,
    f: impl FnOnce(&mut Connection),
) -> Connection {
    let own = Store::S3(curlew::store::S3Store::new(
        w.deps.s3.clone(),
        w.deps.config.store_bucket.clone(),
    ));
    Onboardings::new(own, "curlew")
        .begin(tenant, OnboardingHints::default())
        .await
        .unwrap();
    let mut conn = Connection::new(
        tenant,
        payer,
        AccessMode::CrossAccountRole,
        &w.billing,
        prefix,
    );
    conn.role_arn = Some(format!("arn:aws:iam::{payer}:role/curlew-read-{tenant}"));
    f(&mut conn);
    w.deps.registry().create(&conn).await.unwrap();
    conn
}

/// Put a generated sample into the billing bucket at the keys its manifests name.
pub async fn upload(w: &World, dir: &Path, out: &SampleOutput) {
    curlew_testkit::upload::upload_keys(
        &w.deps.s3,
        &w.billing,
        dir,
        out.data_keys.iter().chain(&out.manifest_keys),
    )
    .await;
}

/// A generated legacy CUR delivery (new-version layout) of `payer`, uploaded.
pub async fn deliver(w: &World, seed: u64, files: usize) -> (tempfile::TempDir, SampleOutput) {
    deliver_spec(w, |s| {
        s.seed = seed;
        s.files = files;
    })
    .await
}

pub async fn deliver_spec(
    w: &World,
    f: impl FnOnce(&mut SampleSpec),
) -> (tempfile::TempDir, SampleOutput) {
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 1_500);
    spec.versioning = Versioning::New;
    spec.payer = Some(PAYER.into());
    f(&mut spec);
    let out = write_sample(&spec, local.path()).unwrap();
    upload(w, local.path(), &out).await;
    (local, out)
}

/// Run the planner on an S3 event for `key` in the billing bucket.
pub async fn announce(w: &World, key: &str) -> Value {
    cur_ingest::plan::handle(
        &w.deps,
        s3_event("s3-put-cur1-manifest.json", &w.billing, key),
    )
    .await
    .unwrap()
}

/// One batch of part jobs as Lambda's SQS event source hands them over.
pub async fn receive(w: &World) -> Vec<aws_sdk_sqs::types::Message> {
    w.sqs
        .receive_message()
        .queue_url(&w.parts_queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

pub fn sqs_event(msgs: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
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
    event
}

/// What draining the parts queue did: every outcome, and every message the
/// worker reported as failed (retried).
#[derive(Debug, Default)]
pub struct Drained {
    pub outcomes: Vec<PartOutcome>,
    pub retried: Vec<String>,
}

/// Receive every part job and run the worker on it with `deps`; failed
/// messages are deleted too (the test decides about redelivery).
pub async fn drain_with(w: &World, deps: &Deps) -> Drained {
    let mut d = Drained::default();
    for _ in 0..50 {
        let msgs = receive(w).await;
        if msgs.is_empty() {
            break;
        }
        let (resp, o) = part::handle(deps, sqs_event(&msgs)).await;
        d.retried.extend(
            resp.batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone()),
        );
        d.outcomes.extend(o);
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
    d
}

/// Drain with the world's own deps; nothing may fail.
pub async fn drain(w: &World) -> Vec<PartOutcome> {
    let d = drain_with(w, &w.deps).await;
    assert!(d.retried.is_empty(), "{:?}", d);
    d.outcomes
}

/// The notices on the results topic so far: (event attribute, notice JSON).
pub async fn notices(w: &World) -> Vec<(String, Value)> {
    aws::drain_bodies(&w.sqs, &w.results_queue)
        .await
        .into_iter()
        .map(|b| {
            let env: Value = serde_json::from_str(&b).unwrap();
            let event = env["MessageAttributes"]["event"]["Value"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (
                event,
                serde_json::from_str(env["Message"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// A local `curlew ingest` of `dir` with `opts`, into a fresh store: what it committed.
pub async fn local_ingest(dir: &Path, opts: &IngestOptions) -> Vec<curlew::report::Committed> {
    let out = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(Store::local(out.path()), "");
    let src = Source {
        store: Store::local(dir),
        prefix: String::new(),
    };
    let r = ingest(&src, &ledger, opts, &Silent).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    load_committed(&ledger, &opts.tenant, None).await.unwrap()
}

pub async fn local_totals(dir: &Path) -> curlew::rollup::Sums {
    local_ingest(dir, &IngestOptions::new("acme")).await[0]
        .summary
        .totals
        .clone()
}

/// Everything committed for tenant `acme`.
pub async fn committed_all(w: &World) -> Vec<curlew::report::Committed> {
    load_committed(&w.deps.ledger(), "acme", None)
        .await
        .unwrap()
}

/// The one committed period of tenant `acme`.
pub async fn committed(w: &World) -> curlew::report::Committed {
    let all = committed_all(w).await;
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter()
            .map(|c| (&c.period, &c.source))
            .collect::<Vec<_>>()
    );
    all.into_iter().next().unwrap()
}

pub fn count<T>(v: &[T], f: impl Fn(&T) -> bool) -> usize {
    v.iter().filter(|x| f(x)).count()
}

pub fn is_commit(o: &PartOutcome) -> bool {
    matches!(
        o,
        PartOutcome::Job(curlew::pipeline::JobOutcome::Committed(c))
            if c.iter().any(|p| matches!(p.outcome, curlew::ledger::CommitOutcome::Committed { .. }))
    )
}
