//! The handler driven by the CloudFormation events in events/, against
//! curlew's store on moto_server and a 127.0.0.1 stub standing in for the
//! response bucket; the access proof is scripted. Every test ends by
//! searching everything logged so far for secrets.

mod common;

use common::stub::Received;
use common::*;
use curlew::registry::{ConnectionStatus, RegistryError};
use onboard::handler::{handle, Outcome};
use onboard::response::{Answer, Status, MAX_BODY};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// The answer in a PUT the stub received, checked for form.
fn answer_in(r: &Received) -> Answer {
    assert_eq!(r.method, "PUT");
    assert_eq!(r.header("content-type"), Some(""), "an empty Content-Type");
    assert!(r.body.len() <= MAX_BODY, "{} bytes", r.body.len());
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    serde_json::from_slice(&r.body).expect("the body is JSON")
}

async fn run(w: &World, p: &ScriptedProver, file: &str, req: &Value) -> Outcome {
    let out = handle(&w.deps, p, sns_event(file, req), soon())
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    out.into_iter().next().unwrap()
}

fn answered(status: Status, repeated: bool) -> Outcome {
    Outcome::Answered {
        status,
        repeated,
        delivered: true,
    }
}

#[tokio::test]
async fn create_update_delete_from_the_events() {
    let w = world("lifecycle").await;
    let prover = ScriptedProver::passing();
    let create = w.request("cfn-create-via-sns.json");

    // Create: proven, registered, one well-formed SUCCESS answer.
    let out = run(&w, &prover, "cfn-create-via-sns.json", &create).await;
    assert_eq!(out, answered(Status::Success, false));
    let got = w.stub.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].target,
        format!("{}?{PRESIGNED_QUERY}", response_path(&create))
    );
    let a = answer_in(&got[0]);
    assert_eq!(a.status, Status::Success);
    assert_eq!(a.physical_resource_id, "curlew:acme:111122223333");
    assert_eq!(a.stack_id, create["StackId"].as_str().unwrap());
    assert_eq!(a.request_id, create["RequestId"].as_str().unwrap());
    assert_eq!(a.logical_resource_id, "CurlewConnection");
    assert_eq!(a.data["ConnectionId"], "acme/111122223333");
    assert_eq!(a.data["Status"], "connected");
    let seen = prover.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].external_id, w.external_id,
        "the tenant's own External ID"
    );
    assert_eq!(seen[0].expected_account, STACK_ACCOUNT);
    assert_eq!(
        seen[0].role_arn,
        "arn:aws:iam::111122223333:role/curlew-read-acme"
    );
    let (c, _) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::Connected);
    assert_eq!(c.payer_account, STACK_ACCOUNT);
    assert_eq!(
        c.role_arn.as_deref(),
        Some("arn:aws:iam::111122223333:role/curlew-read-acme")
    );
    assert_eq!(
        (c.bucket.as_str(), c.prefix.as_str()),
        ("example-billing-bucket", "cur/")
    );
    assert_eq!(c.report.as_deref(), Some("curlew-cur"));

    // The same request again: the same answer, nothing else.
    let out = run(&w, &prover, "cfn-create-via-sns.json", &create).await;
    assert_eq!(out, answered(Status::Success, true));
    let got = w.stub.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body, got[0].body);
    assert_eq!(prover.calls(), 1, "a repeat proves nothing again");
    let (again, _) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    assert_eq!(again.version, c.version, "a repeat writes nothing");

    // Update: re-proven, updated, the same PhysicalResourceId.
    let mut update = w.request("cfn-update-via-sns.json");
    update["ResourceProperties"]["Prefix"] = "cur2/".into();
    let out = run(&w, &prover, "cfn-update-via-sns.json", &update).await;
    assert_eq!(out, answered(Status::Success, false));
    let a = answer_in(&w.stub.requests()[2]);
    assert_eq!(a.physical_resource_id, "curlew:acme:111122223333");
    assert_eq!(prover.calls(), 2);
    let (c, _) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    assert_eq!(c.prefix, "cur2/");
    assert_eq!(c.version, again.version + 1);

    // Delete: SUCCESS, the connection disconnected, its document kept.
    let delete = w.request("cfn-delete-via-sns.json");
    let out = run(&w, &prover, "cfn-delete-via-sns.json", &delete).await;
    assert_eq!(out, answered(Status::Success, false));
    let a = answer_in(&w.stub.requests()[3]);
    assert_eq!(a.physical_resource_id, "curlew:acme:111122223333");
    let (c, _) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::Disconnected);
    assert_eq!(c.bucket, "example-billing-bucket");
    assert_eq!(w.stub.requests().len(), 4, "one answer per request");
    // The token has served its stack: retired, and gone a week on.
    let stack = delete["StackId"].as_str().unwrap();
    let by = curlew::onboard::Presenter {
        stack_id: stack,
        request_id: "check",
        account: STACK_ACCOUNT,
    };
    let token = w.onboardings.check("acme", &w.token, by).await.unwrap();
    assert!(token.retired_at.is_some(), "{token:?}");
    let own = w.deps.store.clone();
    let week_on = chrono::Utc::now() + chrono::Duration::days(8);
    assert_eq!(
        curlew::gc::gc_onboarding(&own, "curlew", week_on)
            .await
            .unwrap(),
        1
    );
    assert_no_secrets_logged();
}

