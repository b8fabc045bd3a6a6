//! The access proof against mocked STS and S3 (aws-smithy-mocks): what moto
//! cannot show. moto ignores `sts:ExternalId` conditions in trust policies,
//! so the trust behaviour (no ID, wrong ID, right ID, a role without the
//! condition, IAM eventual consistency, throttling) is tested here; the S3
//! answers are mocked as a least-privilege role would get them from AWS
//! (outside the prefix and writes denied; a KMS-encrypted object refused).

use curlew_testkit::aws_mocks;

use aws_mocks::{
    denied, mock_clients as clients, s3_rules, session, ACCOUNT, SESSION_KEY, SESSION_SECRET,
    SESSION_TOKEN,
};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use curlew::access::{
    prove, prove_with_retry, render, AccessKeys, AccessReport, AccessTarget, Cause, Outcome,
    RetryPolicy,
};
use curlew::onboard::ExternalId;
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::111122223333:role/curlew-reader";
const BUCKET: &str = "acme-billing";

fn external_id() -> ExternalId {
    ExternalId::from_stored("Xk2p9QvT7mWc4RzL8nYb3HsJ6dFa1GeUq5Vt0Oi".into())
}

/// AssumeRole of [`ROLE`] with the right External ID answers from `right`;
/// anything else is denied.
fn sts_rules(right: Rule) -> Vec<Rule> {
    aws_mocks::sts_rules(external_id().expose(), ROLE, right)
}

/// A rule for AssumeRole of [`ROLE`] with the right External ID only.
fn right_id() -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_sts::operation::assume_role::AssumeRoleInput,
    aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
    AssumeRoleError,
> {
    aws_mocks::right_id(external_id().expose(), ROLE)
}

fn target() -> AccessTarget {
    AccessTarget {
        role_arn: Some(ROLE.into()),
        external_id: Some(external_id()),
        expected_account: Some(ACCOUNT.into()),
        bucket: BUCKET.into(),
        prefix: "cur".into(),
        report: Some("curlew-cur".into()),
        ..AccessTarget::default()
    }
}

