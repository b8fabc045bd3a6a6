//! Every file of `events/` (one workspace test, as lambda-events does for its
//! fixtures): deserialises into its aws_lambda_events type, serialises, and
//! deserialises again to an equal value; what it wraps (an S3 event in SNS,
//! a CloudFormation request, a part job) parses too.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use curlew::health::HealthDetail;
use curlew_testkit::events::{names, text};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Parse, serialise, parse again: the two values must be equal.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(name: &str, text: &str) -> T {
    let first: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = serde_json::to_string(&first).unwrap();
    let second: T = serde_json::from_str(&again).unwrap_or_else(|e| panic!("{name} (again): {e}"));
    assert_eq!(first, second, "{name} does not round-trip");
    first
}

#[test]
fn every_event_file_round_trips_through_its_type() {
    let all = names();
    for name in &all {
        let text = text(name);
        if name.starts_with("s3-") {
            let ev: S3Event = round_trip(name, &text);
            assert_eq!(ev.records.len(), 1, "{name}");
        } else if name.starts_with("sns-") {
            let ev: SnsEvent = round_trip(name, &text);
            let inner: S3Event = round_trip(name, &ev.records[0].sns.message);
            assert!(!inner.records.is_empty(), "{name}");
        } else if name.starts_with("sqs-") {
            let ev: SqsEvent = round_trip(name, &text);
            assert!(!ev.records.is_empty(), "{name}");
            if name.contains("parts") {
                // The first record is a real part job of the current wire version.
                let body = ev.records[0].body.as_deref().unwrap();
                let inner = curlew_testkit::events::sns_message(body);
                curlew::pipeline::PartJob::from_json(&inner)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        } else if name.starts_with("scheduled-") {
            let ev: EventBridgeEvent<serde_json::Value> = round_trip(name, &text);
            assert_eq!(ev.source, "aws.events", "{name}");
        } else if name.starts_with("health-") {
            // curlew's own detail type, every field kept through the round trip.
            let ev: EventBridgeEvent<HealthDetail> = round_trip(name, &text);
            assert_eq!(ev.source, "aws.health", "{name}");
            assert!(
                ev.detail_type == "AWS Health Event" || ev.detail_type == "AWS Health Abuse Event",
                "{name}"
            );
            assert!(ev.detail.event_arn.is_some(), "{name}");
            assert!(ev.detail.communication_id.is_some(), "{name}");
            let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                serde_json::to_value(&ev.detail).unwrap(),
                raw["detail"],
                "{name}: a field of the detail was dropped"
            );
        } else if name.starts_with("cfn-") {
            let ev: SnsEvent = round_trip(name, &text);
            let req: CloudFormationCustomResourceRequest =
                round_trip(name, &ev.records[0].sns.message);
            let kind = match req {
                CloudFormationCustomResourceRequest::Create(_) => "create",
                CloudFormationCustomResourceRequest::Update(_) => "update",
                CloudFormationCustomResourceRequest::Delete(_) => "delete",
                _ => "other",
            };
            assert!(name.contains(kind), "{name} holds a {kind} request");
        } else {
            panic!("{name}: no type known for this file; name it s3-, sns-, sqs-, scheduled-, health- or cfn-");
        }
    }
    assert_eq!(all.len(), 17, "{all:?}");
}