#[tokio::test]
async fn delete_of_an_unknown_connection_succeeds() {
    let w = world("unknown").await;
    let prover = ScriptedProver::passing();
    let delete = w.request("cfn-delete-via-sns.json");
    let out = run(&w, &prover, "cfn-delete-via-sns.json", &delete).await;
    assert_eq!(out, answered(Status::Success, false));
    let got = w.stub.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(answer_in(&got[0]).status, Status::Success);
    // A resource that never was a connection (a rejected Create's id), too.
    let mut other = w.request("cfn-delete-via-sns.json");
    other["RequestId"] = "another-request".into();
    other["PhysicalResourceId"] = "curlew-rejected:8f3a1f2e".into();
    answer_to(&mut other, w.stub.port());
    let out = run(&w, &prover, "cfn-delete-via-sns.json", &other).await;
    assert_eq!(out, answered(Status::Success, false));
    assert!(matches!(
        w.deps.registry().get("acme", STACK_ACCOUNT).await,
        Err(RegistryError::Missing { .. })
    ));
    assert_eq!(prover.calls(), 0);
    assert_no_secrets_logged();
}

#[tokio::test]
async fn update_keeps_the_physical_resource_id_even_when_it_fails() {
    let w = world("update").await;
    let prover = ScriptedProver::new(|n| {
        Some(if n == 0 {
            pass()
        } else {
            denied(false, "s3:ListBucket at cur/: AccessDenied")
        })
    });
    let create = w.request("cfn-create-via-sns.json");
    run(&w, &prover, "cfn-create-via-sns.json", &create).await;
    let (before, etag) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    let mut update = w.request("cfn-update-via-sns.json");
    update["ResourceProperties"]["BucketName"] = "another-bucket".into();
    let out = run(&w, &prover, "cfn-update-via-sns.json", &update).await;
    assert_eq!(out, answered(Status::Failed, false));
    let a = answer_in(&w.stub.requests()[1]);
    assert_eq!(a.physical_resource_id, "curlew:acme:111122223333");
    assert!(a.reason.unwrap().contains("AccessDenied"));
    let (after, etag2) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    assert_eq!(
        (after, etag2),
        (before, etag),
        "a failed Update changes nothing"
    );
    // An Update naming another tenant cannot move the connection.
    let mut moved = w.request("cfn-update-via-sns.json");
    moved["RequestId"] = "update-2".into();
    moved["ResourceProperties"]["TenantId"] = "globex".into();
    answer_to(&mut moved, w.stub.port());
    let out = run(&w, &prover, "cfn-update-via-sns.json", &moved).await;
    assert_eq!(out, answered(Status::Failed, false));
    assert_eq!(
        answer_in(&w.stub.requests()[2]).physical_resource_id,
        "curlew:acme:111122223333"
    );
    assert_no_secrets_logged();
}

