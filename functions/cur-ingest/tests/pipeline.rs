//! The Lambda path of the one pipeline, defect by defect: each test here
//! failed (or could not be written) before the pipeline moved into `curlew`.

mod common;

use common::*;
use cur_ingest::part::PartOutcome;

use curlew::ingest::IngestOptions;
use curlew::ledger::SourceId;
use curlew::pipeline::JobOutcome;
use curlew::registry::ConnectionStatus;
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use std::collections::BTreeSet;

fn outcomes_text(v: &serde_json::Value) -> String {
    v["outcomes"].to_string()
}

/// The Lambda path applies the connection like `curlew ingest` applies its
/// flags: connected accounts (others unattributed) and the start date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_path_equals_local_ingest_with_accounts_and_start_date() {
    let w = world("same").await;
    let (dec, dec_out) = deliver_spec(&w, |s| {
        s.period = "2023-12".into();
        s.seed = 5;
    })
    .await;
    let (jan, jan_out) = deliver_spec(&w, |s| {
        s.seed = 6;
        s.files = 2;
    })
    .await;
    let accounts: BTreeSet<String> = jan_out
        .expected
        .billed_per_account
        .keys()
        .take(5)
        .cloned()
        .collect();
    w.deps
        .registry()
        .update("acme", PAYER, |c| {
            c.linked_accounts = accounts.iter().cloned().collect();
            c.since = Some("2024-01".into());
        })
        .await
        .unwrap();
    let r = announce(&w, &dec_out.manifest_keys[0]).await;
    assert!(outcomes_text(&r).contains("BeforeSince"), "{r}");
    announce(&w, &jan_out.manifest_keys[0]).await;
    drain(&w).await;
    let lambda = committed(&w).await;
    assert_eq!(lambda.period, "2024-01");

    let mut opts = IngestOptions::new("acme");
    opts.payer = Some(PAYER.into());
    opts.since = Some("2024-01".into());
    let mut with_payer = accounts.clone();
    with_payer.insert(PAYER.into());
    opts.accounts = Some(with_payer);
    let local = local_ingest(jan.path(), &opts).await;
    assert_eq!(local.len(), 1);
    assert_eq!(lambda.rows, local[0].rows, "same rollup rows");
    assert_eq!(lambda.summary.totals, local[0].summary.totals);
    assert_eq!(lambda.summary.unattributed, local[0].summary.unattributed);
    assert!(
        !lambda.summary.unattributed.accounts.is_empty(),
        "some spend is unattributed"
    );
    assert!(lambda
        .summary
        .unattributed
        .accounts
        .keys()
        .all(|a| !accounts.contains(a)));
    drop(dec);
}

/// Two payers of one tenant (an MSP): both kept, the tenant's report sums both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_payers_of_one_tenant_are_both_kept() {
    let w = world("msp").await;
    let other_bucket = curlew_testkit::moto::new_bucket(&w.deps.s3, "msp-b").await;
    let other = "444455556666";
    connect(&w, "acme", other, "", |c| c.bucket = other_bucket.clone()).await;
    let (_a, a_out) = deliver(&w, 7, 1).await;
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 900);
    spec.versioning = Versioning::New;
    spec.payer = Some(other.into());
    spec.seed = 8;
    let b_out = write_sample(&spec, local.path()).unwrap();
    curlew_testkit::upload::upload_keys(
        &w.deps.s3,
        &other_bucket,
        local.path(),
        b_out.data_keys.iter().chain(&b_out.manifest_keys),
    )
    .await;
    announce(&w, &a_out.manifest_keys[0]).await;
    cur_ingest::plan::handle(
        &w.deps,
        s3_event(
            "s3-put-cur1-manifest.json",
            &other_bucket,
            &b_out.manifest_keys[0],
        ),
    )
    .await
    .unwrap();
    drain(&w).await;
    let all = committed_all(&w).await;
    let payers: Vec<&str> = all.iter().map(|c| c.source.payer.as_str()).collect();
    assert_eq!(payers, vec![PAYER, other]);
    let sum: curlew::money::Money = all.iter().map(|c| c.summary.totals.billed_cost).sum();
    assert_eq!(sum, a_out.expected.billed + b_out.expected.billed);
}

