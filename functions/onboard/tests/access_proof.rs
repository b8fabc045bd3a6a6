//! The Create event from events/ through the handler with the real access
//! proof (`curlew::access::prove` behind `AccessProver`): STS and the
//! customer's S3 mocked with aws-smithy-mocks (moto does not enforce
//! sts:ExternalId), curlew's own store on moto_server. A role created seconds
//! ago is denied three times, then proven; a role that trusts curlew without
//! the External ID condition is refused and nothing is registered.

mod common;

use aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, Object};
use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use common::*;
use curlew::access::AccessClients;
use curlew::registry::{ConnectionStatus, RegistryError};
use onboard::handler::{handle, Outcome};
use onboard::prove::AccessProver;
use onboard::response::{Answer, Status};
use std::time::Duration;
use tokio::time::Instant;

const DATA: &str = "cur/curlew-cur/20240101-20240201/curlew-cur-1.csv.gz";
const MANIFEST: &str = "cur/curlew-cur/20240101-20240201/curlew-cur-Manifest.json";
const SESSION_KEY: &str = "ASIAMOCKSESSION00001";
const SESSION_SECRET: &str = "mockSessionSecret/abcdefghijklmnop";
const SESSION_TOKEN: &str = "mockSessionTokenFwoGZXIvYXdzEXAMPLE";

fn denied(action: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code("AccessDenied")
        .message(format!(
            "User: arn:aws:sts::999988887777:assumed-role/curlew-onboard/fn is not authorized to perform: {action}"
        ))
        .build()
}

fn session() -> AssumeRoleOutput {
    let creds = aws_sdk_sts::types::Credentials::builder()
        .access_key_id(SESSION_KEY)
        .secret_access_key(SESSION_SECRET)
        .session_token(SESSION_TOKEN)
        .expiration(aws_smithy_types::DateTime::from_secs(4_000_000_000))
        .build()
        .unwrap();
    AssumeRoleOutput::builder().credentials(creds).build()
}

/// STS for role curlew-read-acme: `right` answers AssumeRole with the
/// tenant's External ID; any other External ID (or none) is denied.
fn sts_rules(external_id: &str, right: Rule) -> Vec<Rule> {
    let id = external_id.to_owned();
    let other = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |r| r.external_id() != Some(id.as_str()))
        .then_error(|| AssumeRoleError::generic(denied("sts:AssumeRole")));
    let who = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        GetCallerIdentityOutput::builder()
            .account(STACK_ACCOUNT)
            .arn("arn:aws:sts::111122223333:assumed-role/curlew-read-acme/curlew-access-proof")
            .build()
    });
    vec![right, other, who]
}

fn right_id(
    external_id: &str,
) -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_sts::operation::assume_role::AssumeRoleInput,
    AssumeRoleOutput,
    AssumeRoleError,
> {
    let id = external_id.to_owned();
    mock!(aws_sdk_sts::Client::assume_role).match_requests(move |r| {
        r.external_id() == Some(id.as_str())
            && r.role_arn() == Some("arn:aws:iam::111122223333:role/curlew-read-acme")
    })
}

fn manifest() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "assemblyId": "a1",
        "reportName": "curlew-cur",
        "billingPeriod": {"start": "20240101T000000.000Z", "end": "20240201T000000.000Z"},
        "reportKeys": [DATA],
    }))
    .unwrap()
}

fn object(key: &str, size: i64) -> Object {
    let an_hour_ago = chrono::Utc::now().timestamp() - 3600;
    Object::builder()
        .key(key)
        .size(size)
        .e_tag("\"e1\"")
        .last_modified(aws_smithy_types::DateTime::from_secs(an_hour_ago))
        .build()
}

