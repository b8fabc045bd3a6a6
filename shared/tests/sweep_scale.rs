//! The sweep at scale: 1,000 role-mode connections (10 tenants x 100
//! payers) swept 16 at a time, as the fanned-out Lambda invocations would,
//! with curlew's own store on the file system and every customer call (STS,
//! S3, Organizations) mocked with aws-smithy-mocks, so the time is curlew's
//! own work per connection. Prints the time; the bound is generous (it
//! catches an accidental full listing or a quadratic step, not noise).

use aws_sdk_organizations::operation::list_accounts::ListAccountsOutput;
use aws_sdk_organizations::types::{Account, AccountState};
use aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::Object;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use chrono::{Datelike, Months, NaiveDate, Utc};
use curlew::discover::Source;
use curlew::ledger::Ledger;
use curlew::onboard::{OnboardingHints, Onboardings};
use curlew::pipeline::{PartJob, Plan, Silent};
use curlew::registry::{AccessMode, Connection, ConnectionStatus, Registry};
use curlew::store::Store;
use curlew::sweep::{sweep_connection, Dispatch, DispatchFuture, SweepCtx};
use curlew_testkit::aws_mocks::{self, session};
use futures_util::stream::{self, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const CONNECTIONS: usize = 1_000;

/// Counts the plans it is handed (the parts would go to the parts topic).
#[derive(Default)]
struct Counted(AtomicUsize);

impl Dispatch for Counted {
    fn dispatch<'a>(
        &'a self,
        _: &'a Source,
        _: &'a Plan,
        _: &'a str,
        jobs: Vec<PartJob>,
    ) -> DispatchFuture<'a> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { Ok(jobs.len()) })
    }
}

fn dt(t: chrono::DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections() {
    let now = Utc::now();
    let first = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap();
    let folder = format!(
        "cur/r/{}-{}/",
        first.format("%Y%m%d"),
        (first + Months::new(1)).format("%Y%m%d")
    );
    let manifest_key = format!("{folder}r-Manifest.json");
    let data_key = format!("{folder}r-1.csv.gz");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "assemblyId": "",
        "reportName": "r",
        "billingPeriod": {
            "start": format!("{}T000000.000Z", first.format("%Y%m%d")),
            "end": format!("{}T000000.000Z", (first + Months::new(1)).format("%Y%m%d")),
        },
        "reportKeys": [data_key],
    }))
    .unwrap();
    let sts = vec![mock!(aws_sdk_sts::Client::assume_role).then_output(session)];
    let (mk, f) = (manifest_key.clone(), folder.clone());
    let s3 = vec![
        mock!(aws_sdk_s3::Client::get_bucket_location)
            .then_output(|| GetBucketLocationOutput::builder().build()),
        mock!(aws_sdk_s3::Client::list_objects_v2)
            .match_requests(move |r| r.prefix() == Some(f.as_str()))
            .then_output(move || {
                ListObjectsV2Output::builder()
                    .contents(
                        Object::builder()
                            .key(&mk)
                            .size(100)
                            .e_tag("\"m1\"")
                            .last_modified(dt(now - chrono::Duration::hours(2)))
                            .build(),
                    )
                    .build()
            }),
        mock!(aws_sdk_s3::Client::list_objects_v2)
            .then_output(|| ListObjectsV2Output::builder().build()),
        mock!(aws_sdk_s3::Client::get_object).then_output(move || {
            GetObjectOutput::builder()
                .body(ByteStream::from(manifest.clone()))
                .e_tag("\"m1\"")
                .content_length(manifest.len() as i64)
                .last_modified(dt(now - chrono::Duration::hours(2)))
                .build()
        }),
        mock!(aws_sdk_s3::Client::head_object).then_output(move || {
            HeadObjectOutput::builder()
                .e_tag("\"d1\"")
                .content_length(1000)
                .last_modified(dt(now - chrono::Duration::hours(2)))
                .build()
        }),
    ];
    let org = vec![
        mock!(aws_sdk_organizations::Client::list_accounts).then_output(|| {
            ListAccountsOutput::builder()
                .accounts(
                    Account::builder()
                        .id("111122223333")
                        .state(AccountState::Active)
                        .build(),
                )
                .build()
        }),
    ];
    let clients = aws_mocks::mock_clients(&sts, &s3).with_org(mock_client!(
        aws_sdk_organizations,
        RuleMode::MatchAny,
        &org
    ));

    let dir = tempfile::tempdir().unwrap();
    let own = Store::local(dir.path());
    let registry = Registry::new(own.clone(), "");
    let mut keys = Vec::new();
    for t in 0..10 {
        let tenant = format!("tenant{t}");
        Onboardings::new(own.clone(), "")
            .begin(&tenant, OnboardingHints::default())
            .await
            .unwrap();
        for p in 0..CONNECTIONS / 10 {
            let payer = format!("{:012}", 100_000_000_000u64 + (t * 1000 + p) as u64);
            let mut c = Connection::new(
                &tenant,
                &payer,
                AccessMode::CrossAccountRole,
                "billing",
                "cur",
            );
            c.role_arn = Some(format!("arn:aws:iam::{payer}:role/curlew-read-{tenant}"));
            c.status = ConnectionStatus::Connected;
            c.report = Some("r".into());
            registry.create(&c).await.unwrap();
            keys.push((tenant.clone(), payer));
        }
    }
    assert_eq!(registry.keys(None).await.unwrap().len(), CONNECTIONS);

    let dispatch = Counted::default();
    let ctx = SweepCtx {
        clients: &clients,
        own: own.clone(),
        own_prefix: String::new(),
        ledger: Ledger::new(own.clone(), ""),
        registry: registry.clone(),
        dispatch: &dispatch,
        notify: &Silent,
        stale_after: chrono::Duration::hours(48),
        max_files: 10,
        min_interval: chrono::Duration::zero(),
    };
    let ctx = &ctx;
    let started = Instant::now();
    let outcomes: Vec<_> = stream::iter(&keys)
        .map(|(t, p)| async move { sweep_connection(ctx, t, p, Utc::now()).await })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = started.elapsed();
    println!(
        "swept {CONNECTIONS} connections in {:.2} s ({:.2} ms each, 16 at a time)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / CONNECTIONS as f64
    );
    let ok: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
    assert!(
        ok.iter()
            .all(|o| o.observed.is_none() && o.status == ConnectionStatus::Connected),
        "{:?}",
        ok[0]
    );
    assert_eq!(dispatch.0.load(Ordering::Relaxed), CONNECTIONS);
    assert!(took.as_secs() < 120, "{took:?}");
}