fn outcome(r: &AccessReport, id: &str) -> Outcome {
    r.items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id} in {r:#?}"))
        .outcome
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        total: Duration::from_secs(10),
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

/// Neither rendering shows the External ID, keys or session credentials.
fn assert_no_secrets(r: &AccessReport, secrets: &[&str]) {
    for text in [
        render::table(r),
        render::json(r),
        r.summary(),
        format!("{r:?}"),
    ] {
        for s in secrets {
            assert!(!text.contains(s), "a secret leaked into:\n{text}");
        }
    }
}

#[tokio::test]
async fn role_requiring_the_external_id_passes_item_by_item() {
    let right = right_id().then_output(session);
    let sts = sts_rules(right);
    let c = clients(&sts, &s3_rules(false));
    let r = prove(&c, &target()).await;
    let table = render::table(&r);
    for id in [
        "assume",
        "assume-without-id",
        "assume-wrong-id",
        "account",
        "bucket-region",
        "list-prefix",
        "read-prefix",
        "list-outside",
        "read-outside",
        "write-probe",
        "report",
    ] {
        assert_eq!(outcome(&r, id), Outcome::Pass, "{id}:\n{table}");
    }
    assert!(r.passed() && !r.retryable(), "{table}");
    // One AssumeRole with the right id; the refused ones: no id, a fresh random one.
    assert_eq!(sts[0].num_calls(), 1);
    assert_eq!(sts[1].num_calls(), 2);
    assert_eq!(r.region.as_deref(), Some("eu-west-1"));
    assert_eq!(r.account.as_deref(), Some(ACCOUNT));
    let found = &r.reports[0];
    assert_eq!(
        (
            found.kind.as_str(),
            found.format.as_str(),
            found.compression.as_str()
        ),
        ("CUR1", "CSV", "gzip")
    );
    assert_eq!(found.versioning, "overwrite");
    assert_eq!(found.newest_period.as_deref(), Some("2024-01"));
    assert!((1..=3).contains(&found.age_hours), "{found:?}");
    assert!(r.summary().starts_with(
        "access proven for s3://acme-billing/cur/ (eu-west-1); CUR1 curlew-cur newest 2024-01"
    ));
    assert_no_secrets(
        &r,
        &[
            external_id().expose(),
            SESSION_KEY,
            SESSION_SECRET,
            SESSION_TOKEN,
        ],
    );
}

#[tokio::test]
async fn a_role_without_the_external_id_condition_is_refused_as_a_confused_deputy() {
    // The trust policy names curlew's principal but no sts:ExternalId condition.
    let any = mock!(aws_sdk_sts::Client::assume_role).then_output(session);
    let who = sts_rules(right_id().then_output(session)).remove(2);
    let c = clients(&[any, who], &s3_rules(false));
    let r = prove(&c, &target()).await;
    for id in ["assume-without-id", "assume-wrong-id"] {
        let i = r.items.iter().find(|i| i.id == id).unwrap();
        assert_eq!(i.outcome, Outcome::Fail);
        assert_eq!(i.cause, Some(Cause::ConfusedDeputy));
        assert!(i.detail.starts_with(
            "confused deputy: the role's trust policy does not require the External ID"
        ));
    }
    assert!(!r.passed() && !r.retryable());
    assert!(r
        .summary()
        .starts_with("access check failed: assume-without-id: confused deputy"));
}

#[tokio::test]
async fn access_denied_three_times_then_success_is_retried_until_proven() {
    // A role created seconds ago: IAM denies the assume until it propagates.
    let right = right_id()
        .sequence()
        .error(|| AssumeRoleError::generic(denied("sts:AssumeRole")))
        .times(3)
        .output(session)
        .repeatedly()
        .build();
    let sts = sts_rules(right);
    let c = clients(&sts, &s3_rules(false));

    let r = prove_with_retry(&c, &target(), &fast()).await;
    assert!(r.passed(), "{}", render::table(&r));
    assert_eq!(r.attempts, 4, "three denials, then success");
    assert_eq!(sts[0].num_calls(), 4);
}

#[tokio::test]
async fn retry_gives_up_at_the_deadline() {
    let right = right_id().then_error(|| AssumeRoleError::generic(denied("sts:AssumeRole")));
    let c = clients(&sts_rules(right), &s3_rules(false));
    let policy = RetryPolicy {
        total: Duration::from_millis(50),
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    let r = prove_with_retry(&c, &target(), &policy).await;
    assert!(!r.passed() && r.retryable());
    assert_eq!(r.items[0].cause, Some(Cause::AccessDenied));
    // The confused-deputy probes and the bucket wait until the role can be assumed at all.
    assert_eq!(outcome(&r, "assume-without-id"), Outcome::Skip);
    assert_eq!(outcome(&r, "list-prefix"), Outcome::Skip);
    assert!((2..=5).contains(&r.attempts), "attempts {}", r.attempts);
}

#[tokio::test]
async fn throttling_is_retried() {
    let throttled = || {
        AssumeRoleError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    };
    let right = right_id()
        .sequence()
        .error(throttled)
        .output(session)
        .repeatedly()
        .build();
    let sts = sts_rules(right);
    let c = clients(&sts, &s3_rules(false));
    let r = prove_with_retry(&c, &target(), &fast()).await;
    assert!(r.passed(), "{}", render::table(&r));
    // The SDK's standard retry absorbs the throttle inside the one AssumeRole call.
    assert_eq!(r.attempts, 1);
    assert_eq!(sts[0].num_calls(), 2);
}

#[tokio::test]
async fn a_kms_refusal_is_named_as_kms() {
    let sts = sts_rules(right_id().then_output(session));
    let c = clients(&sts, &s3_rules(true));
    let r = prove(&c, &target()).await;
    let read = r.items.iter().find(|i| i.id == "read-prefix").unwrap();
    assert_eq!(
        (read.outcome, read.cause),
        (Outcome::Fail, Some(Cause::Kms))
    );
    assert!(read.detail.contains("kms:Decrypt"), "{}", read.detail);
    assert!(!r.passed() && !r.retryable());
}

#[tokio::test]
async fn access_keys_mode_never_shows_the_keys() {
    let sts = sts_rules(right_id().then_output(session));
    let c = clients(&sts, &s3_rules(false));
    let keys = AccessKeys {
        access_key_id: "AKIAMOCKUSERKEY00001".into(),
        secret_access_key: "userSecret/0123456789abcdefghij".into(),
    };
    let t = AccessTarget {
        role_arn: None,
        external_id: None,
        access_keys: Some(keys.clone()),
        ..target()
    };
    let r = prove(&c, &t).await;
    assert_eq!(outcome(&r, "account"), Outcome::Pass);
    assert!(r.items.iter().all(|i| !i.id.starts_with("assume")));
    assert!(r.passed(), "{}", render::table(&r));
    assert_eq!(
        sts[0].num_calls() + sts[1].num_calls(),
        0,
        "no role to assume"
    );
    assert_no_secrets(&r, &[&keys.access_key_id, &keys.secret_access_key]);
}

#[tokio::test]
async fn a_stack_in_another_account_fails_the_account_item() {
    let sts = sts_rules(right_id().then_output(session));
    let c = clients(&sts, &s3_rules(false));
    let t = AccessTarget {
        expected_account: Some("444455556666".into()),
        ..target()
    };
    let r = prove(&c, &t).await;
    let acct = r.items.iter().find(|i| i.id == "account").unwrap();
    assert_eq!(
        (acct.outcome, acct.cause),
        (Outcome::Fail, Some(Cause::AccountMismatch))
    );
    assert!(
        acct.detail.contains("expected 444455556666"),
        "{}",
        acct.detail
    );
}

/// Ingestion reaches a role-mode connection's bucket with the session of the
/// role assumed with the tenant's External ID (read from the onboarding
/// store), never with curlew's own credentials; a tenant without an External
/// ID gets no session at all.
#[tokio::test]
async fn ingestion_reads_through_the_role_assumed_with_the_tenants_external_id() {
    use curlew::access::{source_credentials, SessionError, SessionPurpose};
    use curlew::onboard::{OnboardingHints, Onboardings};
    use curlew::registry::{AccessMode, Connection};
    use curlew::store::Store;

    let dir = tempfile::tempdir().unwrap();
    let own = Store::local(dir.path());
    let started = Onboardings::new(own.clone(), "svc")
        .begin("acme", OnboardingHints::default())
        .await
        .unwrap();
    // STS grants a session only for this tenant's External ID.
    let id = started.external_id.expose().to_owned();
    let right = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |r| {
            r.external_id() == Some(id.as_str()) && r.role_session_name() == Some("curlew-ingest")
        })
        .then_output(session);
    let other = mock!(aws_sdk_sts::Client::assume_role)
        .then_error(|| AssumeRoleError::generic(denied("sts:AssumeRole")));
    let c = clients(&[right, other], &[]);
    let mut conn = Connection::new("acme", ACCOUNT, AccessMode::CrossAccountRole, BUCKET, "cur");
    conn.role_arn = Some(ROLE.into());
    let creds = source_credentials(&c, &conn, &own, "svc", SessionPurpose::Ingest)
        .await
        .unwrap()
        .expect("a role session, not curlew's own credentials");
    assert_eq!(creds.access_key_id(), SESSION_KEY);
    assert_eq!(creds.session_token(), Some(SESSION_TOKEN));

    // Another tenant's connection with no External ID: refused before any call.
    conn.tenant = "globex".into();
    let e = source_credentials(&c, &conn, &own, "svc", SessionPurpose::Ingest)
        .await
        .unwrap_err();
    assert!(
        matches!(e, SessionError::Onboarding { .. }) && !e.is_retryable(),
        "{e}"
    );
    // A denied assume is named, not retried.
    let c = clients(
        &[mock!(aws_sdk_sts::Client::assume_role)
            .then_error(|| AssumeRoleError::generic(denied("sts:AssumeRole")))],
        &[],
    );
    conn.tenant = "acme".into();
    let e = source_credentials(&c, &conn, &own, "svc", SessionPurpose::Ingest)
        .await
        .unwrap_err();
    assert!(
        matches!(e, SessionError::Assume { .. }) && !e.is_retryable(),
        "{e}"
    );
    assert!(!e.to_string().contains(started.external_id.expose()));
}

/// The production trust: curlew's own IAM refuses AssumeRole without an
/// External ID, so the no-ID probe is always denied, whatever the customer's
/// trust policy says; the wrong-ID probe is the one that tests it. A trust
/// policy that lets any External ID through is refused on that probe alone.
#[tokio::test]
async fn no_id_denied_but_a_wrong_id_allowed_is_still_a_confused_deputy() {
    let id = external_id().expose().to_owned();
    let no_id = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id().is_none())
        .then_error(|| AssumeRoleError::generic(denied("sts:AssumeRole")));
    let any_id = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |r| r.external_id().is_some_and(|x| x != id))
        .then_output(session);
    let who = sts_rules(right_id().then_output(session)).remove(2);
    let right = right_id().then_output(session);
    let c = clients(&[right, no_id, any_id, who], &s3_rules(false));
    let r = prove(&c, &target()).await;
    let table = render::table(&r);
    assert_eq!(outcome(&r, "assume"), Outcome::Pass, "{table}");
    assert_eq!(outcome(&r, "assume-without-id"), Outcome::Pass, "{table}");
    let wrong = r.items.iter().find(|i| i.id == "assume-wrong-id").unwrap();
    assert_eq!(wrong.outcome, Outcome::Fail, "{table}");
    assert_eq!(wrong.cause, Some(Cause::ConfusedDeputy));
    assert!(!r.passed() && !r.retryable(), "{table}");
    assert!(
        r.summary().contains("assume-wrong-id: confused deputy"),
        "{}",
        r.summary()
    );
}

