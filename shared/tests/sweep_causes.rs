//! Every cause of the sweep's table from AWS's exact error shape: status,
//! headers and body as AWS sends them (aws-smithy-mocks `then_http_response`),
//! through the real SDK deserializers, the access classifier and
//! `sweep::diagnose`. moto cannot produce these (STS region deactivation,
//! policy-type wording, KMS codes, redirects with `x-amz-bucket-region`).

use aws_sdk_s3::config::http::HttpResponse;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::body::SdkBody;
use curlew::access::CallError;
use curlew::sweep::{diagnose, remedy, HealthCause, Stage};

const PRINCIPAL: &str =
    "User: arn:aws:sts::111122223333:assumed-role/curlew-read-acme/curlew-sweep";

fn response(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> HttpResponse {
    let mut r = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_owned()));
    for (k, v) in headers {
        r.headers_mut().insert(*k, *v);
    }
    r
}

fn s3_xml(code: &str, message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>{code}</Code><Message>{message}</Message><RequestId>4442587FB7D0A2F9</RequestId><HostId>hid</HostId></Error>"#
    )
}

fn sts_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>"#
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The CallError of one S3 GetObject answered with this response.
fn s3_get(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: String,
) -> CallError {
    let rule = mock!(aws_sdk_s3::Client::get_object)
        .then_http_response(move || response(status, headers, &body));
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[rule], |c| c
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()));
    let err = rt()
        .block_on(
            s3.get_object()
                .bucket("acme-billing")
                .key("cur/m.json")
                .send(),
        )
        .expect_err("mocked to fail");
    CallError::from_sdk(&err)
}

fn s3_list(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: String,
) -> CallError {
    let rule = mock!(aws_sdk_s3::Client::list_objects_v2)
        .then_http_response(move || response(status, headers, &body));
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[rule], |c| c
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()));
    let err = rt()
        .block_on(
            s3.list_objects_v2()
                .bucket("acme-billing")
                .prefix("cur/")
                .send(),
        )
        .expect_err("mocked to fail");
    CallError::from_sdk(&err)
}

fn sts_assume(status: u16, body: String) -> CallError {
    let rule = mock!(aws_sdk_sts::Client::assume_role)
        .then_http_response(move || response(status, &[("content-type", "text/xml")], &body));
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[rule], |c| c
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled()));
    let err = rt()
        .block_on(
            sts.assume_role()
                .role_arn("arn:aws:iam::111122223333:role/curlew-read-acme")
                .role_session_name("curlew-sweep")
                .external_id("Xk2p9QvT7mWc4RzL8nYb3HsJ6dFa1GeUq5Vt0Oi")
                .send(),
        )
        .expect_err("mocked to fail");
    CallError::from_sdk(&err)
}

fn org_list(status: u16, kind: &str, message: &str) -> CallError {
    let body = format!(r#"{{"__type":"{kind}","Message":"{message}"}}"#);
    let rule = mock!(aws_sdk_organizations::Client::list_accounts).then_http_response(move || {
        response(
            status,
            &[("content-type", "application/x-amz-json-1.1")],
            &body,
        )
    });
    let org = mock_client!(aws_sdk_organizations, RuleMode::MatchAny, &[rule], |c| c
        .retry_config(aws_sdk_organizations::config::retry::RetryConfig::disabled()));
    let err = rt()
        .block_on(org.list_accounts().send())
        .expect_err("mocked to fail");
    CallError::from_sdk(&err)
}

fn denied_by(action: &str, tail: &str) -> String {
    format!("{PRINCIPAL} is not authorized to perform: {action} on resource: &quot;arn:aws:s3:::acme-billing/cur/m.json&quot; {tail}")
}

#[test]
fn assume_denied_names_the_three_likely_causes() {
    let e = sts_assume(
        403,
        sts_xml(
            "AccessDenied",
            "User: arn:aws:sts::999988887777:assumed-role/curlew-sweep/1701 is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/curlew-read-acme",
        ),
    );
    assert_eq!(e.status, Some(403));
    assert_eq!(diagnose(Stage::Assume, &e), HealthCause::AssumeDenied);
    let r = remedy(HealthCause::AssumeDenied, Some(&e));
    for likely in ["deleted", "trust policy", "External ID"] {
        assert!(r.contains(likely), "{r}");
    }
    assert!(!r.contains("Xk2p9QvT7mWc4RzL8nYb3HsJ6dFa1GeUq5Vt0Oi"));
}

#[test]
fn a_region_without_sts_is_not_a_denial() {
    let e = sts_assume(
        403,
        sts_xml(
            "RegionDisabledException",
            "STS is not activated in this region for account:111122223333. Your account administrator can activate STS in this region using the IAM Console.",
        ),
    );
    assert_eq!(diagnose(Stage::Assume, &e), HealthCause::StsRegionDisabled);
    assert!(!e.is_denial());
}

#[test]
fn an_scp_refusing_the_assume_is_the_organizations_doing() {
    let e = sts_assume(
        403,
        sts_xml(
            "AccessDenied",
            "User: arn:aws:sts::999988887777:assumed-role/curlew-sweep/1701 is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/curlew-read-acme with an explicit deny in a service control policy",
        ),
    );
    assert_eq!(diagnose(Stage::Assume, &e), HealthCause::ScpDenied);
}

#[test]
fn sts_throttling_is_transient() {
    let e = sts_assume(400, sts_xml("Throttling", "Rate exceeded"));
    assert_eq!(diagnose(Stage::Assume, &e), HealthCause::Transient);
}

#[test]
fn a_deleted_bucket_is_bucket_gone() {
    let e = s3_list(
        404,
        &[("content-type", "application/xml")],
        s3_xml("NoSuchBucket", "The specified bucket does not exist"),
    );
    assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::BucketGone);
}

