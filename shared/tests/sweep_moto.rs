//! `sweep_connection` against moto_server with the real SDK clients: the
//! customer's role assumed with the tenant's External ID, the bucket located
//! and its recent manifests listed, the linked accounts read from
//! Organizations, a delivery no event announced planned and committed once,
//! and the status kept by the two-in-a-row rule with one notice per change.

use chrono::{Datelike, Utc};
use curlew::access::AccessClients;
use curlew::ledger::{Ledger, SourceId};
use curlew::onboard::{OnboardingHints, Onboardings};
use curlew::pipeline::{Notice, Notify, NotifyFuture};
use curlew::registry::{AccessMode, Connection, ConnectionStatus, Registry};
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use curlew::store::{S3Store, Store};
use curlew::sweep::{
    sweep_connection, HealthCause, LocalDispatch, SweepCtx, SweepOutcome, DEFAULT_STALE_HOURS,
};
use curlew_testkit::aws::sdk_conf;
use curlew_testkit::moto::{new_bucket, s3_client};
use std::sync::Mutex;

/// Keeps every notice published.
#[derive(Default)]
struct Recorded(Mutex<Vec<Notice>>);

impl Notify for Recorded {
    fn publish<'a>(&'a self, notice: &'a Notice) -> NotifyFuture<'a> {
        self.0.lock().unwrap().push(notice.clone());
        Box::pin(async { Ok(()) })
    }
}

impl Recorded {
    fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

struct World {
    s3: aws_sdk_s3::Client,
    clients: AccessClients,
    own: Store,
    billing: String,
}

async fn world(tag: &str) -> World {
    let s3 = s3_client();
    let own_bucket = new_bucket(&s3, &format!("{tag}-own")).await;
    let billing = new_bucket(&s3, &format!("{tag}-billing")).await;
    let sts = aws_sdk_sts::Client::new(&sdk_conf());
    let org = aws_sdk_organizations::Client::new(&sdk_conf());
    World {
        clients: AccessClients::new(sts, s3.clone()).with_org(org),
        own: Store::S3(S3Store::new(s3.clone(), own_bucket)),
        s3,
        billing,
    }
}

/// A connected role-mode connection of `tenant` (its External ID stored).
async fn connect(w: &World, tenant: &str, payer: &str, bucket: &str) -> Registry {
    Onboardings::new(w.own.clone(), "curlew")
        .begin(tenant, OnboardingHints::default())
        .await
        .unwrap();
    let mut c = Connection::new(tenant, payer, AccessMode::CrossAccountRole, bucket, "cur");
    c.role_arn = Some(format!("arn:aws:iam::{payer}:role/curlew-read-{tenant}"));
    c.status = ConnectionStatus::Connected;
    let registry = Registry::new(w.own.clone(), "curlew");
    registry.create(&c).await.unwrap();
    registry
}

/// A legacy CUR delivery of the open period, uploaded, announced to nobody.
async fn deliver(w: &World, payer: &str) -> String {
    deliver_expected(w, payer).await.0
}

async fn deliver_expected(w: &World, payer: &str) -> (String, curlew::sample::Expected) {
    let now = Utc::now();
    deliver_period(w, payer, &format!("{}-{:02}", now.year(), now.month())).await
}

async fn deliver_period(
    w: &World,
    payer: &str,
    period: &str,
) -> (String, curlew::sample::Expected) {
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 500);
    spec.versioning = Versioning::New;
    spec.payer = Some(payer.into());
    spec.period = period.to_owned();
    let out = write_sample(&spec, local.path()).unwrap();
    curlew_testkit::upload::upload_keys(
        &w.s3,
        &w.billing,
        local.path(),
        out.data_keys.iter().chain(&out.manifest_keys),
    )
    .await;
    (out.report, out.expected)
}

