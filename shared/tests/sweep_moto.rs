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

/// The payer's Organizations client (moto: the account the assumed role acts as).
async fn organization_client(payer: &str) -> aws_sdk_organizations::Client {
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
    curlew::sweep::orgs::org_client(
        &aws_sdk_organizations::Client::new(&sdk_conf()),
        &creds,
        "aws",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_accounts_are_refreshed_through_the_customers_role() {
    let w = world("orgs").await;
    let payer = "510987654321";
    connect(&w, "acme", payer, &w.billing).await;
    deliver(&w, payer).await;
    let org = organization_client(payer).await;
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
    // GetExport: it delivers where the connection reads.
    let bucket = w.billing.clone();
    let get = mock!(aws_sdk_bcmdataexports::Client::get_export).then_http_response(move || {
        let body = format!(
            r#"{{"Export":{{"Name":"x","DataQuery":{{"QueryStatement":"SELECT 1"}},"RefreshCadence":{{"Frequency":"SYNCHRONOUS"}},
                "DestinationConfigurations":{{"S3Destination":{{"S3Bucket":"{bucket}","S3Prefix":"cur","S3Region":"us-east-1",
                "S3OutputConfigurations":{{"OutputType":"CUSTOM","Format":"PARQUET","Compression":"PARQUET","Overwrite":"OVERWRITE_REPORT"}}}}}}}}}}"#
        );
        let mut r = aws_sdk_s3::config::http::HttpResponse::new(
            200.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(body),
        );
        r.headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        r
    });
    w.clients = w.clients.clone().with_exports(mock_client!(
        aws_sdk_bcmdataexports,
        RuleMode::MatchAny,
        &[rule, get]
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

/// A report deleted in Billing: Cost and Usage Reports (mocked: moto has no
/// such backend) lists no definition of that name, Data Exports is not
/// granted. The delivered manifests are legacy CUR, so CUR's answer is
/// enough: export-missing on the second sweep, naming the API that said so,
/// while its last deliveries still sit in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_deleted_in_billing_is_export_missing_before_it_goes_stale() {
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let mut w = world("deleted").await;
    let payer = "498987654321";
    let registry = connect(&w, "acme", payer, &w.billing).await;
    deliver(&w, payer).await;
    let json = |status: u16, body: &'static str| {
        let mut r = aws_sdk_s3::config::http::HttpResponse::new(
            status.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(body),
        );
        r.headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        r
    };
    let defs = mock!(aws_sdk_costandusagereport::Client::describe_report_definitions)
        .then_http_response(move || json(200, r#"{"ReportDefinitions":[]}"#));
    let list = mock!(aws_sdk_bcmdataexports::Client::list_exports).then_http_response(move || {
        json(400, r#"{"__type":"AccessDeniedException","Message":"not authorized to perform: bcm-data-exports:ListExports"}"#)
    });
    w.clients = w
        .clients
        .clone()
        .with_cur(mock_client!(
            aws_sdk_costandusagereport,
            RuleMode::MatchAny,
            &[defs]
        ))
        .with_exports(mock_client!(
            aws_sdk_bcmdataexports,
            RuleMode::MatchAny,
            &[list]
        ));
    let notices = Recorded::default();
    // The first sweep binds the report (and ingests the delivery); from
    // then on it has a name to ask about.
    let first = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(first.planned.len(), 1, "{first:?}");
    let second = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(
        second.observed,
        Some(HealthCause::ExportMissing),
        "{second:?}"
    );
    let third = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(third.status, ConnectionStatus::Broken, "{third:?}");
    let (c, _) = registry.get("acme", payer).await.unwrap();
    let remedy = c.remedy.unwrap();
    assert!(
        remedy.contains("cur:DescribeReportDefinitions") && remedy.contains("deleted or renamed"),
        "{remedy}"
    );
}

/// A billing API that accepts the connection and never answers (a listener
/// on 127.0.0.1 that reads nothing) ends as a timeout, which says nothing:
/// the sweep finishes, the connection stays connected. Without timeouts on
/// the customer-facing clients this sweep never returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_api_that_hangs_times_out_and_changes_nothing() {
    use aws_sdk_s3::config::timeout::TimeoutConfig;
    use std::time::Duration;
    let mut w = world("hang").await;
    let payer = "499987654321";
    connect(&w, "acme", payer, &w.billing).await;
    deliver(&w, payer).await;
    let (addr, held) = curlew_testkit::net::silent_listener().await;
    let hanging = aws_sdk_bcmdataexports::Client::from_conf(
        aws_sdk_bcmdataexports::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_bcmdataexports::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{addr}"))
            .credentials_provider(aws_sdk_bcmdataexports::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .build(),
    );
    w.clients = w.clients.clone().with_exports(hanging).with_timeouts(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(5))
            .build(),
    );
    let notices = Recorded::default();
    let first = tokio::time::timeout(Duration::from_secs(60), sweep(&w, &notices, "acme", payer))
        .await
        .expect("the sweep ended (the hang timed out)");
    assert_eq!(first.planned.len(), 1, "{first:?}");
    let second = tokio::time::timeout(Duration::from_secs(60), sweep(&w, &notices, "acme", payer))
        .await
        .expect("the sweep ended (the hang timed out)");
    assert_eq!(second.observed, None, "{second:?}");
    assert_eq!(second.status, ConnectionStatus::Connected);
    held.abort();
}

/// The reconciliation reaches subscribers through the sweep: one
/// `accounts-reconciled` notice when the sweep first finds billed accounts
/// that are not connected (with their exact spend) and a connected one that
/// bills nothing; nothing while the lists stay the same (another sweep, a
/// newer revision of the same accounts); one more when they change (the
/// silent member is closed: not ACTIVE, so no longer expected to bill).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_notifies_the_reconciliation_when_its_accounts_change() {
    use curlew::sweep::reconcile::Reconciliation;
    let w = world("reconnotice").await;
    let payer = "520987654321";
    let registry = connect(&w, "acme", payer, &w.billing).await;
    let (_, expected) = deliver_expected(&w, payer).await;
    let org = organization_client(payer).await;
    org.create_organization().send().await.unwrap();
    org.create_account()
        .account_name("quiet")
        .email("quiet@example.com")
        .send()
        .await
        .unwrap();
    let reconciled = |notices: Vec<Notice>| -> Vec<Reconciliation> {
        notices
            .into_iter()
            .filter_map(|n| match n {
                Notice::AccountsReconciled(r) => Some(*r),
                _ => None,
            })
            .collect()
    };
    let notices = Recorded::default();

    let first = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(first.planned.len(), 1, "{first:?}");
    let r = reconciled(notices.take());
    assert_eq!(r.len(), 1, "{r:?}");
    let (conn, _) = registry.get("acme", payer).await.unwrap();
    let quiet = conn
        .linked_accounts
        .iter()
        .find(|a| *a != payer)
        .unwrap()
        .clone();
    let unconnected: Vec<&String> = expected
        .billed_per_account
        .keys()
        .filter(|a| *a != payer)
        .collect();
    assert!(!unconnected.is_empty());
    assert_eq!(
        r[0].billed_not_connected
            .iter()
            .map(|a| &a.account)
            .collect::<Vec<_>>(),
        unconnected
    );
    for a in &r[0].billed_not_connected {
        assert_eq!(a.spend.billed_cost, expected.billed_per_account[&a.account]);
    }
    assert_eq!(r[0].connected_not_billed, vec![quiet.clone()]);

    // Nothing changed: nothing said.
    sweep(&w, &notices, "acme", payer).await;
    assert!(reconciled(notices.take()).is_empty());
    // A newer revision of the same accounts (AWS writing the manifest again
    // a second later): reconciled, nothing to say.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    deliver(&w, payer).await;
    let third = sweep(&w, &notices, "acme", payer).await;
    assert_eq!(third.planned.len(), 1, "{third:?}");
    assert!(reconciled(notices.take()).is_empty());
    let (after, _) = registry.get("acme", payer).await.unwrap();
    let revision = |c: &Connection| c.reconciled.as_ref().unwrap().revision.clone();
    assert_ne!(
        revision(&after),
        revision(&conn),
        "the newer revision was reconciled"
    );

    // The quiet member closes: the lists change, one notice.
    org.close_account().account_id(&quiet).send().await.unwrap();
    sweep(&w, &notices, "acme", payer).await;
    let r = reconciled(notices.take());
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].connected_not_billed.is_empty(), "{r:?}");
}

