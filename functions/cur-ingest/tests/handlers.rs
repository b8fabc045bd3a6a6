//! Handler tests driven by the files in events/, against moto_server on
//! 127.0.0.1 through the real S3, SNS and SQS clients: a CUR delivery put into
//! the emulated bucket ends, through real SNS/SQS messages, as exactly one
//! committed revision with the totals a local `curlew ingest` gives.

mod common;

use aws_lambda_events::event::sqs::SqsEvent;
use common::*;
use cur_ingest::part::PartOutcome;
use cur_ingest::plan;
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use curlew_lambda::announced::ObjectRef;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_to_commit_through_sns_and_sqs() {
    let w = world("e2e").await;
    let (v1, out1) = deliver(&w, 1, 3).await;
    // AWS writes two manifests per new-version delivery; both events arrive.
    for key in &out1.manifest_keys {
        let r = announce(&w, key).await;
        assert!(
            r["outcomes"].to_string().contains("Planned")
                || r["outcomes"].to_string().contains("NotNewer"),
            "{r}"
        );
    }
    let outcomes = drain(&w).await;
    assert_eq!(count(&outcomes, is_commit), 1, "{outcomes:?}");
    let c = committed(&w).await;
    assert_eq!(c.summary.totals, local_totals(v1.path()).await);
    assert_eq!(c.summary.input_files.len(), 3);
    assert_eq!(c.source.payer, PAYER);
    // The results topic announced the commit once, with filterable attributes.
    let notes = notices(&w).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "revision-committed");
    assert_eq!(notes[0].1["billing_period"], "2024-01");
    assert_eq!(notes[0].1["tenant"], "acme");
    assert_eq!(notes[0].1["payer_account"], PAYER);

    // A duplicate S3 event changes nothing.
    let r = announce(&w, &out1.manifest_keys[0]).await;
    assert!(r["outcomes"].to_string().contains("NotNewer"), "{r}");
    assert!(drain(&w).await.is_empty());

    // A second revision, wrapped in SNS: only it counts.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (v2, out2) = deliver(&w, 2, 2).await;
    let mut sns = event("sns-s3-put-cur1-manifest.json");
    let inner = s3_event(
        "s3-put-cur1-manifest.json",
        &w.billing,
        &out2.manifest_keys[1],
    );
    sns["Records"][0]["Sns"]["Message"] = inner.to_string().into();
    plan::handle(&w.deps, sns).await.unwrap();
    drain(&w).await;
    let c2 = committed(&w).await;
    assert_ne!(c2.current.revision, c.current.revision);
    assert_eq!(
        c2.current.previous.as_deref(),
        Some(c.current.revision.as_str())
    );
    assert_eq!(c2.summary.totals, local_totals(v2.path()).await);
    assert_eq!(c2.summary.input_files.len(), 2);
    let notes = notices(&w).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].1["previous"], c.current.revision.as_str());
    // It says what changed against the revision it replaced.
    let delta = c2.summary.totals.billed_cost - c.summary.totals.billed_cost;
    assert_eq!(
        notes[0].1["changes"]["total_delta"],
        delta.normalize().to_string(),
        "{}",
        notes[0].1
    );
    assert_eq!(
        notes[0].1["changes"]["against"],
        c.current.revision.as_str()
    );
}