#[tokio::test]
async fn forged_requests_change_nothing_and_fail() {
    let w = world("forged").await;
    let prover = ScriptedProver::passing();
    let registry = w.deps.registry();
    let missing = || async {
        matches!(
            registry.get("acme", STACK_ACCOUNT).await,
            Err(RegistryError::Missing { .. })
        )
    };

    // Stack in account A, role in account B.
    let mut cross = w.request("cfn-create-via-sns.json");
    cross["RequestId"] = "forged-1".into();
    cross["ResourceProperties"]["RoleArn"] =
        "arn:aws:iam::444455556666:role/curlew-read-acme".into();
    answer_to(&mut cross, w.stub.port());
    assert_eq!(
        run(&w, &prover, "cfn-create-via-sns.json", &cross).await,
        answered(Status::Failed, false)
    );
    let a = answer_in(&w.stub.requests()[0]);
    assert!(a.reason.unwrap().contains("444455556666"));
    assert!(missing().await);

    // A token the tenant never had.
    let mut unknown = w.request("cfn-create-via-sns.json");
    unknown["RequestId"] = "forged-2".into();
    unknown["ResourceProperties"]["OnboardingToken"] =
        "cwt_ForgedForgedForgedForgedForgedForged1234".into();
    answer_to(&mut unknown, w.stub.port());
    assert_eq!(
        run(&w, &prover, "cfn-create-via-sns.json", &unknown).await,
        answered(Status::Failed, false)
    );
    assert!(answer_in(&w.stub.requests()[1])
        .reason
        .unwrap()
        .contains("not a pending onboarding"));
    assert!(missing().await);
    // Another tenant's name with this tenant's token.
    let mut other_tenant = w.request("cfn-create-via-sns.json");
    other_tenant["RequestId"] = "forged-3".into();
    other_tenant["ResourceProperties"]["TenantId"] = "globex".into();
    answer_to(&mut other_tenant, w.stub.port());
    assert_eq!(
        run(&w, &prover, "cfn-create-via-sns.json", &other_tenant).await,
        answered(Status::Failed, false)
    );
    assert_eq!(prover.calls(), 0, "nothing forged reaches the proof");
    assert!(missing().await);

    // The real stack connects; then another stack presents the same token.
    let create = w.request("cfn-create-via-sns.json");
    assert_eq!(
        run(&w, &prover, "cfn-create-via-sns.json", &create).await,
        answered(Status::Success, false)
    );
    let (before, etag) = registry.get("acme", STACK_ACCOUNT).await.unwrap();
    let thief_stack = stack_id("thief", STACK_ACCOUNT);
    for (file, id) in [
        ("cfn-create-via-sns.json", "thief-create"),
        ("cfn-update-via-sns.json", "thief-update"),
        ("cfn-delete-via-sns.json", "thief-delete"),
    ] {
        let mut r = w.request(file);
        r["StackId"] = thief_stack.clone().into();
        r["RequestId"] = id.into();
        r["ResourceProperties"]["BucketName"] = "thief-bucket".into();
        answer_to(&mut r, w.stub.port());
        let out = run(&w, &prover, file, &r).await;
        // Delete always succeeds, and does nothing for a stack that does not own the connection.
        let want = if file.contains("delete") {
            Status::Success
        } else {
            Status::Failed
        };
        assert_eq!(out, answered(want, false), "{file}");
        let a = answer_in(w.stub.requests().last().unwrap());
        if want == Status::Failed {
            assert!(a.reason.unwrap().contains("already used"), "{file}");
        }
        let (after, etag2) = registry.get("acme", STACK_ACCOUNT).await.unwrap();
        assert_eq!(
            (&after, &etag2),
            (&before, &etag),
            "{file} changed the connection"
        );
    }
    // A Delete from another account names a connection it cannot touch.
    let mut foreign = w.request("cfn-delete-via-sns.json");
    foreign["StackId"] = stack_id("x", "444455556666").into();
    foreign["RequestId"] = "foreign-delete".into();
    answer_to(&mut foreign, w.stub.port());
    assert_eq!(
        run(&w, &prover, "cfn-delete-via-sns.json", &foreign).await,
        answered(Status::Success, false)
    );
    assert_eq!(registry.get("acme", STACK_ACCOUNT).await.unwrap().1, etag);
    assert_eq!(prover.calls(), 1);
    assert_no_secrets_logged();
}

#[tokio::test]
async fn access_denied_is_retried_then_a_failed_proof_answers_failed_within_4096_bytes() {
    let w = world("proof").await;
    // AccessDenied three times (the role is seconds old), then proven.
    let flaky = ScriptedProver::new(|n| {
        Some(if n < 3 {
            denied(true, "sts:AssumeRole: AccessDenied")
        } else {
            pass()
        })
    });
    let create = w.request("cfn-create-via-sns.json");
    assert_eq!(
        run(&w, &flaky, "cfn-create-via-sns.json", &create).await,
        answered(Status::Success, false)
    );
    assert_eq!(flaky.calls(), 4);

    // A proof that keeps failing, with a summary far over CloudFormation's limit.
    let w = world("proof-fail").await;
    let long = "list outside the prefix: allowed (wider than needed) — ".repeat(200);
    let failing = ScriptedProver::new(move |_| Some(denied(true, &long)));
    let create = w.request("cfn-create-via-sns.json");
    assert_eq!(
        run(&w, &failing, "cfn-create-via-sns.json", &create).await,
        answered(Status::Failed, false)
    );
    assert!(failing.calls() > 1, "retried until the retry window closed");
    let got = w.stub.requests();
    assert_eq!(got.len(), 1);
    let a = answer_in(&got[0]);
    assert!(got[0].body.len() > 3000 && got[0].body.len() <= MAX_BODY);
    assert!(a.reason.unwrap().ends_with("..."));
    assert!(matches!(
        w.deps.registry().get("acme", STACK_ACCOUNT).await,
        Err(RegistryError::Missing { .. })
    ));
    assert_no_secrets_logged();
}