/// The access proof's "report" item for the billing bucket under `cur/`
/// (bucket-policy mode: curlew's own clients).
async fn proof_report_item(w: &World) -> (curlew::access::AccessReport, curlew::access::CheckItem) {
    let target = curlew::access::AccessTarget {
        bucket: w.billing.clone(),
        prefix: "cur".into(),
        ..Default::default()
    };
    let r = curlew::access::prove(&w.clients, &target).await;
    let item = r
        .items
        .iter()
        .find(|i| i.id == "report")
        .cloned()
        .unwrap_or_else(|| panic!("{}", curlew::access::render::table(&r)));
    (r, item)
}

/// The first day of the month `back` months before the open one, and its
/// legacy CUR period folder (`yyyymmdd-yyyymmdd/`).
fn period_folder(back: u32) -> (String, String) {
    let now = Utc::now();
    let open = chrono::NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap();
    let first = open - chrono::Months::new(back);
    let next = first + chrono::Months::new(1);
    (
        first.format("%Y-%m").to_string(),
        format!("{}-{}/", first.format("%Y%m%d"), next.format("%Y%m%d")),
    )
}

/// The proof's delivery check looks at the manifests of the open and the
/// previous billing period only, however many years the prefix holds: two
/// years of older manifests, all unreadable, are never read (the whole-prefix
/// discovery read every one of them and reported them unusable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_reads_only_recent_manifests_however_old_the_report() {
    let w = world("bounded").await;
    let (report, _) = deliver_expected(&w, "111122223333").await;
    for back in 2..26 {
        let (_, folder) = period_folder(back);
        w.s3.put_object()
            .bucket(&w.billing)
            .key(format!("cur/{report}/{folder}{report}-Manifest.json"))
            .body(b"not a manifest".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let (r, item) = proof_report_item(&w).await;
    let table = curlew::access::render::table(&r);
    assert_eq!(item.outcome, curlew::access::Outcome::Pass, "{table}");
    assert!(!item.detail.contains("unusable"), "{table}");
    let (open, _) = period_folder(0);
    assert_eq!(r.reports.len(), 1, "{table}");
    assert_eq!(r.reports[0].newest_period.as_deref(), Some(open.as_str()));
    assert_eq!(r.reports[0].kind, "CUR1");
    assert_eq!(r.reports[0].format, "CSV");
}

/// No manifest of the recent periods: a prefix that fits one listing page is
/// searched whole (a delivery of a period six months back is found); a
/// larger one is not, and the proof says why instead of listing years of
/// objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_recent_manifests_only_a_small_prefix_is_searched_whole() {
    use futures_util::StreamExt;
    let w = world("old-only").await;
    let (old, _) = period_folder(6);
    deliver_period(&w, "111122223333", &old).await;
    let (r, item) = proof_report_item(&w).await;
    let table = curlew::access::render::table(&r);
    assert_eq!(item.outcome, curlew::access::Outcome::Pass, "{table}");
    assert_eq!(r.reports[0].newest_period.as_deref(), Some(old.as_str()));

    futures_util::stream::iter(0..1000)
        .map(|i| {
            w.s3.put_object()
                .bucket(&w.billing)
                .key(format!("cur/copies/{i:04}.csv"))
                .body(b"x".to_vec().into())
                .send()
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            r.unwrap();
        })
        .await;
    let (r, item) = proof_report_item(&w).await;
    let table = curlew::access::render::table(&r);
    assert_eq!(item.outcome, curlew::access::Outcome::Warn, "{table}");
    assert!(
        item.detail.contains("older deliveries were not searched"),
        "{table}"
    );
    assert!(r.reports.is_empty(), "{table}");
}