/// The customer's bucket as a least-privilege role sees it: list and read
/// under cur/, nothing else.
fn s3_rules() -> Vec<Rule> {
    let location = mock!(aws_sdk_s3::Client::get_bucket_location).then_output(|| {
        GetBucketLocationOutput::builder()
            .location_constraint(BucketLocationConstraint::EuWest1)
            .build()
    });
    let list = mock!(aws_sdk_s3::Client::list_objects_v2)
        .match_requests(|r| r.prefix() == Some("cur/"))
        .then_output(|| {
            ListObjectsV2Output::builder()
                .contents(object(DATA, 20))
                .contents(object(MANIFEST, manifest().len() as i64))
                .build()
        });
    let list_outside = mock!(aws_sdk_s3::Client::list_objects_v2)
        .then_error(|| ListObjectsV2Error::generic(denied("s3:ListBucket")));
    let read = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| r.key().is_some_and(|k| k.starts_with("cur/")))
        .then_output(|| {
            GetObjectOutput::builder()
                .body(ByteStream::from(manifest()))
                .e_tag("\"e1\"")
                .build()
        });
    let read_outside = mock!(aws_sdk_s3::Client::get_object)
        .then_error(|| GetObjectError::generic(denied("s3:GetObject")));
    let write = mock!(aws_sdk_s3::Client::put_object)
        .then_error(|| PutObjectError::generic(denied("s3:PutObject")));
    vec![location, list, list_outside, read, read_outside, write]
}

fn prover(sts: &[Rule]) -> AccessProver {
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, sts);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &s3_rules(), |c| c
        .force_path_style(true));
    AccessProver::new(AccessClients::new(sts, s3))
}

fn remember_session() {
    for s in [SESSION_KEY, SESSION_SECRET, SESSION_TOKEN] {
        remember_secret(s);
    }
}

#[tokio::test]
async fn create_with_the_real_proof_after_three_access_denied() {
    let w = world("real-proof").await;
    remember_session();
    let id = w.external_id.expose();
    let right = right_id(id)
        .sequence()
        .error(|| AssumeRoleError::generic(denied("sts:AssumeRole")))
        .times(3)
        .output(session)
        .repeatedly()
        .build();
    let sts = sts_rules(id, right);
    let p = prover(&sts);
    let create = w.request("cfn-create-via-sns.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = handle(
        &w.deps,
        &p,
        sns_event("cfn-create-via-sns.json", &create),
        deadline,
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        vec![Outcome::Answered {
            status: Status::Success,
            repeated: false,
            delivered: true
        }]
    );
    assert_eq!(sts[0].num_calls(), 4, "three denials, then the role");
    let got = w.stub.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("content-type"), Some(""));
    let a: Answer = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(a.status, Status::Success);
    assert_eq!(a.data["ConnectionId"], "acme/111122223333");
    let (c, _) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::Connected);
    assert_eq!(c.report.as_deref(), Some("curlew-cur"));
    assert_no_secrets_logged();
}

#[tokio::test]
async fn a_role_trusting_curlew_without_the_external_id_is_refused() {
    let w = world("deputy").await;
    remember_session();
    // The trust policy names curlew's principal but no sts:ExternalId condition.
    let any = mock!(aws_sdk_sts::Client::assume_role).then_output(session);
    let who = sts_rules(
        w.external_id.expose(),
        right_id("unused").then_output(session),
    )
    .remove(2);
    let p = prover(&[any, who]);
    let create = w.request("cfn-create-via-sns.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = handle(
        &w.deps,
        &p,
        sns_event("cfn-create-via-sns.json", &create),
        deadline,
    )
    .await
    .unwrap();
    assert!(matches!(
        out[0],
        Outcome::Answered {
            status: Status::Failed,
            delivered: true,
            ..
        }
    ));
    let a: Answer = serde_json::from_slice(&w.stub.requests()[0].body).unwrap();
    assert!(a.reason.unwrap().contains("confused deputy"));
    assert!(matches!(
        w.deps.registry().get("acme", STACK_ACCOUNT).await,
        Err(RegistryError::Missing { .. })
    ));
    assert_no_secrets_logged();
}
