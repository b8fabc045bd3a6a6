//! ResponseURL fuzzing: the function sends an answer only to a CloudFormation
//! response bucket of the stack's region. Every connection the function opens
//! here is re-routed to a counting stub on 127.0.0.1 (whatever host the URL
//! names), so a URL that slipped through would show up as a connection.

mod common;

use common::stub::{Reply, Stub};
use common::*;
use onboard::handler::{handle_message, Outcome};
use onboard::response::{ResponsePolicy, Status, MAX_BODY};
use onboard::{Config, Deps};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

const AWS_HOST: &str = "cloudformation-custom-resource-response-useast1.s3.amazonaws.com";

async fn deps_with(policy: ResponsePolicy) -> Deps {
    capture_logs();
    let s3 = moto::s3_client();
    let bucket = moto::new_bucket(&s3, "fuzz-store").await;
    let mut settings = fast_settings(0);
    settings.response_policy = policy;
    Deps::new(
        Config {
            store_bucket: bucket,
            store_prefix: "curlew".into(),
        },
        settings,
        s3,
    )
    .unwrap()
}

/// The events/ Delete (it needs no proof) with a ResponseURL of our making.
fn delete_to(url: &str) -> String {
    let mut r = request_of("cfn-delete-via-sns.json");
    r["ResponseURL"] = url.into();
    r.to_string()
}

async fn send(deps: &Deps, url: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(30);
    handle_message(deps, &ScriptedProver::passing(), &delete_to(url), deadline).await
}

#[tokio::test]
async fn forged_response_urls_get_no_request_at_all() {
    let counting = Stub::start(Reply::Ok).await;
    let port = counting.port();
    let deps = deps_with(
        ResponsePolicy::aws_and_loopback_for_tests(port).connecting_to_for_tests(counting.addr),
    )
    .await;
    let req = request_of("cfn-delete-via-sns.json");
    let path = response_path(&req);
    let q = PRESIGNED_QUERY;
    let other_path = {
        let mut r = req.clone();
        r["RequestId"] = "another-request".into();
        response_path(&r)
    };
    let forged = [
        format!("http://{AWS_HOST}{path}?{q}"),
        format!("https://169.254.169.254{path}?{q}"),
        format!("http://169.254.169.254/latest/meta-data/iam/security-credentials/{path}"),
        format!("https://{AWS_HOST}.evil.com{path}?{q}"),
        format!("https://s3.amazonaws.com.evil.com{path}?{q}"),
        format!("https://{AWS_HOST}@evil.com{path}?{q}"),
        format!("https://user:secret@{AWS_HOST}{path}?{q}"),
        format!("https://evil.com\\@{AWS_HOST}{path}?{q}"),
        format!("https://cloudformation-custom-resource-response-uswest2.s3.us-west-2.amazonaws.com{path}?{q}"),
        format!("https://cloudformation-custom-resource-response-useast1.s3.eu-west-1.amazonaws.com{path}?{q}"),
        format!("https://{AWS_HOST}:8443{path}?{q}"),
        format!("https://{AWS_HOST}.{path}?{q}"),
        format!("https://{AWS_HOST}{other_path}?{q}"),
        format!("https://{AWS_HOST}/?{q}"),
        format!("https://{AWS_HOST}{path}?{q}#fragment"),
        format!("http://localhost:{port}{path}?{q}"),
        format!("http://127.0.0.2:{port}{path}?{q}"),
        format!("http://127.0.0.1:{}{path}?{q}", port.wrapping_add(1)),
        format!("https://127.0.0.1:{port}{path}?{q}"),
        format!("http://[::1]:{port}{path}?{q}"),
        format!("http://2130706433:{}{path}?{q}", port.wrapping_add(1)),
        format!("ftp://{AWS_HOST}{path}"),
        "not a url".to_owned(),
        String::new(),
    ];
    for url in &forged {
        let out = send(&deps, url).await;
        assert!(matches!(out, Outcome::Dropped(_)), "{url}: {out:?}");
    }
    assert_eq!(
        counting.connections(),
        0,
        "a forged URL reached the network"
    );

    // The one allowed URL gets exactly one PUT, empty Content-Type, <= 4096 bytes.
    let good = format!("http://127.0.0.1:{port}{path}?{q}");
    let out = send(&deps, &good).await;
    assert_eq!(
        out,
        Outcome::Answered {
            status: Status::Success,
            repeated: false,
            delivered: true
        }
    );
    let got = counting.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(counting.connections(), 1);
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].target, format!("{path}?{q}"));
    assert_eq!(got[0].header("content-type"), Some(""));
    assert!(got[0].body.len() <= MAX_BODY);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["PhysicalResourceId"], "curlew:acme:111122223333");
    assert_no_secrets_logged();
}

#[tokio::test]
async fn the_rerouting_sees_what_would_leave() {
    // A valid production URL does leave the function: re-routed, the stub
    // sees its TLS handshake. (So the zero above means "nothing left".)
    let counting = Stub::start(Reply::Ok).await;
    let deps = deps_with(ResponsePolicy::aws().connecting_to_for_tests(counting.addr)).await;
    let path = response_path(&request_of("cfn-delete-via-sns.json"));
    let out = send(
        &deps,
        &format!("https://{AWS_HOST}{path}?{PRESIGNED_QUERY}"),
    )
    .await;
    assert!(
        matches!(
            out,
            Outcome::Answered {
                delivered: false,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(counting.connections() >= 1);
    assert!(counting.requests().is_empty(), "only TLS, never plain http");
    assert_no_secrets_logged();
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let counting = Stub::start(Reply::Ok).await;
    let path = response_path(&request_of("cfn-delete-via-sns.json"));
    let redirect = Stub::start(Reply::Redirect(format!(
        "http://127.0.0.1:{}{path}?{PRESIGNED_QUERY}",
        counting.port()
    )))
    .await;
    let deps = deps_with(ResponsePolicy::aws_and_loopback_for_tests(redirect.port())).await;
    let out = send(
        &deps,
        &format!(
            "http://127.0.0.1:{}{path}?{PRESIGNED_QUERY}",
            redirect.port()
        ),
    )
    .await;
    assert!(
        matches!(
            out,
            Outcome::Answered {
                delivered: false,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(redirect.requests().len(), 1, "one PUT, not retried");
    assert_eq!(counting.connections(), 0, "the redirect was followed");
    assert_no_secrets_logged();
}