/// curlew's own store refusing the tenant's External ID (here: its bucket is
/// gone; in AWS: an operator's credentials that the store or the secrets KMS
/// key refuse) is not the connection's problem: the sweep fails with a
/// permanent error naming the store and records nothing against the
/// connection, however often it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_curlews_own_store_is_never_counted_against_the_connection() {
    let w = world("own-refused").await;
    let payer = "496987654321";
    let registry = connect(&w, "acme", payer, &w.billing).await;
    let (before, _) = registry.get("acme", payer).await.unwrap();
    let notify = Recorded::default();
    let ledger = Ledger::new(w.own.clone(), "curlew");
    let dispatch = LocalDispatch {
        ledger: ledger.clone(),
        notify: &notify,
    };
    let ctx = SweepCtx {
        clients: &w.clients,
        own: Store::S3(S3Store::new(w.s3.clone(), format!("{}-gone", w.billing))),
        own_prefix: "curlew".into(),
        ledger,
        registry: registry.clone(),
        dispatch: &dispatch,
        notify: &notify,
        stale_after: chrono::Duration::hours(DEFAULT_STALE_HOURS),
        max_files: curlew::pipeline::DEFAULT_MAX_FILES,
        min_interval: chrono::Duration::zero(),
    };
    for _ in 0..3 {
        let err = sweep_connection(&ctx, "acme", payer, Utc::now())
            .await
            .unwrap_err();
        assert_eq!(err.class(), curlew::failure::Class::Permanent, "{err}");
        assert!(err.to_string().contains("curlew's store"), "{err}");
    }
    let (after, _) = registry.get("acme", payer).await.unwrap();
    assert_eq!(after.status, before.status);
    assert_eq!(after.version, before.version, "nothing written");
    assert!(notify.take().is_empty());
}
