//! The ledger suite, run against both stores: the filesystem and S3 through
//! the real aws-sdk-s3 client against moto_server on 127.0.0.1.

mod common;

use common::moto::{new_bucket, s3_client};
use curlew::discover::{discover, Delivery, Source};
use curlew::gc::gc;
use curlew::ingest::{DeliveryStatus, IngestError, IngestOptions};
use curlew::ledger::{CommitOutcome, Current, Ledger, SourceId};
use curlew::pipeline::{
    commit_plan, plan_delivery, process_part, stage_part, stage_plan, CommitResult, Decision,
    PartRead, Plan, Silent,
};
use curlew::read::ReadOptions;
use curlew::registry::{AccessMode, Connection, ConnectionStatus, Registry};
use curlew::report::load_committed;
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use curlew::store::{S3Store, Store, StoreError};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Fs,
    S3,
}

/// A store of the given kind, empty, plus whatever keeps it alive.
async fn store(kind: Kind, hint: &str) -> (Store, Option<tempfile::TempDir>) {
    match kind {
        Kind::Fs => {
            let d = tempfile::tempdir().unwrap();
            (Store::local(d.path()), Some(d))
        }
        Kind::S3 => {
            let c = s3_client();
            let b = new_bucket(&c, hint).await;
            (Store::S3(S3Store::new(c, b)), None)
        }
    }
}

/// Put every file under `dir` into `store` at the same relative key (under `prefix`).
async fn upload(store: &Store, dir: &Path, prefix: &str) {
    for entry in walk(dir) {
        let rel = entry
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        store
            .put(&format!("{prefix}{rel}"), std::fs::read(&entry).unwrap())
            .await
            .unwrap();
    }
}

use curlew_testkit::upload::walk;

fn opts() -> IngestOptions {
    let mut o = IngestOptions::new("acme");
    o.parallelism = 2;
    o
}

/// The source the sample deliveries land in.
fn source_of(d: &Delivery) -> SourceId {
    opts().scope().source_of(d)
}

/// One delivery through the local pipeline.
async fn ingest_delivery(
    src: &Source,
    ledger: &Ledger,
    o: &IngestOptions,
    d: &Delivery,
) -> DeliveryStatus {
    curlew::ingest::ingest_delivery(src, ledger, o, &Silent, d.clone(), &BTreeSet::new())
        .await
        .0
        .status
}

/// The pipeline's plan of a delivery (it must be planned).
async fn plan_of(src: &Source, ledger: &Ledger, d: &Delivery) -> Plan {
    match plan_delivery(src, ledger, &opts().scope(), d.clone(), &BTreeSet::new())
        .await
        .unwrap()
    {
        Decision::Planned(p) => *p,
        other => panic!("{other:?}"),
    }
}

/// Write a "new version" delivery of `rows` rows in `files` files (seed picks
/// the assembly; the payer is fixed, so every seed is a revision of one source).
fn sample(dir: &Path, seed: u64, files: usize, rows: u64) -> curlew::sample::SampleOutput {
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, rows);
    spec.versioning = Versioning::New;
    spec.seed = seed;
    spec.payer = Some("111122223333".into());
    spec.files = files;
    write_sample(&spec, dir).unwrap()
}

async fn the_delivery(src: &Source) -> Delivery {
    let found = discover(src).await.unwrap();
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    assert_eq!(found.deliveries.len(), 1);
    found.deliveries.into_iter().next().unwrap()
}

/// What CURRENT names for the period, as bytes: CURRENT, rollup, summary.
async fn committed_bytes(ledger: &Ledger, source: &SourceId) -> Vec<Vec<u8>> {
    let (_, cur) = ledger
        .store
        .get_bytes(&ledger.layout.current(source, "2024-01"))
        .await
        .unwrap();
    let c: Current = serde_json::from_slice(&cur).unwrap();
    let (_, rollup) = ledger.store.get_bytes(&c.rollup_key).await.unwrap();
    let (_, summary) = ledger.store.get_bytes(&c.summary_key).await.unwrap();
    vec![cur, rollup, summary]
}