/// A legacy CUR and its CUR 2.0 successor under one prefix: never summed.
/// Without a report name the first one seen binds the connection and the
/// second is refused naming both (one record, one notice); a connection
/// naming the CUR 2.0 export ingests that one and skips the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_cur_and_a_cur2_export_under_one_prefix() {
    let w = world("two-reports").await;
    let (_l, legacy) = deliver(&w, 9, 1).await;
    let (_c, cur2) = deliver_spec(&w, |s| {
        s.format = SampleFormat::Cur2Parquet;
        s.rows = 600;
    })
    .await;
    announce(&w, &legacy.manifest_keys[0]).await;
    let r = cur_ingest::plan::handle(
        &w.deps,
        s3_event(
            "s3-put-cur2-manifest.json",
            &w.billing,
            &cur2.manifest_keys[0],
        ),
    )
    .await
    .unwrap();
    assert!(outcomes_text(&r).contains("Failed"), "{r}");
    drain(&w).await;
    let all = committed_all(&w).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].source.report, legacy.report);
    let notes = notices(&w).await;
    let failed: Vec<_> = notes.iter().filter(|n| n.0 == "delivery-failed").collect();
    assert_eq!(failed.len(), 1, "{notes:?}");
    let err = failed[0].1["error"].as_str().unwrap();
    assert!(
        err.contains(&legacy.report) && err.contains(&cur2.report),
        "{err}"
    );
    // The same event again: the record exists, nothing is announced twice.
    cur_ingest::plan::handle(
        &w.deps,
        s3_event(
            "s3-put-cur2-manifest.json",
            &w.billing,
            &cur2.manifest_keys[0],
        ),
    )
    .await
    .unwrap();
    assert!(notices(&w).await.is_empty());

    // A tenant whose connection names the CUR 2.0 export.
    let w2 = world("named").await;
    w2.deps
        .registry()
        .update("acme", PAYER, |c| c.report = Some(cur2.report.clone()))
        .await
        .unwrap();
    upload(&w2, _l.path(), &legacy).await;
    upload(&w2, _c.path(), &cur2).await;
    let r = announce(&w2, &legacy.manifest_keys[0]).await;
    assert!(outcomes_text(&r).contains("OtherReport"), "{r}");
    cur_ingest::plan::handle(
        &w2.deps,
        s3_event(
            "s3-put-cur2-manifest.json",
            &w2.billing,
            &cur2.manifest_keys[0],
        ),
    )
    .await
    .unwrap();
    drain(&w2).await;
    let c = committed(&w2).await;
    assert_eq!(c.source.report, cur2.report);
    assert_eq!(c.summary.rows_read, 600);
}

/// Overwrite mode: a data file AWS rewrites after planning is not read as is;
/// the revision is abandoned, CURRENT unchanged, nothing announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_file_rewritten_after_planning_abandons_the_revision() {
    let w = world("rewrite").await;
    let (dir, out) = deliver_spec(&w, |s| {
        s.versioning = Versioning::Overwrite;
        s.files = 2;
    })
    .await;
    announce(&w, &out.manifest_keys[0]).await;
    // AWS rewrites the second file in place.
    let key = &out.data_keys[1];
    let mut body = std::fs::read(dir.path().join(key)).unwrap();
    body.extend_from_slice(&std::fs::read(dir.path().join(&out.data_keys[0])).unwrap());
    curlew_testkit::upload::put(&w.deps.s3, &w.billing, key, body).await;
    let outcomes = drain(&w).await;
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, PartOutcome::Job(JobOutcome::Abandoned { why }) if why.contains(key.as_str()))),
        "{outcomes:?}"
    );
    assert!(committed_all(&w).await.is_empty(), "CURRENT unchanged");
    assert!(notices(&w).await.is_empty());
}

/// A bad file is recorded once and announced once; it is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_is_one_failure_record_and_one_notice() {
    let w = world("bad").await;
    let (_d, out) = deliver_spec(&w, |s| s.files = 2).await;
    // The second file is not gzip at all (a truncated or foreign upload).
    curlew_testkit::upload::put(
        &w.deps.s3,
        &w.billing,
        &out.data_keys[1],
        b"\x1f\x8bnot really gzip".to_vec(),
    )
    .await;
    announce(&w, &out.manifest_keys[1]).await;
    let msgs = receive(&w).await;
    assert_eq!(msgs.len(), 2);
    let ev = sqs_event(&msgs);
    let (resp, outcomes) = cur_ingest::part::handle(&w.deps, ev.clone()).await;
    assert!(resp.batch_item_failures.is_empty(), "not retried: {resp:?}");
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, PartOutcome::Job(JobOutcome::Failed(r)) if r.file.as_deref() == Some(out.data_keys[1].as_str()))),
        "{outcomes:?}"
    );
    // SQS delivers the same batch again (at-least-once): still one record, one notice.
    let (resp, _) = cur_ingest::part::handle(&w.deps, ev).await;
    assert!(resp.batch_item_failures.is_empty());
    let records = curlew::pipeline::failures(&w.deps.ledger(), "acme")
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0].error.contains(&out.data_keys[1]),
        "{}",
        records[0].error
    );
    assert!(
        records[0].error.contains("What to do"),
        "{}",
        records[0].error
    );
    let notes = notices(&w).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "delivery-failed");
    assert_eq!(notes[0].1["file"], out.data_keys[1].as_str());
    assert!(committed_all(&w).await.is_empty());
}