async fn sweep(w: &World, notify: &Recorded, tenant: &str, payer: &str) -> SweepOutcome {
    let ledger = Ledger::new(w.own.clone(), "curlew");
    let dispatch = LocalDispatch {
        ledger: ledger.clone(),
        notify,
    };
    let ctx = SweepCtx {
        clients: &w.clients,
        own: w.own.clone(),
        own_prefix: "curlew".into(),
        ledger,
        registry: Registry::new(w.own.clone(), "curlew"),
        dispatch: &dispatch,
        notify,
        stale_after: chrono::Duration::hours(DEFAULT_STALE_HOURS),
        max_files: curlew::pipeline::DEFAULT_MAX_FILES,
        min_interval: chrono::Duration::zero(),
    };
    sweep_connection(&ctx, tenant, payer, Utc::now())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_no_event_announced_is_planned_and_committed_once() {
    let w = world("missed").await;
    let payer = "410987654321";
    let registry = connect(&w, "acme", payer, &w.billing).await;
    let report = deliver(&w, payer).await;
    let notices = Recorded::default();

    let first = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(first.observed, None, "{first:?}");
    assert_eq!(first.planned.len(), 1, "{first:?}");
    assert!(!first.changed);
    let period = {
        let now = Utc::now();
        format!("{}-{:02}", now.year(), now.month())
    };
    let ledger = Ledger::new(w.own.clone(), "curlew");
    let current = ledger
        .current(&SourceId::new("acme", payer, &report), &period)
        .await
        .unwrap()
        .expect("committed");
    assert!(
        current.0.revision.ends_with(&first.planned[0]),
        "{current:?} {first:?}"
    );
    let published = notices.take();
    assert_eq!(
        published.iter().map(Notice::event).collect::<Vec<_>>(),
        vec!["revision-committed"],
        "{published:?}"
    );
    let (c, _) = registry.get("acme", payer).await.unwrap();
    assert_eq!(c.report.as_deref(), Some(report.as_str()));
    assert!(c.last_delivery_at.is_some() && c.last_checked_at.is_some());

    // The second sweep finds nothing new: no plan, no notice.
    let second = sweep(&w, &notices, "acme", payer).await;
    assert!(second.planned.is_empty(), "{second:?}");
    assert!(notices.take().is_empty());
    assert_eq!(second.status, ConnectionStatus::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_accounts_are_refreshed_through_the_customers_role() {
    let w = world("orgs").await;
    let payer = "510987654321";
    connect(&w, "acme", payer, &w.billing).await;
    deliver(&w, payer).await;
    // The payer's organization (moto: the account the assumed role acts as).
    let sts = aws_sdk_sts::Client::new(&sdk_conf());
    let c = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{payer}:role/setup"))
        .role_session_name("setup")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let creds = aws_sdk_s3::config::Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "setup",
    );
    let org = curlew::sweep::orgs::org_client(
        &aws_sdk_organizations::Client::new(&sdk_conf()),
        &creds,
        "aws",
    );
    org.create_organization().send().await.unwrap();
    org.create_account()
        .account_name("member")
        .email("member@example.com")
        .send()
        .await
        .unwrap();
    let notices = Recorded::default();
    let first = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(first.account_changes.len(), 2, "{first:?}");
    let (conn, _) = Registry::new(w.own.clone(), "curlew")
        .get("acme", payer)
        .await
        .unwrap();
    assert_eq!(conn.linked_accounts.len(), 2);
    assert!(conn.linked_accounts.contains(&payer.to_owned()));
    let events: Vec<&str> = notices.take().iter().map(Notice::event).collect();
    assert!(events.contains(&"accounts-changed"), "{events:?}");
    let second = sweep(&w, &notices, "acme", payer).await;
    assert!(second.account_changes.is_empty());
    assert!(notices.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bucket_breaks_after_two_sweeps_and_recovers_with_one_notice_each() {
    let w = world("gone").await;
    let payer = "610987654321";
    let gone = format!("{}-gone", w.billing);
    let registry = connect(&w, "acme", payer, &gone).await;
    let notices = Recorded::default();

    let first = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(first.observed, Some(HealthCause::BucketGone), "{first:?}");
    assert_eq!(first.status, ConnectionStatus::Connected);
    assert!(notices.take().is_empty());

    let second = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(
        (second.status, second.cause),
        (ConnectionStatus::Broken, Some(HealthCause::BucketGone))
    );
    let published = notices.take();
    assert_eq!(published.len(), 1);
    match &published[0] {
        Notice::ConnectionChanged(n) => {
            assert_eq!(
                (n.status, n.cause),
                (ConnectionStatus::Broken, Some(HealthCause::BucketGone))
            );
            assert!(n.remedy.as_deref().unwrap().contains("bucket"));
        }
        other => panic!("{other:?}"),
    }
    let third = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(third.status, ConnectionStatus::Broken);
    assert!(notices.take().is_empty());

    // The bucket is back with a delivery: connected, one notice.
    w.s3.create_bucket().bucket(&gone).send().await.unwrap();
    let w2 = World {
        billing: gone.clone(),
        s3: w.s3.clone(),
        clients: w.clients.clone(),
        own: w.own.clone(),
    };
    deliver(&w2, payer).await;
    let fourth = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(
        (fourth.status, fourth.cause),
        (ConnectionStatus::Connected, None)
    );
    let published = notices.take();
    let changed: Vec<&Notice> = published
        .iter()
        .filter(|n| n.event() == "connection-changed")
        .collect();
    assert_eq!(changed.len(), 1, "{published:?}");
    let (c, _) = registry.get("acme", payer).await.unwrap();
    assert_eq!((c.consecutive_failures, c.cause), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_lists_unconnected_suspended_and_silent_accounts() {
    use curlew::sweep::orgs::{LinkedAccount, Organization};
    use curlew::sweep::reconcile::{reconcile_tenant, DEFAULT_QUIET_DAYS};
    let w = world("reconcile").await;
    let payer = "470987654321";
    let registry = connect(&w, "acme", payer, &w.billing).await;
    let (_, expected) = deliver_expected(&w, payer).await;
    let notices = Recorded::default();
    assert_eq!(sweep(&w, &notices, "acme", payer).await.planned.len(), 1);

    // Organizations knows the payer, one billed account (now suspended) and
    // one that bills nothing; the other billed accounts are not connected.
    let billed: Vec<String> = expected.billed_per_account.keys().cloned().collect();
    assert!(billed.len() >= 3, "{billed:?}");
    let suspended = billed.iter().find(|a| *a != payer).unwrap().clone();
    let silent = "470900000001".to_owned();
    let acct = |id: &str, state: &str| LinkedAccount {
        id: id.into(),
        name: None,
        state: state.into(),
        joined_timestamp: None,
        joined_method: Some("INVITED".into()),
        missing_sweeps: 0,
    };
    registry
        .update("acme", payer, |c| {
            c.organization = Some(Organization {
                refreshed_at: Utc::now(),
                standalone: false,
                accounts: vec![
                    acct(payer, "ACTIVE"),
                    acct(&suspended, "SUSPENDED"),
                    acct(&silent, "ACTIVE"),
                ],
            });
            c.linked_accounts = vec![payer.into(), suspended.clone(), silent.clone()];
        })
        .await
        .unwrap();
    let ledger = Ledger::new(w.own.clone(), "curlew");
    let r = reconcile_tenant(&ledger, &registry, "acme", None, DEFAULT_QUIET_DAYS)
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    let unconnected: Vec<&str> = r
        .billed_not_connected
        .iter()
        .map(|a| a.account.as_str())
        .collect();
    let want: Vec<&str> = billed
        .iter()
        .filter(|a| *a != payer && **a != suspended)
        .map(String::as_str)
        .collect();
    assert_eq!(unconnected, want);
    for a in &r.billed_not_connected {
        assert_eq!(
            a.spend.billed_cost, expected.billed_per_account[&a.account],
            "{}",
            a.account
        );
    }
    assert_eq!(r.billed_not_active.len(), 1);
    assert_eq!(
        (
            r.billed_not_active[0].account.as_str(),
            r.billed_not_active[0].state.as_deref()
        ),
        (suspended.as_str(), Some("SUSPENDED"))
    );
    assert_eq!(
        r.billed_not_active[0].spend.billed_cost,
        expected.billed_per_account[&suspended]
    );
    assert!(r.connected_not_billed.contains(&silent), "{r:?}");
    assert!(!r.connected_not_billed.contains(&suspended));
}

/// Fails every publish until told otherwise.
struct Flaky {
    fail: std::sync::atomic::AtomicBool,
    sent: Recorded,
}

impl Notify for Flaky {
    fn publish<'a>(&'a self, notice: &'a Notice) -> NotifyFuture<'a> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async { Err("SNS unavailable".to_owned()) });
        }
        self.sent.publish(notice)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_that_could_not_be_published_is_published_by_the_next_sweep_once() {
    let w = world("pending").await;
    let payer = "490987654321";
    let gone = format!("{}-gone", w.billing);
    let registry = connect(&w, "acme", payer, &gone).await;
    let notices = Recorded::default();
    sweep(&w, &notices, "acme", payer).await;
    let flaky = Flaky {
        fail: true.into(),
        sent: Recorded::default(),
    };
    // The second failure breaks the connection; SNS refuses the notice.
    let ledger = Ledger::new(w.own.clone(), "curlew");
    let dispatch = LocalDispatch {
        ledger: ledger.clone(),
        notify: &flaky,
    };
    let ctx = SweepCtx {
        clients: &w.clients,
        own: w.own.clone(),
        own_prefix: "curlew".into(),
        ledger,
        registry: registry.clone(),
        dispatch: &dispatch,
        notify: &flaky,
        stale_after: chrono::Duration::hours(DEFAULT_STALE_HOURS),
        max_files: curlew::pipeline::DEFAULT_MAX_FILES,
        min_interval: chrono::Duration::zero(),
    };
    let err = sweep_connection(&ctx, "acme", payer, Utc::now())
        .await
        .unwrap_err();
    assert_eq!(err.class(), curlew::failure::Class::Transient);
    let (c, _) = registry.get("acme", payer).await.unwrap();
    assert_eq!(
        (c.status, c.pending_notices.len()),
        (ConnectionStatus::Broken, 1)
    );
    // SNS is back: the next sweep publishes it, once, and nothing else.
    flaky.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let o = sweep_connection(&ctx, "acme", payer, Utc::now())
        .await
        .unwrap();
    assert!(!o.changed);
    let sent = flaky.sent.take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].event(), "connection-changed");
    let (c, _) = registry.get("acme", payer).await.unwrap();
    assert!(c.pending_notices.is_empty());
    sweep_connection(&ctx, "acme", payer, Utc::now())
        .await
        .unwrap();
    assert!(flaky.sent.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_job_moments_later_counts_no_second_failure() {
    let w = world("redeliver").await;
    let payer = "495987654321";
    let gone = format!("{}-gone", w.billing);
    let registry = connect(&w, "acme", payer, &gone).await;
    let notices = Recorded::default();
    let ledger = Ledger::new(w.own.clone(), "curlew");
    let dispatch = LocalDispatch {
        ledger: ledger.clone(),
        notify: &notices,
    };
    let ctx = SweepCtx {
        clients: &w.clients,
        own: w.own.clone(),
        own_prefix: "curlew".into(),
        ledger,
        registry: registry.clone(),
        dispatch: &dispatch,
        notify: &notices,
        stale_after: chrono::Duration::hours(DEFAULT_STALE_HOURS),
        max_files: curlew::pipeline::DEFAULT_MAX_FILES,
        min_interval: chrono::Duration::minutes(10),
    };
    let now = Utc::now();
    sweep_connection(&ctx, "acme", payer, now).await.unwrap();
    let again = sweep_connection(&ctx, "acme", payer, now + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(again.skipped);
    let (c, _) = registry.get("acme", payer).await.unwrap();
    assert_eq!(
        (c.consecutive_failures, c.status),
        (1, ConnectionStatus::Connected)
    );
    // The next scheduled sweep counts.
    let next = sweep_connection(&ctx, "acme", payer, now + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(next.status, ConnectionStatus::Broken);
    assert_eq!(notices.take().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_announcement_is_planned_once_access_works_and_unparked() {
    let w = world("parked").await;
    let payer = "496987654321";
    let registry = connect(&w, "acme", payer, &w.billing).await;
    // A delivery of an old period (outside the recent listing) whose event
    // the planner parked when the customer's account refused it.
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 300);
    spec.versioning = Versioning::New;
    spec.payer = Some(payer.into());
    let out = write_sample(&spec, local.path()).unwrap();
    curlew_testkit::upload::upload_keys(
        &w.s3,
        &w.billing,
        local.path(),
        out.data_keys.iter().chain(&out.manifest_keys),
    )
    .await;
    let ledger = Ledger::new(w.own.clone(), "curlew");
    let (conn, _) = registry.get("acme", payer).await.unwrap();
    curlew::pipeline::park_manifest(
        &ledger,
        &conn,
        &w.billing,
        &out.manifest_keys[0],
        "AccessDenied",
    )
    .await
    .unwrap();
    assert_eq!(
        curlew::pipeline::parked(&ledger, "acme")
            .await
            .unwrap()
            .len(),
        1
    );

    let notices = Recorded::default();
    let first = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(first.planned.len(), 1, "{first:?}");
    // No recent manifest: export-missing is what this sweep saw, and counted once.
    assert_eq!(first.observed, Some(HealthCause::ExportMissing));
    assert!(curlew::pipeline::parked(&ledger, "acme")
        .await
        .unwrap()
        .is_empty());
    let current = ledger
        .current(&SourceId::new("acme", payer, &out.report), "2024-01")
        .await
        .unwrap();
    assert!(current.is_some());
    let second = sweep(&w, &notices, "acme", payer).await;
    assert!(second.planned.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_data_exports_reports_unhealthy_degrades_the_connection() {
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let mut w = world("unhealthy").await;
    let payer = "497987654321";
    let registry = connect(&w, "acme", payer, &w.billing).await;
    let report = deliver(&w, payer).await;
    // moto has no Data Exports: its answer is mocked (the rest is moto).
    let body = format!(
        r#"{{"Exports":[{{"ExportArn":"arn:aws:bcm-data-exports:us-east-1:{payer}:export/{report}-1","ExportName":"{report}","ExportStatus":{{"StatusCode":"UNHEALTHY","StatusReason":"INSUFFICIENT_PERMISSION"}}}}]}}"#
    );
    let rule = mock!(aws_sdk_bcmdataexports::Client::list_exports).then_http_response(move || {
        let mut r = aws_sdk_s3::config::http::HttpResponse::new(
            200.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(body.clone()),
        );
        r.headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        r
    });
    w.clients = w.clients.clone().with_exports(mock_client!(
        aws_sdk_bcmdataexports,
        RuleMode::MatchAny,
        &[rule]
    ));
    let notices = Recorded::default();
    // The first sweep binds the report (and ingests the delivery).
    let first = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(first.planned.len(), 1);
    let second = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(second.observed, Some(HealthCause::ExportUnhealthy));
    let third = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(
        (third.status, third.cause),
        (
            ConnectionStatus::Degraded,
            Some(HealthCause::ExportUnhealthy)
        )
    );
    let (c, _) = registry.get("acme", payer).await.unwrap();
    assert!(c.remedy.unwrap().contains("INSUFFICIENT_PERMISSION"));
}
