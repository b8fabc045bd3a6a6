//! The health-notify handler against moto_server (S3 store, SNS results
//! topic, an SQS queue subscribed without raw delivery): every sample of
//! `events/` drives it, events reach the connections they concern once, with
//! the filter attributes, and replaying them changes nothing.

use chrono::{Datelike, Duration, Utc};
use curlew::health::{process, Outcome};
use curlew::ledger::Ledger;
use curlew::registry::{AccessMode, Connection, ConnectionStatus};
use curlew::store::Store;
use curlew_testkit::aws::{drain_bodies, queue_subscribed, sdk_conf, topic};
use curlew_testkit::events::event;
use curlew_testkit::moto::{new_bucket, s3_client};
use health_notify::handler::{handle, parse};
use health_notify::{Config, Deps};
use serde_json::{json, Value};

const PAYER: &str = "111122223333";
const LINKED: &str = "222233334444";

struct World {
    deps: Deps,
    sqs: aws_sdk_sqs::Client,
    queue: String,
}

async fn world(tag: &str) -> World {
    let conf = sdk_conf();
    let s3 = s3_client();
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let store_bucket = new_bucket(&s3, &format!("{tag}-own")).await;
    let results = topic(&sns, &format!("{tag}-results")).await;
    let queue = queue_subscribed(&sns, &sqs, &results, &format!("{tag}-results")).await;
    World {
        deps: Deps {
            config: Config {
                store_bucket,
                store_prefix: "curlew".into(),
                results_topic_arn: results,
                dedupe_ttl_days: 90,
                poll_hours: 26,
            },
            s3,
            sns,
            sts: aws_sdk_sts::Client::new(&conf),
            health: aws_sdk_health::Client::new(&conf),
        },
        sqs,
        queue,
    }
}

/// A connected connection; `linked` accounts are added by a later update
/// (the account index follows the registry's update, not only its create).
async fn connect(w: &World, tenant: &str, payer: &str, linked: &[&str]) {
    let mut c = Connection::new(
        tenant,
        payer,
        AccessMode::CrossAccountRole,
        "billing",
        "cur",
    );
    c.status = ConnectionStatus::Connected;
    let registry = w.deps.ctx(&w.deps.notify()).registry;
    registry.create(&c).await.unwrap();
    if !linked.is_empty() {
        registry
            .update(tenant, payer, |c| {
                c.linked_accounts = linked.iter().map(|a| a.to_string()).collect()
            })
            .await
            .unwrap();
    }
}

/// The notices on the results queue now: (message, message attributes).
async fn notices(w: &World) -> Vec<(Value, Value)> {
    drain_bodies(&w.sqs, &w.queue)
        .await
        .iter()
        .map(|b| {
            let env: Value = serde_json::from_str(b).unwrap();
            let msg: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
            (msg, env["MessageAttributes"].clone())
        })
        .collect()
}

fn attr<'a>(attrs: &'a Value, name: &str) -> Option<&'a str> {
    attrs[name]["Value"].as_str()
}

