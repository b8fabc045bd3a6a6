//! curlew::health without the network: the registry's account index (kept
//! in step by create, update and reindex) and the optional poll of AWS
//! Health's organizational view through the real SDK client with
//! aws-smithy-mocks (paging, throttling retried, SubscriptionRequiredException).

use aws_sdk_health::operation::describe_affected_accounts_for_organization::DescribeAffectedAccountsForOrganizationOutput;
use aws_sdk_health::operation::describe_affected_entities_for_organization::DescribeAffectedEntitiesForOrganizationOutput;
use aws_sdk_health::operation::describe_event_details_for_organization::DescribeEventDetailsForOrganizationOutput;
use aws_sdk_health::operation::describe_events_for_organization::{
    DescribeEventsForOrganizationError, DescribeEventsForOrganizationOutput,
};
use aws_sdk_health::types::{
    AffectedEntity, EntityStatusCode, EventDescription, EventScopeCode, EventStatusCode,
    EventTypeCategory, OrganizationEvent, OrganizationEventDetails,
};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use chrono::{Duration, Utc};
use curlew::health::poll::{poll_organization, Polled, MAX_RESULTS};
use curlew::registry::{AccessMode, Connection, Registry};
use curlew::store::Store;

#[tokio::test]
async fn the_account_index_follows_payer_and_linked_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path());
    let registry = Registry::new(store.clone(), "p");
    let mut c = Connection::new(
        "acme",
        "111122223333",
        AccessMode::CrossAccountRole,
        "b",
        "cur",
    );
    c.linked_accounts = vec!["222233334444".into()];
    registry.create(&c).await.unwrap();
    let tenants = |f: curlew::registry::Found| {
        f.connections
            .iter()
            .map(|c| format!("{}/{}", c.tenant, c.payer_account))
            .collect::<Vec<_>>()
    };
    for a in ["111122223333", "222233334444"] {
        assert_eq!(
            tenants(registry.find_by_account(a).await.unwrap()),
            ["acme/111122223333"],
            "{a}"
        );
    }
    // Another tenant connected to the same payer is found too.
    let other = Connection::new(
        "globex",
        "111122223333",
        AccessMode::BucketPolicy,
        "b",
        "cur",
    );
    registry.create(&other).await.unwrap();
    assert_eq!(
        tenants(registry.find_by_account("111122223333").await.unwrap()),
        ["acme/111122223333", "globex/111122223333"]
    );
    // A linked account removed leaves the index; a new one joins it.
    registry
        .update("acme", "111122223333", |c| {
            c.linked_accounts = vec!["555566667777".into()]
        })
        .await
        .unwrap();
    assert!(registry
        .find_by_account("222233334444")
        .await
        .unwrap()
        .connections
        .is_empty());
    assert!(store
        .list("p/registry-by-account/222233334444/")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        tenants(registry.find_by_account("555566667777").await.unwrap()),
        ["acme/111122223333"]
    );
    // reindex rebuilds it from the documents.
    for m in store.list("p/registry-by-account/").await.unwrap() {
        store.delete(&m.key).await.unwrap();
    }
    assert_eq!(registry.reindex().await.unwrap(), 2);
    assert_eq!(
        tenants(registry.find_by_account("555566667777").await.unwrap()),
        ["acme/111122223333"]
    );
}

fn event(arn: &str, scope: EventScopeCode) -> OrganizationEvent {
    OrganizationEvent::builder()
        .arn(arn)
        .service("EC2")
        .event_type_code("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")
        .event_type_category(EventTypeCategory::ScheduledChange)
        .event_scope_code(scope)
        .region("eu-west-1")
        .status_code(EventStatusCode::Upcoming)
        .start_time(aws_smithy_types::DateTime::from_secs(1_705_917_600))
        .last_updated_time(aws_smithy_types::DateTime::from_secs(1_704_722_400))
        .build()
}

const ARN1: &str = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/A1";
const ARN2: &str = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/P2";