/// Every session of a customer's role carries an inline session policy
/// scoped to the job (the connection's bucket and prefix; the sweep adds the
/// Organizations and billing-API reads) and lasts 900 s, so a role granted
/// more than the read policy still yields a session that reads one prefix.
#[tokio::test]
async fn a_role_session_is_scoped_to_the_connection_and_the_job() {
    use curlew::access::{source_credentials, SessionPurpose};
    use curlew::onboard::policy::allowed_actions;
    use curlew::onboard::{OnboardingHints, Onboardings};
    use curlew::registry::{AccessMode, Connection};
    use curlew::store::Store;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let own = Store::local(dir.path());
    Onboardings::new(own.clone(), "svc")
        .begin("acme", OnboardingHints::default())
        .await
        .unwrap();
    /// Session name, DurationSeconds and Policy of each AssumeRole sent.
    type Sent = Vec<(String, Option<i32>, Option<String>)>;
    let sent: Arc<Mutex<Sent>> = Arc::default();
    let seen = sent.clone();
    let any = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |r| {
            seen.lock().unwrap().push((
                r.role_session_name().unwrap_or_default().to_owned(),
                r.duration_seconds(),
                r.policy().map(str::to_owned),
            ));
            true
        })
        .then_output(session);
    let c = clients(&[any], &[]);
    let mut conn = Connection::new(
        "acme",
        ACCOUNT,
        AccessMode::CrossAccountRole,
        BUCKET,
        "cur/",
    );
    conn.role_arn = Some("arn:aws-us-gov:iam::111122223333:role/curlew-read-acme".into());
    for purpose in [SessionPurpose::Ingest, SessionPurpose::Sweep] {
        source_credentials(&c, &conn, &own, "svc", purpose)
            .await
            .unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let policy = |i: usize| -> serde_json::Value {
        serde_json::from_str(sent[i].2.as_deref().expect("a session policy")).unwrap()
    };
    let (ingest, sweep) = (policy(0), policy(1));
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1),
        ("curlew-ingest", Some(900))
    );
    assert_eq!((sent[1].0.as_str(), sent[1].1), ("curlew-sweep", Some(900)));
    assert_eq!(
        allowed_actions(&ingest),
        [
            "kms:Decrypt",
            "s3:GetBucketLocation",
            "s3:GetObject",
            "s3:ListBucket"
        ]
    );
    let st = &ingest["Statement"];
    // The role's partition, the connection's bucket and prefix.
    assert_eq!(st[0]["Resource"], "arn:aws-us-gov:s3:::acme-billing/cur/*");
    assert_eq!(st[1]["Resource"], "arn:aws-us-gov:s3:::acme-billing");
    assert_eq!(
        st[1]["Condition"]["StringLike"]["s3:prefix"],
        serde_json::json!(["cur/", "cur/*"])
    );
    assert_eq!(
        st[3]["Condition"]["StringLike"]["kms:ViaService"],
        "s3.*.amazonaws.com*"
    );
    let sweep_actions = allowed_actions(&sweep);
    for a in [
        "organizations:List*",
        "cur:DescribeReportDefinitions",
        "bcm-data-exports:ListExports",
        "bcm-data-exports:GetExport",
    ] {
        assert!(
            sweep_actions.iter().any(|x| x == a),
            "{a} in {sweep_actions:?}"
        );
        assert!(!allowed_actions(&ingest).iter().any(|x| x == a));
    }
    // AWS caps a packed session policy at 2,048 characters.
    assert!(sent[1].2.as_ref().unwrap().len() < 2048);
}

/// The read policy attached seconds after the role's trust: the assume
/// works, the list at the prefix is denied twice, then allowed. Retried
/// within the same budget as a denied assume, then proven.
#[tokio::test]
async fn a_list_denied_right_after_the_assume_is_retried_until_proven() {
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
    let denied_twice = mock!(aws_sdk_s3::Client::list_objects_v2)
        .match_requests(|r| r.prefix() == Some("cur/"))
        .sequence()
        .error(|| ListObjectsV2Error::generic(denied("s3:ListBucket")))
        .times(2)
        .build();
    let mut s3 = vec![denied_twice];
    s3.extend(s3_rules(false));
    let sts = sts_rules(right_id().then_output(session));
    let c = clients(&sts, &s3);
    let r = prove_with_retry(&c, &target(), &fast()).await;
    assert!(r.passed(), "{}", render::table(&r));
    assert_eq!(r.attempts, 3, "two denials, then proven");
}