async fn conditional_writes(kind: Kind) {
    let (s, _keep) = store(kind, "cond").await;
    let e1 = s.put_if_absent("k", b"one".to_vec()).await.unwrap();
    assert!(matches!(
        s.put_if_absent("k", b"two".to_vec()).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
    let e2 = s.put_if_match("k", b"two".to_vec(), &e1).await.unwrap();
    assert!(matches!(
        s.put_if_match("k", b"three".to_vec(), &e1).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert_eq!(s.get_bytes("k").await.unwrap().1, b"two");
    assert_eq!(s.head("k").await.unwrap().etag, e2);
    // Two tasks race to commit the same revision: exactly one wins, the loser says so.
    let ledger = Ledger::new(s.clone(), "");
    let cur = Current {
        revision: "20240101T000000Z-a".into(),
        time: chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .into(),
        id: "a".into(),
        rollup_key: "r".into(),
        summary_key: "s".into(),
        previous: None,
    };
    let id = SourceId::new("acme", "111122223333", "cur");
    let (l1, l2, c1, c2) = (ledger.clone(), ledger.clone(), cur.clone(), cur.clone());
    let (i1, i2) = (id.clone(), id.clone());
    let t1 = tokio::spawn(async move { l1.commit(&i1, "2024-01", &c1).await.unwrap() });
    let t2 = tokio::spawn(async move { l2.commit(&i2, "2024-01", &c2).await.unwrap() });
    let outcomes = [t1.await.unwrap(), t2.await.unwrap()];
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, CommitOutcome::Committed { .. }))
        .count();
    let losses = outcomes
        .iter()
        .filter(|o| matches!(o, CommitOutcome::NotNewer { .. }))
        .count();
    assert_eq!((wins, losses), (1, 1), "{outcomes:?}");
}

/// v1 then v2 of one period, both kept in the source (new-version layout).
async fn two_revisions(
    kind: Kind,
    v1_files: usize,
    v2_files: usize,
) -> (
    Store,
    Source,
    Delivery,
    Delivery,
    Option<tempfile::TempDir>,
    tempfile::TempDir,
) {
    let (src_store, keep) = store(kind, "src").await;
    let local = tempfile::tempdir().unwrap();
    let src = Source {
        store: src_store.clone(),
        prefix: "billing/".into(),
    };
    sample(local.path(), 1, v1_files, 1_200);
    upload(&src_store, local.path(), "billing/").await;
    let d1 = the_delivery(&src).await;
    // S3 timestamps have one-second resolution: make v2 visibly newer.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let local2 = tempfile::tempdir().unwrap();
    sample(local2.path(), 2, v2_files, 900);
    upload(&src_store, local2.path(), "billing/").await;
    let d2 = the_delivery(&src).await;
    assert!(d2.revision > d1.revision);
    assert_eq!(
        (d1.files.len(), d2.files.len()),
        (v1_files, v2_files),
        "{:?} {:?}",
        d1.missing,
        d2.missing
    );
    (src_store, src, d1, d2, keep, local2)
}

async fn shuffled_deliveries_are_idempotent(kind: Kind) {
    let (_s, src, d1, d2, _keep, _l) = two_revisions(kind, 2, 2).await;
    let (out_a, _ka) = store(kind, "outa").await;
    let (out_b, _kb) = store(kind, "outb").await;
    let (la, lb) = (Ledger::new(out_a, ""), Ledger::new(out_b, ""));
    for d in [&d1, &d2] {
        assert!(matches!(
            ingest_delivery(&src, &la, &opts(), d).await,
            DeliveryStatus::Committed(_)
        ));
    }
    // Five deliveries, shuffled, the older one after the newer.
    for d in [&d2, &d1, &d2, &d1, &d1] {
        let st = ingest_delivery(&src, &lb, &opts(), d).await;
        assert!(
            !matches!(st, DeliveryStatus::Failed(_) | DeliveryStatus::Retry(_)),
            "{st:?}"
        );
    }
    let id = source_of(&d1);
    // Same bytes, except CURRENT's `previous` (what it replaced depends on the order).
    let (mut a, mut b) = (
        committed_bytes(&la, &id).await,
        committed_bytes(&lb, &id).await,
    );
    for bytes in [&mut a, &mut b] {
        let mut c: Current = serde_json::from_slice(&bytes[0]).unwrap();
        c.previous = None;
        bytes[0] = serde_json::to_vec(&c).unwrap();
    }
    assert_eq!(a, b);
}

async fn newer_revision_replaces_and_gc_removes_the_old(kind: Kind) {
    let (_s, src, d1, d2, _keep, local2) = two_revisions(kind, 3, 2).await;
    let (out, _k) = store(kind, "out").await;
    let ledger = Ledger::new(out.clone(), "");
    ingest_delivery(&src, &ledger, &opts(), &d1).await;
    ingest_delivery(&src, &ledger, &opts(), &d2).await;
    let committed = load_committed(&ledger, "acme", None).await.unwrap();
    assert_eq!(committed.len(), 1);
    // Totals equal v2 alone: ingest v2 by itself into a fresh store and compare.
    let alone = tempfile::tempdir().unwrap();
    let alone_ledger = Ledger::new(Store::local(alone.path()), "");
    let src2 = Source {
        store: Store::local(local2.path()),
        prefix: String::new(),
    };
    let d2_alone = the_delivery(&src2).await;
    ingest_delivery(&src2, &alone_ledger, &opts(), &d2_alone).await;
    let want = &load_committed(&alone_ledger, "acme", None).await.unwrap()[0].summary;
    assert_eq!(committed[0].summary.totals, want.totals);
    assert_eq!(committed[0].summary.input_files.len(), 2);
    // gc keeps the superseded revision while the one that replaced it is
    // younger than the grace period (the base of `curlew diff`)...
    let before = out.list("tenant=acme/").await.unwrap();
    assert!(before.iter().any(|m| m.key.contains(&d1.revision.name())));
    let grace = chrono::Duration::hours(1);
    let report = gc(&ledger, "acme", grace, chrono::Utc::now())
        .await
        .unwrap();
    assert!(report.deleted_revisions.is_empty(), "{report:?}");
    assert!(
        report
            .kept_in_flight
            .iter()
            .any(|k| k.contains(&d1.revision.name())),
        "{report:?}"
    );
    assert_eq!(out.list("tenant=acme/").await.unwrap().len(), before.len());
    // ...then only CURRENT and what it names remain.
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let report = gc(&ledger, "acme", grace, later).await.unwrap();
    assert_eq!(report.deleted_revisions.len(), 1, "{report:?}");
    let after: Vec<String> = out
        .list("tenant=acme/billing_period=")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(
        after.iter().all(|k| !k.contains(&d1.revision.name())),
        "{after:?}"
    );
    assert!(after.iter().any(|k| k.ends_with("/CURRENT")));
    // CURRENT and the revision it names: rollup, commitments, summary.
    assert_eq!(after.len(), 4, "{after:?}");
    for f in ["/rollup.parquet", "/commitments.parquet", "/summary.json"] {
        assert!(after.iter().any(|k| k.ends_with(f)), "{f}: {after:?}");
    }
    assert_eq!(
        load_committed(&ledger, "acme", None).await.unwrap()[0].summary,
        committed[0].summary
    );
}

async fn crash_between_staging_and_commit(kind: Kind) {
    let (_s, src, d1, d2, _keep, _l) = two_revisions(kind, 2, 2).await;
    let (out, _k) = store(kind, "out").await;
    let ledger = Ledger::new(out.clone(), "");
    ingest_delivery(&src, &ledger, &opts(), &d1).await;
    let id = source_of(&d1);
    let served = committed_bytes(&ledger, &id).await;
    // The task stops after staging every part of v2, before the commit.
    let plan = plan_of(&src, &ledger, &d2).await;
    stage_plan(&ledger, &plan).await.unwrap();
    for i in 0..d2.files.len() {
        let PartRead::Read(part) = process_part(&src, &plan, i, &ReadOptions::default())
            .await
            .unwrap()
        else {
            panic!("rewritten")
        };
        stage_part(&ledger, &plan, i, &part).await.unwrap();
    }
    assert_eq!(
        committed_bytes(&ledger, &id).await,
        served,
        "the previous revision is still served"
    );
    // A rerun commits cleanly and leaves no staging behind.
    assert!(matches!(
        ingest_delivery(&src, &ledger, &opts(), &d2).await,
        DeliveryStatus::Committed(_)
    ));
    let (cur, _) = ledger.current(&id, "2024-01").await.unwrap().unwrap();
    assert_eq!(cur.revision, d2.revision.name());
    assert_eq!(
        cur.previous,
        Some(d1.revision.name()),
        "CURRENT names what it replaced"
    );
    assert!(out.list("tenant=acme/_staging/").await.unwrap().is_empty());
}

async fn manifest_naming_a_missing_key(kind: Kind) {
    let (src_store, _keep) = store(kind, "src").await;
    let local = tempfile::tempdir().unwrap();
    let s = sample(local.path(), 3, 2, 500);
    std::fs::remove_file(local.path().join(&s.data_keys[1])).unwrap();
    upload(&src_store, local.path(), "").await;
    let src = Source {
        store: src_store,
        prefix: String::new(),
    };
    let d = the_delivery(&src).await;
    let (out, _k) = store(kind, "out").await;
    let ledger = Ledger::new(out, "");
    match ingest_delivery(&src, &ledger, &opts(), &d).await {
        DeliveryStatus::Retry(e @ IngestError::MissingFiles { .. }) => assert!(e.is_retryable()),
        other => panic!("{other:?}"),
    }
    assert!(ledger
        .current(&source_of(&d), "2024-01")
        .await
        .unwrap()
        .is_none());
}

async fn manifest_rewritten_while_reading(kind: Kind) {
    let (src_store, _keep) = store(kind, "src").await;
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur2Parquet, 800);
    spec.files = 2;
    write_sample(&spec, local.path()).unwrap();
    upload(&src_store, local.path(), "").await;
    let src = Source {
        store: src_store.clone(),
        prefix: String::new(),
    };
    let d = the_delivery(&src).await;
    let (out, _k) = store(kind, "out").await;
    let ledger = Ledger::new(out.clone(), "");
    let plan = plan_of(&src, &ledger, &d).await;
    for i in 0..d.files.len() {
        let PartRead::Read(part) = process_part(&src, &plan, i, &ReadOptions::default())
            .await
            .unwrap()
        else {
            panic!("rewritten")
        };
        stage_part(&ledger, &plan, i, &part).await.unwrap();
    }
    // AWS rewrites the manifest (overwrite mode) while we read.
    let (mkey, _) = d.manifest.clone().unwrap();
    let (_, body) = src_store.get_bytes(&mkey).await.unwrap();
    let mut rewritten = body.clone();
    rewritten.extend_from_slice(b"\n");
    src_store.put(&mkey, rewritten).await.unwrap();
    let r = commit_plan(&src, &ledger, &plan).await.unwrap();
    assert!(matches!(r, CommitResult::Abandoned { .. }), "{r:?}");
    assert!(ledger
        .current(&plan.source, "2024-01")
        .await
        .unwrap()
        .is_none());
    assert!(out
        .list("tenant=acme/billing_period=2024-01/")
        .await
        .unwrap()
        .is_empty());
}

async fn registry_concurrent_updates(kind: Kind) {
    let (s, _keep) = store(kind, "reg").await;
    let reg = Registry::new(s, "");
    reg.create(&Connection::new(
        "acme",
        "123456789012",
        AccessMode::CrossAccountRole,
        "bill",
        "cur/",
    ))
    .await
    .unwrap();
    assert!(reg
        .create(&Connection::new(
            "acme",
            "123456789012",
            AccessMode::BucketPolicy,
            "b",
            ""
        ))
        .await
        .is_err());
    let mut tasks = Vec::new();
    for who in ["a", "b"] {
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..8 {
                reg.update("acme", "123456789012", |c| {
                    c.linked_accounts.push(format!("{who}{i}"));
                    if who == "a" {
                        c.status = ConnectionStatus::Connected;
                    } else {
                        c.role_arn = Some("arn:aws:iam::123456789012:role/curlew".into());
                    }
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (c, _) = reg.get("acme", "123456789012").await.unwrap();
    assert_eq!(c.linked_accounts.len(), 16, "{:?}", c.linked_accounts);
    assert_eq!(c.version, 17);
    assert_eq!(c.status, ConnectionStatus::Connected);
    assert!(c.role_arn.is_some());
    assert_eq!(reg.list("acme").await.unwrap().len(), 1);
}

macro_rules! both_stores {
    ($($name:ident),+ $(,)?) => {
        mod fs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Fs).await })+
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::S3).await })+
        }
    };
}