#[test]
fn a_permanent_redirect_names_the_buckets_region() {
    let e = s3_list(
        301,
        &[
            ("content-type", "application/xml"),
            ("x-amz-bucket-region", "eu-west-1"),
        ],
        s3_xml(
            "PermanentRedirect",
            "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
        ),
    );
    assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::WrongRegion);
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));
    assert!(remedy(HealthCause::WrongRegion, Some(&e)).contains("eu-west-1"));
}

#[test]
fn a_bare_301_of_a_head_names_the_region_by_header() {
    let rule = mock!(aws_sdk_s3::Client::head_object)
        .then_http_response(|| response(301, &[("x-amz-bucket-region", "ap-southeast-2")], ""));
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[rule], |c| c
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()));
    let err = rt()
        .block_on(
            s3.head_object()
                .bucket("acme-billing")
                .key("cur/m.json")
                .send(),
        )
        .expect_err("mocked to fail");
    let e = CallError::from_sdk(&err);
    assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::WrongRegion);
    assert_eq!(e.region.as_deref(), Some("ap-southeast-2"));
}

#[test]
fn a_malformed_authorization_header_names_the_expected_region() {
    let e = s3_list(
        400,
        &[("content-type", "application/xml")],
        s3_xml(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-central-1'",
        ),
    );
    assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::WrongRegion);
    assert_eq!(e.region.as_deref(), Some("eu-central-1"));
}

#[test]
fn each_policy_type_of_a_denial_has_its_cause() {
    for (tail, want) in [
        (
            "with an explicit deny in a service control policy",
            HealthCause::ScpDenied,
        ),
        (
            "because no service control policy allows the s3:GetObject action",
            HealthCause::ScpDenied,
        ),
        (
            "with an explicit deny in a resource control policy",
            HealthCause::ScpDenied,
        ),
        (
            "because no resource control policy allows the s3:GetObject action",
            HealthCause::ScpDenied,
        ),
        (
            "with an explicit deny in a resource-based policy",
            HealthCause::BucketPolicyDenied,
        ),
        (
            "because no resource-based policy allows the s3:GetObject action",
            HealthCause::BucketPolicyDenied,
        ),
        (
            "because no identity-based policy allows the s3:GetObject action",
            HealthCause::IamPolicyDenied,
        ),
        (
            "with an explicit deny in an identity-based policy",
            HealthCause::IamPolicyDenied,
        ),
        (
            "with an explicit deny in a permissions boundary",
            HealthCause::IamPolicyDenied,
        ),
        (
            "because no permissions boundary allows the s3:GetObject action",
            HealthCause::IamPolicyDenied,
        ),
        (
            "with an explicit deny in a session policy",
            HealthCause::IamPolicyDenied,
        ),
        (
            "because no session policy allows the s3:GetObject action",
            HealthCause::IamPolicyDenied,
        ),
    ] {
        let e = s3_get(
            403,
            &[("content-type", "application/xml")],
            s3_xml("AccessDenied", &denied_by("s3:GetObject", tail)),
        );
        assert_eq!(diagnose(Stage::Bucket, &e), want, "{tail}");
    }
    // A bare "Access Denied" names no policy: the role's read policy is the first suspect.
    let e = s3_get(403, &[], s3_xml("AccessDenied", "Access Denied"));
    assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::IamPolicyDenied);
}

#[test]
fn kms_refusals_are_kms_denied() {
    for (status, code, message) in [
        (403, "AccessDenied", format!("{PRINCIPAL} is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:111122223333:key/1234abcd because no identity-based policy allows the kms:Decrypt action")),
        (400, "KMS.DisabledException", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd is disabled.".to_owned()),
        (400, "KMS.KMSInvalidStateException", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd is pending deletion.".to_owned()),
        (400, "KMS.NotFoundException", "Invalid keyId 1234abcd".to_owned()),
    ] {
        let e = s3_get(status, &[("content-type", "application/xml")], s3_xml(code, &message));
        assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::KmsDenied, "{code}");
    }
}

#[test]
fn throttling_and_5xx_are_transient() {
    for (status, code, message) in [
        (503, "SlowDown", "Please reduce your request rate."),
        (
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (
            503,
            "ServiceUnavailable",
            "Please reduce your request rate.",
        ),
    ] {
        let e = s3_get(
            status,
            &[("content-type", "application/xml")],
            s3_xml(code, message),
        );
        assert_eq!(
            diagnose(Stage::Bucket, &e),
            HealthCause::Transient,
            "{code}"
        );
    }
    // A 502 from a load balancer has no S3 body at all.
    let e = s3_get(502, &[], "<html>Bad Gateway</html>".into());
    assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::Transient);
}

#[test]
fn revoked_access_keys_are_credentials_invalid() {
    let e = s3_list(
        403,
        &[("content-type", "application/xml")],
        s3_xml(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
    );
    assert_eq!(diagnose(Stage::Bucket, &e), HealthCause::CredentialsInvalid);
}

#[test]
fn organizations_refusing_a_member_account_is_org_access() {
    let e = org_list(
        400,
        "AccessDeniedException",
        "You don't have permissions to access this resource.",
    );
    assert_eq!(diagnose(Stage::Organizations, &e), HealthCause::OrgAccess);
    assert_eq!(
        HealthCause::OrgAccess.status(),
        Some(curlew::registry::ConnectionStatus::Degraded)
    );
    let e = org_list(400, "TooManyRequestsException", "AWS Organizations can't complete your request because another request is already in progress.");
    assert_eq!(diagnose(Stage::Organizations, &e), HealthCause::Transient);
}
