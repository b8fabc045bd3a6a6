//! Exactly one commit notice per committed revision, whatever the workers do:
//! several finishing at once, a publish failing, a redelivered job.

mod common;

use curlew::discover::{discover, Source};
use curlew::ingest::IngestOptions;
use curlew::ledger::Ledger;
use curlew::pipeline::{
    commit_plan, deliver_notices, plan_delivery, run_job, stage_one, stage_plan, CommitResult,
    Decision, JobOutcome, Notice, Notify, NotifyFuture, Plan, Silent,
};
use curlew::read::ReadOptions;
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use curlew::store::Store;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts what it publishes (slowly, so concurrent callers overlap); fails
/// the first `fail` calls.
#[derive(Default)]
struct Counting {
    published: AtomicUsize,
    calls: AtomicUsize,
    fail: usize,
}

impl Notify for Counting {
    fn publish<'a>(&'a self, n: &'a Notice) -> NotifyFuture<'a> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if call < self.fail {
                return Err("topic unavailable".into());
            }
            assert_eq!(n.event(), "revision-committed");
            self.published.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// A planned and committed delivery whose notice is still in the outbox.
async fn committed_not_notified() -> (tempfile::TempDir, tempfile::TempDir, Source, Ledger, Plan) {
    let src_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 400);
    spec.files = 2;
    write_sample(&spec, src_dir.path()).unwrap();
    let src = Source {
        store: Store::local(src_dir.path()),
        prefix: String::new(),
    };
    let ledger = Ledger::new(Store::local(out_dir.path()), "");
    let d = discover(&src).await.unwrap().deliveries.remove(0);
    let scope = IngestOptions::new("acme").scope();
    let Decision::Planned(plan) = plan_delivery(&src, &ledger, &scope, d, &BTreeSet::new())
        .await
        .unwrap()
    else {
        panic!("not planned")
    };
    stage_plan(&ledger, &plan).await.unwrap();
    for i in 0..plan.delivery.files.len() {
        let o = stage_one(&src, &ledger, &Silent, &plan, i, &ReadOptions::default())
            .await
            .unwrap();
        assert!(matches!(o, JobOutcome::Staged), "{o:?}");
    }
    assert!(matches!(
        commit_plan(&src, &ledger, &plan).await.unwrap(),
        CommitResult::Committed(_)
    ));
    (src_dir, out_dir, src, ledger, *plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_finishing_together_publish_once() {
    let (_s, _o, _src, ledger, plan) = committed_not_notified().await;
    let counting = Arc::new(Counting::default());
    let periods = vec![plan.delivery.period.clone().unwrap()];
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (ledger, plan, periods, counting) = (
            ledger.clone(),
            plan.clone(),
            periods.clone(),
            counting.clone(),
        );
        tasks.push(tokio::spawn(async move {
            deliver_notices(&ledger, counting.as_ref(), &plan, &periods)
                .await
                .unwrap()
                .len()
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    assert_eq!(sent, 1);
    assert_eq!(counting.published.load(Ordering::SeqCst), 1);
    // Later attempts find it sent.
    deliver_notices(&ledger, counting.as_ref(), &plan, &periods)
        .await
        .unwrap();
    assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_is_published_by_the_redelivered_job() {
    let (_s, _o, src, ledger, plan) = committed_not_notified().await;
    let counting = Counting {
        fail: 1,
        ..Counting::default()
    };
    let periods = vec![plan.delivery.period.clone().unwrap()];
    assert!(deliver_notices(&ledger, &counting, &plan, &periods)
        .await
        .is_err());
    // The claim was given back: the redelivered job (any part of the plan)
    // publishes at once, and only the notice is redone.
    let o = run_job(&src, &ledger, &counting, &plan, 1, &ReadOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(&o, JobOutcome::Committed(c) if c.is_empty()),
        "{o:?}"
    );
    run_job(&src, &ledger, &counting, &plan, 0, &ReadOptions::default())
        .await
        .unwrap();
    assert_eq!(counting.published.load(Ordering::SeqCst), 1);
    assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
}