both_stores!(
    conditional_writes,
    shuffled_deliveries_are_idempotent,
    newer_revision_replaces_and_gc_removes_the_old,
    crash_between_staging_and_commit,
    manifest_naming_a_missing_key,
    manifest_rewritten_while_reading,
    registry_concurrent_updates,
);

/// Access keys stored in an S3 store go under the deployment's KMS key
/// (SSE-KMS with that key's ARN, what the store's bucket policy demands) and
/// read back; a key id or alias is refused before anything is written, and a
/// local store says it has no KMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_access_keys_are_written_under_the_secrets_kms_key() {
    use curlew::access::AccessKeys;
    use curlew::onboard::keys::KeyVault;
    let s3 = s3_client();
    let bucket = new_bucket(&s3, "secrets").await;
    let arn = common::moto::kms_key();
    let store = Store::S3(S3Store::new(s3.clone(), bucket.clone()));
    let keys = AccessKeys {
        access_key_id: "AKIAEXAMPLE123456789".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    };
    let vault = KeyVault::new(store.clone(), "curlew")
        .with_kms_key(Some(arn.clone()))
        .unwrap();
    vault.put("acme", "111122223333", &keys).await.unwrap();
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("curlew/secrets/tenant=acme/111122223333.json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    assert_eq!(head.ssekms_key_id(), Some(arn.as_str()));
    let back = vault.get("acme", "111122223333").await.unwrap();
    assert_eq!(back.secret_access_key, keys.secret_access_key);

    for not_an_arn in [
        "alias/curlew-secrets",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ] {
        let e = KeyVault::new(store.clone(), "curlew")
            .with_kms_key(Some(not_an_arn.into()))
            .expect_err(not_an_arn);
        assert!(e.to_string().contains("SecretsKeyArn"), "{e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let e = KeyVault::new(Store::local(dir.path()), "")
        .with_kms_key(Some(arn))
        .unwrap()
        .put("acme", "111122223333", &keys)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("s3:// store only"), "{e}");
}
