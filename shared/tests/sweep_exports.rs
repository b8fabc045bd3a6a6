//! Data Exports' status of an export, from `ListExports` as AWS sends it
//! (awsJson 1.1 through the real deserializer, aws-smithy-mocks): moto has
//! no Data Exports backend.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::Credentials;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::body::SdkBody;
use curlew::sweep::exports::{exports_client, unhealthy};

fn json(status: u16, body: &'static str) -> HttpResponse {
    let mut r = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
    r.headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    r
}

fn client(status: u16, body: &'static str) -> aws_sdk_bcmdataexports::Client {
    let rule = mock!(aws_sdk_bcmdataexports::Client::list_exports)
        .then_http_response(move || json(status, body));
    let base = mock_client!(aws_sdk_bcmdataexports, RuleMode::MatchAny, &[rule], |c| c
        .retry_config(aws_sdk_bcmdataexports::config::retry::RetryConfig::disabled()));
    let creds = Credentials::new("ASIAMOCK", "secret", Some("token".into()), None, "test");
    let c = exports_client(&base, &creds);
    // exports_client sets adaptive retry; the mock answers once.
    aws_sdk_bcmdataexports::Client::from_conf(
        c.config()
            .to_builder()
            .retry_config(aws_sdk_bcmdataexports::config::retry::RetryConfig::disabled())
            .build(),
    )
}

#[tokio::test]
async fn an_unhealthy_export_names_its_reason() {
    let c = client(
        200,
        r#"{"Exports":[
            {"ExportArn":"arn:aws:bcm-data-exports:us-east-1:111122223333:export/other-1","ExportName":"other","ExportStatus":{"StatusCode":"HEALTHY"}},
            {"ExportArn":"arn:aws:bcm-data-exports:us-east-1:111122223333:export/acme-focus-2","ExportName":"acme-focus","ExportStatus":{"StatusCode":"UNHEALTHY","StatusReason":"BILL_OWNER_CHANGED","LastRefreshedAt":"2026-12-01T08:00:00Z"}}
        ]}"#,
    );
    assert_eq!(
        unhealthy(&c, "acme-focus").await.unwrap().as_deref(),
        Some("BILL_OWNER_CHANGED")
    );
    assert_eq!(unhealthy(&c, "other").await.unwrap(), None);
    // A legacy CUR report is not an export: not listed says nothing.
    assert_eq!(unhealthy(&c, "acme-cur").await.unwrap(), None);
}

#[tokio::test]
async fn without_the_optional_permission_the_check_is_skipped() {
    let c = client(
        400,
        r#"{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::111122223333:assumed-role/curlew-read-acme/curlew-ingest is not authorized to perform: bcm-data-exports:ListExports because no identity-based policy allows the bcm-data-exports:ListExports action"}"#,
    );
    assert_eq!(unhealthy(&c, "acme-focus").await.unwrap(), None);
}