#[tokio::test]
async fn a_hanging_proof_is_answered_failed_once_before_the_deadline() {
    let w = world("watchdog").await;
    let hangs = ScriptedProver::new(|_| None);
    let create = w.request("cfn-create-via-sns.json");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(5); // margin is 2 s: FAILED at 3 s
    let out = handle(
        &w.deps,
        &hangs,
        sns_event("cfn-create-via-sns.json", &create),
        deadline,
    )
    .await
    .unwrap();
    assert_eq!(out, vec![answered(Status::Failed, false)]);
    assert!(Instant::now() < deadline, "answered before the deadline");
    assert!(start.elapsed() >= Duration::from_millis(2900));
    let got = w.stub.requests();
    assert_eq!(got.len(), 1, "exactly one answer");
    let a = answer_in(&got[0]);
    assert_eq!(a.status, Status::Failed);
    assert_eq!(a.physical_resource_id, "curlew:acme:111122223333");
    assert!(a.reason.unwrap().contains("deadline"));
    assert!(matches!(
        w.deps.registry().get("acme", STACK_ACCOUNT).await,
        Err(RegistryError::Missing { .. })
    ));
    // CloudFormation (or SNS) delivering it again gets the same answer.
    let out = run(&w, &hangs, "cfn-create-via-sns.json", &create).await;
    assert_eq!(out, answered(Status::Failed, true));
    assert_eq!(w.stub.requests()[1].body, got[0].body);
    assert_eq!(hangs.calls(), 1);
    assert_no_secrets_logged();
}

/// A store that accepts connections and never answers, so every step of a
/// Delete hangs: the watchdog still answers SUCCESS before the deadline (a
/// FAILED Delete leaves the customer's stack in DELETE_FAILED), once.
#[tokio::test]
async fn a_delete_cut_short_by_the_watchdog_still_answers_success() {
    use aws_sdk_s3::config::{Credentials, Region};
    let w = world("watchdog-delete").await;
    let (addr, held) = curlew_testkit::net::silent_listener().await;
    let hanging = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{addr}"))
            .force_path_style(true)
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .build(),
    );
    let config = onboard::Config {
        store_bucket: "hangs".into(),
        store_prefix: "curlew".into(),
    };
    let deps = onboard::Deps::new(config, fast_settings(w.stub.port()), hanging).unwrap();
    let delete = w.request("cfn-delete-via-sns.json");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(5); // margin is 2 s
    let prover = ScriptedProver::passing();
    let out = handle(
        &deps,
        &prover,
        sns_event("cfn-delete-via-sns.json", &delete),
        deadline,
    )
    .await
    .unwrap();
    assert_eq!(out, vec![answered(Status::Success, false)]);
    assert!(Instant::now() < deadline, "answered before the deadline");
    assert!(
        start.elapsed() >= Duration::from_millis(2900),
        "the watchdog fired"
    );
    let got = w.stub.requests();
    assert_eq!(got.len(), 1, "exactly one answer");
    let a = answer_in(&got[0]);
    assert_eq!(a.status, Status::Success);
    assert_eq!(a.physical_resource_id, "curlew:acme:111122223333");
    assert!(a.reason.unwrap().contains("deadline"));
    assert_eq!(prover.calls(), 0);
    held.abort();
    assert_no_secrets_logged();
}

