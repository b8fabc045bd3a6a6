//! Every file in events/ deserialises into its aws_lambda_events type.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use std::path::Path;

fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_event_file_deserialises_into_its_type() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name.starts_with("s3-") {
            let ev: S3Event = parse(&name, &text);
            assert_eq!(ev.records.len(), 1, "{name}");
        } else if name.starts_with("sns-") {
            let ev: SnsEvent = parse(&name, &text);
            let inner: S3Event = parse(&name, &ev.records[0].sns.message);
            assert!(!inner.records.is_empty());
        } else if name.starts_with("sqs-") {
            let ev: SqsEvent = parse(&name, &text);
            assert!(!ev.records.is_empty(), "{name}");
        } else if name.starts_with("scheduled-") || name.starts_with("health-") {
            let ev: EventBridgeEvent<serde_json::Value> = parse(&name, &text);
            assert!(
                ev.source == "aws.events" || ev.source == "aws.health",
                "{name}"
            );
        } else if name.starts_with("cfn-") {
            let ev: SnsEvent = parse(&name, &text);
            let req: CloudFormationCustomResourceRequest = parse(&name, &ev.records[0].sns.message);
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
        seen += 1;
    }
    assert_eq!(seen, 11);
}
