//! The Create event from events/ through the handler with the real access
//! proof (`curlew::access::prove` behind `AccessProver`): STS and the
//! customer's S3 mocked with aws-smithy-mocks (moto does not enforce
//! sts:ExternalId), curlew's own store on moto_server. A role created seconds
//! ago is denied three times, then proven; a role that trusts curlew without
//! the External ID condition is refused and nothing is registered.

mod common;

use curlew_testkit::aws_mocks;

use aws_mocks::{
    denied, mock_clients, s3_rules, session, SESSION_KEY, SESSION_SECRET, SESSION_TOKEN,
};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_mocks::{mock, Rule};
use common::*;
use curlew::registry::{ConnectionStatus, RegistryError};
use onboard::handler::{handle, Outcome};
use onboard::prove::AccessProver;
use onboard::response::{Answer, Status};
use std::time::Duration;
use tokio::time::Instant;

/// The role the customer template creates for tenant acme.
const ROLE: &str = "arn:aws:iam::111122223333:role/curlew-read-acme";

fn prover(sts: &[Rule]) -> AccessProver {
    AccessProver::new(mock_clients(sts, &s3_rules(false)))
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
    let right = aws_mocks::right_id(id, ROLE)
        .sequence()
        .error(|| AssumeRoleError::generic(denied("sts:AssumeRole")))
        .times(3)
        .output(session)
        .repeatedly()
        .build();
    let sts = aws_mocks::sts_rules(id, ROLE, right);
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
    let who = aws_mocks::sts_rules(
        w.external_id.expose(),
        ROLE,
        aws_mocks::right_id("unused", ROLE).then_output(session),
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