/// A first deploy whose proof fails (a bucket typo) rolls back; the
/// customer's next stack, with the same template and token, connects. The
/// token is taken only by a stack that succeeds; then no other stack can.
#[tokio::test]
async fn a_failed_create_leaves_the_token_for_the_customers_next_stack() {
    let w = world("token-retry").await;
    let prover = ScriptedProver::new(|n| {
        Some(if n == 0 {
            denied(false, "list-prefix: NoSuchBucket")
        } else {
            pass()
        })
    });
    let first = w.request("cfn-create-via-sns.json");
    let out = run(&w, &prover, "cfn-create-via-sns.json", &first).await;
    assert_eq!(out, answered(Status::Failed, false));
    let stack = |name: &str, request: &str| {
        let mut r = w.request("cfn-create-via-sns.json");
        r["StackId"] = stack_id(name, STACK_ACCOUNT).into();
        r["RequestId"] = request.into();
        answer_to(&mut r, w.stub.port());
        r
    };
    let second = stack(
        "curlew-connect-again",
        "2a2a2a2a-0000-4000-8000-000000000002",
    );
    let out = run(&w, &prover, "cfn-create-via-sns.json", &second).await;
    assert_eq!(out, answered(Status::Success, false));
    let (c, _) = w.deps.registry().get("acme", STACK_ACCOUNT).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::Connected);
    // Redeemed now: a third stack is refused without a proof.
    let third = stack(
        "curlew-connect-third",
        "3a3a3a3a-0000-4000-8000-000000000003",
    );
    let out = run(&w, &prover, "cfn-create-via-sns.json", &third).await;
    assert_eq!(out, answered(Status::Failed, false));
    assert_eq!(prover.calls(), 2);
    let a = answer_in(&w.stub.requests()[2]);
    assert!(a.reason.unwrap().contains("already used"));
    assert_no_secrets_logged();
}

/// A token started for one payer account (`--payer-account`), deployed by a
/// stack in another account (a leaked template): refused before any proof,
/// nothing registered; an expired one likewise.
#[tokio::test]
async fn a_token_for_another_payer_or_expired_is_refused_before_any_proof() {
    use curlew::onboard::OnboardingHints;
    let w = world("token-bound").await;
    let elsewhere = w
        .onboardings
        .begin(
            "acme",
            OnboardingHints {
                payer_account: Some("444455556666".into()),
                ..OnboardingHints::default()
            },
        )
        .await
        .unwrap();
    remember_secret(elsewhere.token.expose());
    let expired = w
        .onboardings
        .begin_with_ttl(
            "acme",
            OnboardingHints::default(),
            chrono::Duration::seconds(-1),
        )
        .await
        .unwrap();
    remember_secret(expired.token.expose());
    let prover = ScriptedProver::passing();
    for (token, says, request_id) in [
        (
            &elsewhere.token,
            "another payer account",
            "0a0a0a0a-0000-4000-8000-00000000000a",
        ),
        (
            &expired.token,
            "expired",
            "0b0b0b0b-0000-4000-8000-00000000000b",
        ),
    ] {
        let mut req = w.request("cfn-create-via-sns.json");
        req["ResourceProperties"]["OnboardingToken"] = token.expose().into();
        req["RequestId"] = request_id.into();
        answer_to(&mut req, w.stub.port());
        let out = run(&w, &prover, "cfn-create-via-sns.json", &req).await;
        assert_eq!(out, answered(Status::Failed, false));
        let a = answer_in(w.stub.requests().last().unwrap());
        assert!(a.reason.as_deref().unwrap().contains(says), "{a:?}");
    }
    assert_eq!(prover.calls(), 0);
    assert!(matches!(
        w.deps.registry().get("acme", STACK_ACCOUNT).await,
        Err(RegistryError::Missing { .. })
    ));
    assert_no_secrets_logged();
}

/// Proves (passing) after a pause, counting its calls.
#[derive(Default)]
struct SlowProver(std::sync::atomic::AtomicU32);

impl onboard::prove::Prover for SlowProver {
    async fn prove(&self, _: &onboard::prove::ProofTarget) -> onboard::prove::Proof {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        pass()
    }
}

/// SNS (or Lambda's retry) delivering one request twice at once: the first
/// copy claims it, proves and answers; the other sends nothing, so
/// CloudFormation gets exactly one answer and the proof runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_of_one_request_at_once_are_answered_once() {
    use onboard::request::DropReason;
    let w = world("twins").await;
    let slow = SlowProver::default();
    let create = w.request("cfn-create-via-sns.json");
    let event = || sns_event("cfn-create-via-sns.json", &create);
    let (a, b) = tokio::join!(
        handle(&w.deps, &slow, event(), soon()),
        handle(&w.deps, &slow, event(), soon())
    );
    let mut outs = vec![a.unwrap().remove(0), b.unwrap().remove(0)];
    outs.sort_by_key(|o| matches!(o, Outcome::Dropped(_)));
    assert_eq!(outs[0], answered(Status::Success, false), "{outs:?}");
    assert!(
        matches!(&outs[1], Outcome::Dropped(DropReason::InFlight(_))),
        "{outs:?}"
    );
    assert_eq!(slow.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(w.stub.requests().len(), 1, "exactly one answer");
    // A later copy gets the stored answer.
    let again = run(
        &w,
        &ScriptedProver::passing(),
        "cfn-create-via-sns.json",
        &create,
    )
    .await;
    assert_eq!(again, answered(Status::Success, true));
    assert_no_secrets_logged();
}