async fn outcome(w: &World, ev: Value) -> String {
    let out = handle(&w.deps, ev).await.unwrap();
    out["outcome"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_reaches_its_tenant_once_and_a_replay_changes_nothing() {
    let w = world("healthall").await;
    connect(&w, "acme", PAYER, &[LINKED]).await;
    connect(&w, "globex", "333344445555", &[]).await;
    let samples = [
        ("health-ec2-issue.json", "published"),
        ("health-ec2-issue-closed.json", "published"),
        ("health-scheduled-change.json", "published"),
        ("health-paged-1.json", "awaiting-pages"),
        ("health-paged-2.json", "published"),
        ("health-abuse.json", "published"),
        ("health-account-notification.json", "published"),
    ];
    for (name, want) in samples {
        assert_eq!(outcome(&w, event(name)).await, want, "{name}");
    }
    let got = notices(&w).await;
    assert_eq!(got.len(), 6, "{got:#?}");
    for (msg, attrs) in &got {
        assert_eq!(msg["event"], "health");
        assert_eq!(attr(attrs, "event"), Some("health"));
        assert_eq!(attr(attrs, "tenant"), Some("acme"));
        assert_eq!(attr(attrs, "payer_account"), Some(PAYER));
    }
    // By linked account: the scheduled change of 222233334444, every attribute.
    let (msg, attrs) = got
        .iter()
        .find(|(m, _)| m["event_type_code"] == "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")
        .expect("the scheduled change");
    let names = [
        "tenant",
        "payer_account",
        "account_id",
        "service",
        "event_type_category",
        "status_code",
        "event_scope_code",
        "region",
    ];
    let values: Vec<Option<&str>> = names.iter().map(|n| attr(attrs, n)).collect();
    assert_eq!(
        values,
        vec![
            Some("acme"),
            Some(PAYER),
            Some(LINKED),
            Some("EC2"),
            Some("scheduledChange"),
            Some("upcoming"),
            Some("ACCOUNT_SPECIFIC"),
            Some("eu-west-1"),
        ]
    );
    assert_eq!(
        msg["affected_entities"],
        json!(["i-0123456789abcdef0", "i-0fedcba9876543210"])
    );
    // The two pages: one notice with every entity.
    let (paged, _) = got
        .iter()
        .find(|(m, _)| m["event_type_code"] == "AWS_RDS_MAINTENANCE_SCHEDULED")
        .unwrap();
    assert_eq!(
        paged["affected_entities"],
        json!([
            "db-ABCDEFGHIJKLMNOP1",
            "db-ABCDEFGHIJKLMNOP2",
            "db-ABCDEFGHIJKLMNOP3"
        ])
    );
    // The closure is a resolution; the abuse event says so.
    let closed: Vec<&Value> = got
        .iter()
        .filter(|(m, _)| m["resolved"] == true)
        .map(|(m, _)| m)
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["status_code"], "closed");
    assert!(got.iter().any(|(m, a)| m["abuse"] == true
        && attr(a, "account_id") == Some(LINKED)
        && attr(a, "service") == Some("ABUSE")));

    // Everything again: duplicates, nothing published.
    for (name, _) in samples {
        assert_eq!(outcome(&w, event(name)).await, "duplicate", "{name}");
    }
    assert!(notices(&w).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_change_and_a_closure_publish_one_notice_each() {
    let w = world("healthstatus").await;
    connect(&w, "acme", PAYER, &[]).await;
    let open = event("health-ec2-issue.json");
    assert_eq!(outcome(&w, open.clone()).await, "published");
    assert_eq!(outcome(&w, open.clone()).await, "duplicate");
    assert_eq!(notices(&w).await.len(), 1);
    // Same communication, a new description: published again.
    let mut updated = open.clone();
    updated["detail"]["eventDescription"][0]["latestDescription"] =
        "We have identified the cause of the increased API error rates.".into();
    assert_eq!(outcome(&w, updated.clone()).await, "published");
    assert_eq!(outcome(&w, updated).await, "duplicate");
    // An affected entity more: published again.
    let mut more = open.clone();
    more["detail"]["eventDescription"][0]["latestDescription"] =
        "We have identified the cause of the increased API error rates.".into();
    more["detail"]["affectedEntities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"entityValue": "i-abcd2222"}));
    assert_eq!(outcome(&w, more).await, "published");
    let got = notices(&w).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(
        got[1].0["affected_entities"],
        json!(["i-abcd1111", "i-abcd2222"])
    );
    // Closed: one resolution, then nothing.
    let closed = event("health-ec2-issue-closed.json");
    assert_eq!(outcome(&w, closed.clone()).await, "published");
    assert_eq!(outcome(&w, closed).await, "duplicate");
    let got = notices(&w).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["resolved"], true);
    assert_eq!(attr(&got[0].1, "status_code"), Some("closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_in_any_order_and_repeated_publish_one_notice() {
    let w = world("healthpages").await;
    connect(&w, "acme", PAYER, &[]).await;
    let (p1, p2) = (event("health-paged-1.json"), event("health-paged-2.json"));
    assert_eq!(outcome(&w, p2.clone()).await, "awaiting-pages");
    assert_eq!(outcome(&w, p2.clone()).await, "awaiting-pages");
    assert!(notices(&w).await.is_empty());
    assert_eq!(outcome(&w, p1.clone()).await, "published");
    assert_eq!(outcome(&w, p1).await, "duplicate");
    assert_eq!(outcome(&w, p2).await, "duplicate");
    let got = notices(&w).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["affected_entities"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_account_is_counted_not_published_not_failed() {
    let w = world("healthunknown").await;
    connect(&w, "acme", PAYER, &[LINKED]).await;
    let mut ev = event("health-scheduled-change.json");
    ev["detail"]["affectedAccount"] = "999988887777".into();
    let out = handle(&w.deps, ev).await.unwrap();
    assert_eq!(out["outcome"], "unknown-account");
    assert_eq!(out["account_id"], "999988887777");
    assert_eq!(out["tenants"], json!([]));
    // Without affectedAccount the receiving account (the envelope's) counts.
    let mut ev = event("health-account-notification.json");
    ev["detail"]
        .as_object_mut()
        .unwrap()
        .remove("affectedAccount");
    ev["account"] = LINKED.into();
    let out = handle(&w.deps, ev).await.unwrap();
    assert_eq!(
        (out["outcome"].as_str(), out["account_id"].as_str()),
        (Some("published"), Some(LINKED))
    );
    assert_eq!(notices(&w).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_answered_not_retried() {
    let w = world("healthbad").await;
    let out = handle(&w.deps, json!({"hello": "world"})).await.unwrap();
    assert_eq!(out["outcome"], "malformed");
    let out = handle(
        &w.deps,
        json!({"detail-type": "AWS Health Event", "source": "aws.health", "detail": {"service": "EC2"}}),
    )
    .await
    .unwrap();
    assert_eq!(out["outcome"], "malformed");
    assert!(out["error"].as_str().unwrap().contains("eventArn"));
    let mut other = event("health-ec2-issue.json");
    other["source"] = "aws.ec2".into();
    assert_eq!(outcome(&w, other).await, "malformed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_fails_the_invocation_and_the_retry_publishes_once() {
    let mut w = world("healthretry").await;
    connect(&w, "acme", PAYER, &[]).await;
    let topic_arn = w.deps.config.results_topic_arn.clone();
    w.deps.config.results_topic_arn = format!("{topic_arn}-gone");
    assert!(handle(&w.deps, event("health-ec2-issue.json"))
        .await
        .is_err());
    w.deps.config.results_topic_arn = topic_arn;
    assert_eq!(
        outcome(&w, event("health-ec2-issue.json")).await,
        "published"
    );
    assert_eq!(
        outcome(&w, event("health-ec2-issue.json")).await,
        "duplicate"
    );
    assert_eq!(notices(&w).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_dedupe_records_are_ignored_and_removed_by_gc() {
    let w = world("healthttl").await;
    connect(&w, "acme", PAYER, &[]).await;
    let notify = w.deps.notify();
    let ctx = w.deps.ctx(&notify);
    let inc = parse(event("health-ec2-issue.json")).unwrap();
    let long_ago = Utc::now() - Duration::days(200);
    let p = process(&ctx, &inc, long_ago).await.unwrap();
    assert_eq!(p.outcome, Outcome::Published);
    let p = process(&ctx, &inc, long_ago + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(p.outcome, Outcome::Duplicate);
    // 90 days on, the record has expired: the event is news again.
    let p = process(&ctx, &inc, long_ago + Duration::days(91))
        .await
        .unwrap();
    assert_eq!(p.outcome, Outcome::Published);
    assert_eq!(notices(&w).await.len(), 2);
    let store = w.deps.own_store();
    assert_eq!(
        curlew::gc::gc_health(&store, "curlew", long_ago + Duration::days(100))
            .await
            .unwrap(),
        0,
        "not expired yet"
    );
    assert_eq!(
        curlew::gc::gc_health(&store, "curlew", Utc::now())
            .await
            .unwrap(),
        1
    );
    assert!(store
        .list("curlew/health/dedupe/")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_event_without_an_account_goes_to_tenants_with_spend_there() {
    use curlew::sample::{write_sample, SampleFormat, SampleSpec};
    let w = world("healthspend").await;
    connect(&w, "acme", PAYER, &[]).await;
    connect(&w, "globex", "333344445555", &[]).await;
    // A committed delivery for acme only (globex is connected, nothing billed).
    let local = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 400);
    spec.payer = Some(PAYER.into());
    let now = Utc::now();
    spec.period = format!("{}-{:02}", now.year(), now.month());
    write_sample(&spec, local.path()).unwrap();
    let ledger = Ledger::new(w.deps.own_store(), "curlew");
    let mut opts = curlew::ingest::IngestOptions::new("acme");
    opts.payer = Some(PAYER.into());
    let source = curlew::discover::Source {
        store: Store::local(local.path()),
        prefix: String::new(),
    };
    let r = curlew::ingest::ingest(&source, &ledger, &opts, &curlew::pipeline::Silent)
        .await
        .unwrap();
    assert!(!r.failed(), "{r:?}");
    // A (service, region) acme has spend on, from its committed rollup.
    let committed = curlew::report::load_committed(&ledger, "acme", None)
        .await
        .unwrap();
    let row = committed[0]
        .rows
        .iter()
        .find(|r| r.key[2] == "AmazonEC2" && !r.key[4].is_empty() && r.sums.billed_cost > 0.into())
        .expect("EC2 spend in some region");
    let region = row.key[4].clone();

    let mut ev = event("health-ec2-issue.json");
    ev["detail"]
        .as_object_mut()
        .unwrap()
        .remove("affectedAccount");
    ev["detail"]["eventRegion"] = region.clone().into();
    let out = handle(&w.deps, ev.clone()).await.unwrap();
    assert_eq!(out["outcome"], "published", "{out}");
    assert_eq!(out["tenants"], json!(["acme"]));
    assert!(out["account_id"].is_null());
    let got = notices(&w).await;
    assert_eq!(got.len(), 1);
    let attrs = &got[0].1;
    assert_eq!(
        (
            attr(attrs, "tenant"),
            attr(attrs, "payer_account"),
            attr(attrs, "account_id"),
            attr(attrs, "region"),
            attr(attrs, "event_scope_code")
        ),
        (
            Some("acme"),
            Some(PAYER),
            None,
            Some(region.as_str()),
            Some("PUBLIC")
        )
    );
    assert_eq!(got[0].0["routed_by"], "spend");
    assert_eq!(outcome(&w, ev.clone()).await, "duplicate");
    // Nobody has spend in a region of no bill.
    ev["detail"]["eventRegion"] = "ap-nowhere-9".into();
    ev["detail"]["eventArn"] =
        "arn:aws:health:ap-nowhere-9::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/X".into();
    assert_eq!(outcome(&w, ev).await, "unknown-account");
    assert!(notices(&w).await.is_empty());
}

/// The daily poll: through the customer's role (moto's STS, the tenant's
/// External ID from the store), Health mocked (aws-smithy-mocks): acme's
/// organization reports an event of its linked account, published once (a
/// second poll finds a duplicate); globex has no support plan, recorded as
/// `not-subscribed` on its connection, not a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_poll_publishes_what_a_push_missed_and_records_no_support_plan() {
    use aws_sdk_health::operation::describe_affected_accounts_for_organization::DescribeAffectedAccountsForOrganizationOutput;
    use aws_sdk_health::operation::describe_affected_entities_for_organization::DescribeAffectedEntitiesForOrganizationOutput;
    use aws_sdk_health::operation::describe_event_details_for_organization::DescribeEventDetailsForOrganizationOutput;
    use aws_sdk_health::operation::describe_events_for_organization::{
        DescribeEventsForOrganizationError, DescribeEventsForOrganizationOutput,
    };
    use aws_sdk_health::types::{
        EventScopeCode, EventStatusCode, EventTypeCategory, OrganizationEvent,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    let mut w = world("healthpoll").await;
    for (tenant, payer) in [("acme", PAYER), ("globex", "333344445555")] {
        curlew::onboard::Onboardings::new(w.deps.own_store(), "curlew")
            .begin(tenant, curlew::onboard::OnboardingHints::default())
            .await
            .unwrap();
        connect(
            &w,
            tenant,
            payer,
            if tenant == "acme" { &[LINKED] } else { &[] },
        )
        .await;
        w.deps
            .ctx(&w.deps.notify())
            .registry
            .update(tenant, payer, |c| {
                c.role_arn = Some(format!("arn:aws:iam::{payer}:role/curlew-read-{tenant}"))
            })
            .await
            .unwrap();
    }
    let arn = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/POLL1";
    let mk_events = move || {
        DescribeEventsForOrganizationOutput::builder()
            .events(
                OrganizationEvent::builder()
                    .arn(arn)
                    .service("EC2")
                    .event_type_code("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")
                    .event_type_category(EventTypeCategory::ScheduledChange)
                    .event_scope_code(EventScopeCode::AccountSpecific)
                    .region("eu-west-1")
                    .status_code(EventStatusCode::Upcoming)
                    .last_updated_time(aws_smithy_types::DateTime::from_secs(1_704_722_400))
                    .build(),
            )
            .build()
    };
    let no_plan = || {
        DescribeEventsForOrganizationError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("SubscriptionRequiredException")
                .message("no Business or Enterprise support plan")
                .build(),
        )
    };
    // Connections are polled in key order: acme, then globex; twice.
    let events = mock!(aws_sdk_health::Client::describe_events_for_organization)
        .sequence()
        .output(mk_events)
        .error(no_plan)
        .output(mk_events)
        .error(no_plan)
        .build();
    let accounts = mock!(aws_sdk_health::Client::describe_affected_accounts_for_organization)
        .then_output(|| {
            DescribeAffectedAccountsForOrganizationOutput::builder()
                .affected_accounts(LINKED)
                .build()
        });
    let details = mock!(aws_sdk_health::Client::describe_event_details_for_organization)
        .then_output(|| DescribeEventDetailsForOrganizationOutput::builder().build());
    let entities = mock!(aws_sdk_health::Client::describe_affected_entities_for_organization)
        .then_output(|| DescribeAffectedEntitiesForOrganizationOutput::builder().build());
    w.deps.health = mock_client!(
        aws_sdk_health,
        RuleMode::MatchAny,
        &[&events, &accounts, &details, &entities]
    );
    let schedule = json!({
        "version": "0", "id": "p1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "999988887777", "time": "2024-01-09T06:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {}
    });
    let out = handle(&w.deps, schedule.clone()).await.unwrap();
    assert_eq!(
        out["polled"],
        json!([
            {"tenant": "acme", "payer_account": PAYER, "state": "polled", "events": 1, "published": 1},
            {"tenant": "globex", "payer_account": "333344445555", "state": "not-subscribed", "events": 0, "published": 0},
        ])
    );
    let got = notices(&w).await;
    assert_eq!(got.len(), 1);
    assert_eq!(attr(&got[0].1, "account_id"), Some(LINKED));
    assert_eq!(attr(&got[0].1, "tenant"), Some("acme"));
    let registry = w.deps.ctx(&w.deps.notify()).registry;
    let (globex, _) = registry.get("globex", "333344445555").await.unwrap();
    assert_eq!(globex.health_poll.unwrap().state, "not-subscribed");
    // The next poll finds the same event: nothing new.
    let out = handle(&w.deps, schedule).await.unwrap();
    assert_eq!(out["polled"][0]["published"], 0);
    assert!(notices(&w).await.is_empty());
    assert_eq!(events.num_calls(), 4);

    // The same state pushed through EventBridge (with a communicationId,
    // which a polled event lacks): not announced a second time. A new
    // communication that changes the state is.
    let pushed = |communication: &str, description: &str| {
        json!({
            "version": "0", "id": "push-1", "detail-type": "AWS Health Event", "source": "aws.health",
            "account": LINKED, "time": "2024-01-08T14:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": {
                "eventArn": arn, "service": "EC2",
                "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                "eventTypeCategory": "scheduledChange", "eventScopeCode": "ACCOUNT_SPECIFIC",
                "communicationId": communication,
                "lastUpdatedTime": "Mon, 08 Jan 2024 14:00:00 GMT",
                "statusCode": "upcoming", "eventRegion": "eu-west-1",
                "eventDescription": if description.is_empty() { json!([]) } else {
                    json!([{"language": "en_US", "latestDescription": description}])
                },
                "affectedAccount": LINKED
            }
        })
    };
    assert_eq!(outcome(&w, pushed("c0ffee", "")).await, "duplicate");
    assert!(notices(&w).await.is_empty(), "pushed after polled: once");
    assert_eq!(
        outcome(
            &w,
            pushed("beef01", "The instance will be retired on 1 February.")
        )
        .await,
        "published"
    );
    assert_eq!(notices(&w).await.len(), 1);
}