/// The results topic fails once after CURRENT moved: the retry publishes the
/// notice from the outbox, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_notice_is_published_once_on_retry() {
    let w = world("outbox").await;
    let (_d, out) = deliver(&w, 11, 2).await;
    announce(&w, &out.manifest_keys[1]).await;
    let mut broken = w.deps.clone();
    broken.config.results_topic_arn = "arn:aws:sns:us-east-1:123456789012:no-such-topic".into();
    let msgs = receive(&w).await;
    assert_eq!(msgs.len(), 2);
    let (resp, _) = cur_ingest::part::handle(&broken, sqs_event(&msgs)).await;
    assert_eq!(
        resp.batch_item_failures.len(),
        1,
        "the committing job is retried"
    );
    assert_eq!(
        committed_all(&w).await.len(),
        1,
        "CURRENT moved before the publish failed"
    );
    assert!(notices(&w).await.is_empty());
    let again: Vec<_> = msgs
        .iter()
        .filter(|m| {
            m.message_id.as_deref() == Some(resp.batch_item_failures[0].item_identifier.as_str())
        })
        .cloned()
        .collect();
    let (resp, _) = cur_ingest::part::handle(&w.deps, sqs_event(&again)).await;
    assert!(resp.batch_item_failures.is_empty());
    // A third delivery of the same job publishes nothing more.
    cur_ingest::part::handle(&w.deps, sqs_event(&again)).await;
    let notes = notices(&w).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "revision-committed");
}

/// One tenant's corrupt registry document does not stop another's ingestion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_corrupt_registry_document_affects_only_itself() {
    let w = world("corrupt").await;
    for (k, body) in [
        (
            "curlew/registry/tenant=evil/999988887777.json",
            b"{not json".to_vec(),
        ),
        (
            &*format!(
                "curlew/registry-by-bucket/{}/tenant=evil/999988887777",
                w.billing
            ),
            Vec::new(),
        ),
    ] {
        curlew_testkit::upload::put(&w.deps.s3, &w.deps.config.store_bucket, k, body).await;
    }
    let (_d, out) = deliver(&w, 12, 1).await;
    let r = announce(&w, &out.manifest_keys[0]).await;
    assert!(outcomes_text(&r).contains("Planned"), "{r}");
    drain(&w).await;
    assert_eq!(
        committed(&w).await.source,
        SourceId::new("acme", PAYER, &out.report)
    );
}

/// Upload a sample under `prefix/` (its manifests' keys rewritten to match).
async fn deliver_under(w: &World, prefix: &str, seed: u64) -> Vec<String> {
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 300);
    spec.payer = Some(PAYER.into());
    spec.seed = seed;
    let out = write_sample(&spec, local.path()).unwrap();
    for k in &out.data_keys {
        let body = std::fs::read(local.path().join(k)).unwrap();
        curlew_testkit::upload::put(&w.deps.s3, &w.billing, &format!("{prefix}/{k}"), body).await;
    }
    let mut keys = Vec::new();
    for k in &out.manifest_keys {
        let text = std::fs::read_to_string(local.path().join(k)).unwrap();
        let text = text.replace("\"cur/", &format!("\"{prefix}/cur/"));
        let key = format!("{prefix}/{k}");
        curlew_testkit::upload::put(&w.deps.s3, &w.billing, &key, text.into_bytes()).await;
        keys.push(key);
    }
    keys
}

/// The connection's prefix matches whole path segments: `acme` does not
/// cover `acme-eu/...`; and a manifest may not name files outside the prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_match_whole_segments_and_bound_the_manifest() {
    let w = world_at("prefix", "acme").await;
    let eu = deliver_under(&w, "acme-eu", 13).await;
    let r = announce(&w, &eu[0]).await;
    assert!(outcomes_text(&r).contains("UnknownBucket"), "{r}");
    let mine = deliver_under(&w, "acme", 14).await;
    let r = announce(&w, &mine[0]).await;
    assert!(outcomes_text(&r).contains("Planned"), "{r}");
    drain(&w).await;
    assert_eq!(committed_all(&w).await.len(), 1);

    // A manifest under the prefix that lists a file outside it is refused.
    let forged = serde_json::json!({
        "assemblyId": "forged-1", "reportName": "curlew-cur", "account": PAYER,
        "billingPeriod": {"start": "20240301T000000.000Z", "end": "20240401T000000.000Z"},
        "reportKeys": ["acme-eu/cur/curlew-cur/20240101-20240201/curlew-cur-00001.csv.gz"]
    });
    let key = "acme/cur/curlew-cur/20240301-20240401/curlew-cur-Manifest.json";
    curlew_testkit::upload::put(&w.deps.s3, &w.billing, key, forged.to_string().into_bytes()).await;
    let r = announce(&w, key).await;
    assert!(outcomes_text(&r).contains("outside the connection"), "{r}");
    assert!(drain(&w).await.is_empty());
}