#[tokio::test]
async fn malformed_messages_are_dropped_without_a_request() {
    let w = world("malformed").await;
    let prover = ScriptedProver::passing();
    let mut ev = event_file("cfn-create-via-sns.json");
    ev["Records"][0]["Sns"]["Message"] =
        "{\"RequestType\": \"Create\", \"OnboardingToken\": \"cwt_x\"".into();
    let out = handle(&w.deps, &prover, ev, soon()).await.unwrap();
    assert!(matches!(out[0], Outcome::Dropped(_)));
    let mut bad_stack = w.request("cfn-create-via-sns.json");
    bad_stack["StackId"] = "arn:aws:cloudformation:us-east-1:111122223333:stack".into();
    let out = run(&w, &prover, "cfn-create-via-sns.json", &bad_stack).await;
    assert!(matches!(out, Outcome::Dropped(_)));
    assert!(
        handle(&w.deps, &prover, serde_json::json!({"not": "sns"}), soon())
            .await
            .is_err()
    );
    assert_eq!(w.stub.connections(), 0);
    assert_no_secrets_logged();
}

/// From `curlew onboard new` to a connection: the custom resource of the
/// template curlew generates, resolved as CloudFormation resolves it (Ref and
/// GetAtt filled in, every property value a string), is what the handler
/// accepts; the Create ends proven, registered and answered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_templates_custom_resource_connects_the_account() {
    use curlew::onboard::{customer_template, ReadExtras, TemplateSpec};
    let w = world("template").await;
    let template = customer_template(&TemplateSpec {
        tenant: &w.tenant,
        platform_principal: "arn:aws:iam::999988887777:role/curlew-ingest",
        service_token: "arn:aws:sns:us-east-1:999988887777:curlew-onboard",
        external_id: &w.external_id,
        token: &w.token,
        bucket: Some("example-billing-bucket"),
        prefix: Some("cur"),
        report: Some("curlew-cur"),
        extras: ReadExtras::default(),
        delivery_policy: false,
        health_bus: None,
    })
    .unwrap();
    let role_name = template["Resources"]["CurlewReadRole"]["Properties"]["RoleName"]
        .as_str()
        .unwrap()
        .to_owned();
    let parameters = |name: &str| template["Parameters"][name]["Default"].clone();
    let mut props = serde_json::Map::new();
    for (k, v) in template["Resources"]["CurlewConnection"]["Properties"]
        .as_object()
        .unwrap()
    {
        let resolved = match v {
            Value::Object(o) if o.contains_key("Ref") => parameters(o["Ref"].as_str().unwrap()),
            Value::Object(o) if o.contains_key("Fn::GetAtt") => {
                format!("arn:aws:iam::{STACK_ACCOUNT}:role/{role_name}").into()
            }
            Value::Number(n) => n.to_string().into(),
            other => other.clone(),
        };
        props.insert(k.clone(), resolved);
    }
    let mut create = w.request("cfn-create-via-sns.json");
    create["ResourceProperties"] = Value::Object(props);
    let prover = ScriptedProver::passing();
    let out = run(&w, &prover, "cfn-create-via-sns.json", &create).await;
    assert_eq!(out, answered(Status::Success, false));
    let got = w.stub.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(answer_in(&got[0]).data["Status"], "connected");
    let seen = prover.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].role_arn,
        format!("arn:aws:iam::{STACK_ACCOUNT}:role/curlew-read-acme")
    );
    assert_eq!(seen[0].external_id, w.external_id);
    let (conn, _) = w
        .deps
        .registry()
        .get(&w.tenant, STACK_ACCOUNT)
        .await
        .unwrap();
    assert_eq!(conn.status, ConnectionStatus::Connected);
    assert_eq!(conn.bucket, "example-billing-bucket");
    assert_eq!(conn.report.as_deref(), Some("curlew-cur"));
    assert_no_secrets_logged();
}