#[tokio::test]
async fn the_poll_pages_through_events_accounts_and_entities() {
    // Two pages of events (an empty middle page with a token goes on).
    let events = mock!(aws_sdk_health::Client::describe_events_for_organization)
        .match_requests(|r| r.max_results() == Some(MAX_RESULTS))
        .sequence()
        .output(|| {
            DescribeEventsForOrganizationOutput::builder()
                .events(event(ARN1, EventScopeCode::AccountSpecific))
                .next_token("t1")
                .build()
        })
        .output(|| {
            DescribeEventsForOrganizationOutput::builder()
                .next_token("t2")
                .build()
        })
        .output(|| {
            DescribeEventsForOrganizationOutput::builder()
                .events(event(ARN2, EventScopeCode::Public))
                .build()
        })
        .build();
    let accounts1 = mock!(aws_sdk_health::Client::describe_affected_accounts_for_organization)
        .match_requests(|r| r.event_arn() == Some(ARN1))
        .sequence()
        .output(|| {
            DescribeAffectedAccountsForOrganizationOutput::builder()
                .affected_accounts("111122223333")
                .next_token("a1")
                .build()
        })
        .output(|| {
            DescribeAffectedAccountsForOrganizationOutput::builder()
                .affected_accounts("222233334444")
                .build()
        })
        .build();
    let accounts2 = mock!(aws_sdk_health::Client::describe_affected_accounts_for_organization)
        .match_requests(|r| r.event_arn() == Some(ARN2))
        .then_output(|| DescribeAffectedAccountsForOrganizationOutput::builder().build());
    let details = mock!(aws_sdk_health::Client::describe_event_details_for_organization)
        .then_compute_output(|r| {
            let mut out = DescribeEventDetailsForOrganizationOutput::builder();
            for f in r.organization_event_detail_filters() {
                let mut d = OrganizationEventDetails::builder().event_description(
                    EventDescription::builder()
                        .latest_description(format!(
                            "about {}",
                            f.aws_account_id().unwrap_or("everyone")
                        ))
                        .build(),
                );
                if let Some(a) = f.aws_account_id() {
                    d = d.aws_account_id(a);
                }
                out = out.successful_set(d.build());
            }
            out.build()
        });
    let entity = |acct: &str, v: &str| {
        AffectedEntity::builder()
            .aws_account_id(acct)
            .event_arn(ARN1)
            .entity_value(v)
            .status_code(EntityStatusCode::Impaired)
            .build()
    };
    let entities = mock!(aws_sdk_health::Client::describe_affected_entities_for_organization)
        .sequence()
        .output(move || {
            DescribeAffectedEntitiesForOrganizationOutput::builder()
                .entities(entity("111122223333", "i-1"))
                .entities(entity("222233334444", "i-2"))
                .next_token("e1")
                .build()
        })
        .output(move || {
            DescribeAffectedEntitiesForOrganizationOutput::builder()
                .entities(entity("222233334444", "i-3"))
                .build()
        })
        .build();
    let client = mock_client!(
        aws_sdk_health,
        RuleMode::MatchAny,
        &[&events, &accounts1, &accounts2, &details, &entities]
    );
    let now = Utc::now();
    let Polled::Events(got) = poll_organization(&client, now - Duration::days(1), now)
        .await
        .unwrap()
    else {
        panic!("subscribed")
    };
    assert_eq!(events.num_calls(), 3);
    assert_eq!(accounts1.num_calls(), 2);
    assert_eq!(entities.num_calls(), 2);
    let summary: Vec<(Option<&str>, Vec<&str>, Option<&str>)> = got
        .iter()
        .map(|i| {
            (
                i.detail.affected_account.as_deref(),
                i.detail.entity_values().collect(),
                i.detail.description(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Some("111122223333"),
                vec!["i-1"],
                Some("about 111122223333")
            ),
            (
                Some("222233334444"),
                vec!["i-2", "i-3"],
                Some("about 222233334444")
            ),
            (None, vec![], Some("about everyone")),
        ]
    );
    let d = &got[0].detail;
    assert_eq!(d.event_type_category.as_deref(), Some("scheduledChange"));
    assert_eq!(d.event_scope_code.as_deref(), Some("ACCOUNT_SPECIFIC"));
    assert_eq!(d.status_code.as_deref(), Some("upcoming"));
    assert_eq!(
        d.last_updated_time.as_deref(),
        Some("Mon, 08 Jan 2024 14:00:00 GMT")
    );
    assert!(got[2].detail.is_public());
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let events = mock!(aws_sdk_health::Client::describe_events_for_organization)
        .sequence()
        .error(|| {
            DescribeEventsForOrganizationError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .times(2)
        .output(|| DescribeEventsForOrganizationOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_health, RuleMode::Sequential, &[&events], |c| c
        .retry_config(
            aws_sdk_health::config::retry::RetryConfig::adaptive()
                .with_max_attempts(4)
                .with_initial_backoff(std::time::Duration::from_millis(1))
        ));
    let now = Utc::now();
    let got = poll_organization(&client, now - Duration::days(1), now)
        .await
        .unwrap();
    assert_eq!(got, Polled::Events(vec![]));
    assert_eq!(events.num_calls(), 3);

    // Throttled past the attempts: an error that says so.
    let always = mock!(aws_sdk_health::Client::describe_events_for_organization)
        .sequence()
        .error(|| {
            DescribeEventsForOrganizationError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_health, RuleMode::Sequential, &[&always], |c| c
        .retry_config(
            aws_sdk_health::config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(std::time::Duration::from_millis(1))
        ));
    let e = poll_organization(&client, now - Duration::days(1), now)
        .await
        .unwrap_err();
    assert!(e.is_throttling(), "{e}");
    assert_eq!(always.num_calls(), 2);
}

#[tokio::test]
async fn no_support_plan_is_a_state_not_a_failure() {
    let refused = mock!(aws_sdk_health::Client::describe_events_for_organization).then_error(|| {
        DescribeEventsForOrganizationError::generic(
            ErrorMetadata::builder()
                .code("SubscriptionRequiredException")
                .message("The requesting account does not have a Business or Enterprise support plan")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_health, RuleMode::MatchAny, &[&refused]);
    let now = Utc::now();
    assert_eq!(
        poll_organization(&client, now - Duration::days(1), now)
            .await
            .unwrap(),
        Polled::NotSubscribed
    );
}