/// Tag dimensions stored on a connection reach the part workers through the
/// plan: a three-file delivery (parts staged and merged through SNS/SQS)
/// commits the same rollup rows, Tags included, as a local `curlew ingest
/// --tag team --tag environment` of the same files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_tag_dimensions_group_the_lambda_rollup() {
    let dims =
        curlew::dimensions::Dimensions::from_args(&["team".into(), "environment".into()], &[])
            .unwrap();
    let for_conn = dims.clone();
    let w = world_with("dims", "", move |c| c.dimensions = for_conn).await;
    let (v1, out1) = deliver(&w, 5, 3).await;
    announce(&w, &out1.manifest_keys[0]).await;
    let outcomes = drain(&w).await;
    assert_eq!(count(&outcomes, is_commit), 1, "{outcomes:?}");
    let c = committed(&w).await;
    assert_eq!(c.summary.dimensions, dims);
    let mut opts = curlew::ingest::IngestOptions::new("acme");
    opts.dimensions = dims.clone();
    let local = local_ingest(v1.path(), &opts).await;
    assert_eq!(c.rows, local[0].rows);
    assert!(
        c.rows.iter().any(|r| r.key[9].contains("\"team\"")),
        "some rows are tagged"
    );
    assert!(
        c.rows.iter().any(|r| r.key[9].is_empty()),
        "and some are not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_wrapped_cur2_manifest_and_ignored_objects() {
    let w = world("sqs").await;
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur2Parquet, 700);
    spec.files = 2;
    spec.payer = Some(PAYER.into());
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_fails_alone() {
    let w = world("poison").await;
    let (_v1, out) = deliver(&w, 3, 1).await;
    announce(&w, &out.manifest_keys[1]).await;
    // Take the real job off the queue, then replay it beside the poison message from events/.
    let real = receive(&w).await.remove(0);
    let mut ev: SqsEvent =
        serde_json::from_value(event("sqs-parts-batch-with-poison.json")).unwrap();
    ev.records[0].body = real.body.clone();
    let poison_id = ev.records[1].message_id.clone().unwrap();
    let (resp, outcomes) = cur_ingest::part::handle(&w.deps, ev).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec![poison_id.as_str()]);
    assert!(
        matches!(outcomes[..], [PartOutcome::Job(_)]) && is_commit(&outcomes[0]),
        "{outcomes:?}"
    );
}

/// A role-mode connection without a role is an access problem of that
/// connection: the announcement is parked (not dropped, not retried forever)
/// and the refusal recorded on the connection for the sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_refused_at_planning_parks_the_event_and_marks_the_connection() {
    let w = world("park").await;
    let orphan = curlew_testkit::moto::new_bucket(&w.deps.s3, "orphan").await;
    w.deps
        .registry()
        .create(&curlew::registry::Connection::new(
            "nobody",
            "444455556666",
            curlew::registry::AccessMode::CrossAccountRole,
            &orphan,
            "",
        ))
        .await
        .unwrap();
    let obj = ObjectRef {
        bucket: orphan.clone(),
        key: "cur/r/20240101-20240201/r-Manifest.json".into(),
    };
    let out = plan::plan_object(&w.deps, &obj).await.unwrap();
    assert!(
        matches!(&out[..], [plan::PlanOutcome::Parked { why, .. }] if why.contains("nobody/444455556666 has no role ARN")),
        "{out:?}"
    );
    let parked = curlew::pipeline::parked(&w.deps.ledger(), "nobody")
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(
        (parked[0].bucket.as_str(), parked[0].key.as_str()),
        (orphan.as_str(), obj.key.as_str())
    );
    let (c, _) = w
        .deps
        .registry()
        .get("nobody", "444455556666")
        .await
        .unwrap();
    // Recorded for the sweep, which owns the status (two failed sweeps in a
    // row change it): one refused event does not.
    assert_eq!(c.status, curlew::registry::ConnectionStatus::Pending);
    assert_eq!(c.consecutive_failures, 0);
    assert!(c.status_detail.unwrap().contains("no role ARN"));
    // The same event again is one parked record, not two.
    plan::plan_object(&w.deps, &obj).await.unwrap();
    assert_eq!(
        curlew::pipeline::parked(&w.deps.ledger(), "nobody")
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The real anonymised legacy CUR from ../shared/data, delivered with a
/// manifest into the emulated bucket, ends committed with the exact totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cur_from_shared_data_through_the_functions() {
    let Some(file) = curlew_testkit::data::shared_data(
        "cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv",
    ) else {
        return;
    };
    let w = world("real").await;
    let asm = "0b7c5f2e-1111-4222-8333-944455556666";
    let data_key = format!("cur/anon/20231101-20231201/{asm}/anon-1.csv");
    let manifest = serde_json::json!({
        "assemblyId": asm, "reportName": "anon", "compression": "GZIP", "contentType": "text/csv",
        "billingPeriod": {"start": "20231101T000000.000Z", "end": "20231201T000000.000Z"},
        "bucket": w.billing, "reportKeys": [data_key], "additionalArtifactKeys": []
    });
    let manifest_key = format!("cur/anon/20231101-20231201/{asm}/anon-Manifest.json");
    use curlew_testkit::upload::put;
    put(
        &w.deps.s3,
        &w.billing,
        &data_key,
        std::fs::read(&file).unwrap(),
    )
    .await;
    put(
        &w.deps.s3,
        &w.billing,
        &manifest_key,
        manifest.to_string().into_bytes(),
    )
    .await;
    announce(&w, &manifest_key).await;
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
