//! Every CloudFormation event in events/ deserialises (SNS event -> custom
//! resource request), names a curlew connection's properties, and carries a
//! ResponseURL the production policy answers.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use aws_lambda_events::event::sns::SnsEvent;
use onboard::request::{Kind, Props, Request};
use onboard::response::ResponsePolicy;
use std::path::Path;

#[test]
fn every_cfn_event_is_a_request_the_function_answers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut kinds = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("cfn-") {
            continue;
        }
        let ev: SnsEvent = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ev.records.len(), 1, "{name}");
        let msg = &ev.records[0].sns.message;
        let _: CloudFormationCustomResourceRequest =
            serde_json::from_str(msg).unwrap_or_else(|e| panic!("{name}: {e}"));
        let req = Request::parse(msg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(name.contains(&req.kind.name().to_lowercase()), "{name}");
        let url = ResponsePolicy::aws()
            .check(&req)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            url.origin(),
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com"
        );
        let props = Props::from_value(&req.properties, &req.stack)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(props.role_account, req.stack.account, "{name}");
        if let Kind::Update { physical_id } | Kind::Delete { physical_id } = &req.kind {
            assert_eq!(physical_id, "curlew:acme:111122223333", "{name}");
        }
        kinds.push(req.kind.name());
    }
    kinds.sort();
    assert_eq!(kinds, ["Create", "Delete", "Update"]);
}
