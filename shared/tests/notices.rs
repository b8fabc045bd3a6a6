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

/// A sample of `files` files planned into a fresh output store.
async fn planned(files: usize) -> (tempfile::TempDir, tempfile::TempDir, Source, Ledger, Plan) {
    let src_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 600);
    spec.files = files;
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
    (src_dir, out_dir, src, ledger, *plan)
}

fn summaries(o: JobOutcome) -> Vec<curlew::output::Summary> {
    match o {
        JobOutcome::Committed(c) if !c.is_empty() => c.into_iter().map(|p| p.summary).collect(),
        o => panic!("not committed: {o:?}"),
    }
}

#[tokio::test]
async fn a_one_file_plan_commits_in_its_only_job_and_stages_nothing() {
    let (_s, out, src, ledger, plan) = planned(1).await;
    assert_eq!(plan.delivery.files.len(), 1);
    let o = run_job(&src, &ledger, &Silent, &plan, 0, &ReadOptions::default())
        .await
        .unwrap();
    let got = summaries(o);
    assert_eq!(got[0].rows_read, 600);
    let staged: Vec<_> = walk(out.path())
        .into_iter()
        .filter(|k| k.contains("/parts/"))
        .collect();
    assert!(staged.is_empty(), "a one-file plan staged {staged:?}");
    // The same delivery committed from a staged part: the same summary.
    let (_s2, _o2, src2, ledger2, plan2) = planned(1).await;
    stage_one(&src2, &ledger2, &Silent, &plan2, 0, &ReadOptions::default())
        .await
        .unwrap();
    let CommitResult::Committed(c) = commit_plan(&src2, &ledger2, &plan2).await.unwrap() else {
        panic!("not committed")
    };
    assert_eq!(c[0].summary.totals, got[0].totals);
    assert_eq!(c[0].summary.rollup_rows, got[0].rollup_rows);
}

#[tokio::test]
async fn the_job_completing_a_set_merges_its_own_part_like_a_staged_one() {
    let (_s, _o, src, ledger, plan) = planned(3).await;
    assert_eq!(plan.delivery.files.len(), 3);
    for i in [2, 0] {
        let o = run_job(&src, &ledger, &Silent, &plan, i, &ReadOptions::default())
            .await
            .unwrap();
        assert!(matches!(o, JobOutcome::Staged), "{o:?}");
    }
    let got = summaries(
        run_job(&src, &ledger, &Silent, &plan, 1, &ReadOptions::default())
            .await
            .unwrap(),
    );
    // Every part staged and merged from staging alone.
    let (_s2, _o2, src2, ledger2, plan2) = planned(3).await;
    for i in 0..3 {
        stage_one(&src2, &ledger2, &Silent, &plan2, i, &ReadOptions::default())
            .await
            .unwrap();
    }
    let CommitResult::Committed(c) = commit_plan(&src2, &ledger2, &plan2).await.unwrap() else {
        panic!("not committed")
    };
    assert_eq!(got[0].rows_read, 600);
    assert_eq!(c[0].summary.totals, got[0].totals);
    assert_eq!(c[0].summary.rollup_rows, got[0].rollup_rows);
    let files = |s: &curlew::output::Summary| {
        s.input_files
            .iter()
            .map(|f| (f.key.clone(), f.rows))
            .collect::<Vec<_>>()
    };
    assert_eq!(files(&c[0].summary), files(&got[0]));
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