/// A disconnected connection is kept but not ingested: events and jobs for it are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_connection_is_ignored() {
    let w = world("gone").await;
    let (_d, out) = deliver(&w, 15, 1).await;
    announce(&w, &out.manifest_keys[0]).await;
    w.deps
        .registry()
        .update("acme", PAYER, |c| c.status = ConnectionStatus::Disconnected)
        .await
        .unwrap();
    let outcomes = drain(&w).await;
    assert!(
        matches!(outcomes[..], [PartOutcome::Disconnected]),
        "{outcomes:?}"
    );
    let r = announce(&w, &out.manifest_keys[0]).await;
    assert!(outcomes_text(&r).contains("UnknownBucket"), "{r}");
    assert!(committed_all(&w).await.is_empty());
}

/// A 5,000-file manifest is planned inside the function's 60 s timeout
/// (bounded-concurrent HEADs, PublishBatch); planning it again is harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_thousand_file_manifest_plans_in_time() {
    let files: usize = std::env::var("CURLEW_BIG_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let mut w = world("big").await;
    // moto's SQS slows down as one queue fills (thousands of messages): the
    // jobs go to a topic of their own with no queue, so the time measured is
    // the planner's (the other tests cover delivery through SQS).
    let sns = w.deps.sns.clone();
    w.deps.config.parts_topic_arn = curlew_testkit::aws::topic(&sns, "big-parts-only").await;
    let dir = "cur/big/20240101-20240201/asm-5000";
    let keys: Vec<String> = (0..files)
        .map(|i| format!("{dir}/big-{i:05}.csv.gz"))
        .collect();
    let started = std::time::Instant::now();
    {
        use futures_util::stream::{self, StreamExt};
        let s3 = &w.deps.s3;
        let billing = &w.billing;
        stream::iter(&keys)
            .for_each_concurrent(32, |k| async move {
                curlew_testkit::upload::put(s3, billing, k, b"x".to_vec()).await
            })
            .await;
    }
    let upload = started.elapsed();
    println!("uploaded {files} files in {:.1} s", upload.as_secs_f64());
    let manifest = serde_json::json!({
        "assemblyId": "asm-5000", "reportName": "big", "account": PAYER,
        "billingPeriod": {"start": "20240101T000000.000Z", "end": "20240201T000000.000Z"},
        "reportKeys": keys,
    });
    let mkey = format!("{dir}/big-Manifest.json");
    curlew_testkit::upload::put(
        &w.deps.s3,
        &w.billing,
        &mkey,
        manifest.to_string().into_bytes(),
    )
    .await;
    let t = std::time::Instant::now();
    let r = announce(&w, &mkey).await;
    let planned = t.elapsed();
    assert!(
        outcomes_text(&r).contains(&format!("parts: {files}, published: {files}")),
        "{r}"
    );
    println!("planned in {:.2} s", planned.as_secs_f64());
    let t = std::time::Instant::now();
    announce(&w, &mkey).await;
    let replanned = t.elapsed();
    println!(
        "{files}-file manifest against moto: upload {:.1} s, plan ({files} HEADs + {} PublishBatch) {:.2} s, plan again {:.2} s",
        upload.as_secs_f64(),
        files.div_ceil(10),
        planned.as_secs_f64(),
        replanned.as_secs_f64()
    );
    assert!(
        planned < std::time::Duration::from_secs(60),
        "over the function timeout: {planned:?}"
    );
}

/// A manifest over the file cap is refused for good before any HEAD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_over_the_file_cap_is_refused() {
    let mut w = world("cap").await;
    w.deps.config.max_files = 2;
    let (_d, out) = deliver(&w, 16, 3).await;
    let r = announce(&w, &out.manifest_keys[0]).await;
    assert!(outcomes_text(&r).contains("more than the cap of 2"), "{r}");
    assert!(drain(&w).await.is_empty());
    let notes = notices(&w).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "delivery-failed");
    assert_eq!(notes[0].1["billing_period"], "2024-01");
}
