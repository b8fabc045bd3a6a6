//! The billing APIs' word on a connection's report, from
//! `DescribeReportDefinitions`, `ListExports` and `GetExport` as AWS sends
//! them (awsJson 1.1 through the real deserializers, aws-smithy-mocks):
//! moto has neither Cost and Usage Reports nor Data Exports.

use aws_sdk_s3::config::http::HttpResponse;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::body::SdkBody;
use curlew::sweep::definition::{define, Definition, Destination, ReportApis, ReportKind};

fn json(status: u16, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
    r.headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    r
}

fn denied(action: &str) -> String {
    format!(
        r#"{{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::111122223333:assumed-role/curlew-read-acme/curlew-sweep is not authorized to perform: {action} because no identity-based policy allows the {action} action"}}"#
    )
}

fn report(name: &str, bucket: &str, prefix: &str) -> String {
    format!(
        r#"{{"ReportName":"{name}","TimeUnit":"HOURLY","Format":"textORcsv","Compression":"GZIP","AdditionalSchemaElements":["RESOURCES"],"S3Bucket":"{bucket}","S3Prefix":"{prefix}","S3Region":"us-east-1","ReportVersioning":"CREATE_NEW_REPORT"}}"#
    )
}

/// `DescribeReportDefinitions` pages: each a list of definitions; every
/// page but the last carries a NextToken naming the next.
fn cur(pages: Vec<Vec<String>>) -> aws_sdk_costandusagereport::Client {
    let n = pages.len();
    let rules: Vec<Rule> = pages
        .into_iter()
        .enumerate()
        .map(|(i, defs)| {
            let token = if i + 1 < n {
                format!(r#","NextToken":"page-{}""#, i + 1)
            } else {
                String::new()
            };
            let body = format!(r#"{{"ReportDefinitions":[{}]{token}}}"#, defs.join(","));
            let want = (i > 0).then(|| format!("page-{i}"));
            mock!(aws_sdk_costandusagereport::Client::describe_report_definitions)
                .match_requests(move |r| r.next_token().map(str::to_owned) == want)
                .then_http_response(move || json(200, body.clone()))
        })
        .collect();
    mock_client!(aws_sdk_costandusagereport, RuleMode::MatchAny, &rules)
}

fn cur_answering(status: u16, body: String) -> aws_sdk_costandusagereport::Client {
    let rule = mock!(aws_sdk_costandusagereport::Client::describe_report_definitions)
        .then_http_response(move || json(status, body.clone()));
    mock_client!(aws_sdk_costandusagereport, RuleMode::MatchAny, &[rule])
}

/// `ListExports` answering `list` (status, body); `GetExport` answering `get`.
fn exports(list: (u16, String), get: (u16, String)) -> aws_sdk_bcmdataexports::Client {
    let l = mock!(aws_sdk_bcmdataexports::Client::list_exports)
        .then_http_response(move || json(list.0, list.1.clone()));
    let g = mock!(aws_sdk_bcmdataexports::Client::get_export)
        .then_http_response(move || json(get.0, get.1.clone()));
    mock_client!(aws_sdk_bcmdataexports, RuleMode::MatchAny, &[l, g])
}

fn listed(name: &str, status: &str) -> String {
    format!(
        r#"{{"Exports":[
            {{"ExportArn":"arn:aws:bcm-data-exports:us-east-1:111122223333:export/other-1","ExportName":"other","ExportStatus":{{"StatusCode":"HEALTHY"}}}},
            {{"ExportArn":"arn:aws:bcm-data-exports:us-east-1:111122223333:export/{name}-2","ExportName":"{name}","ExportStatus":{status}}}
        ]}}"#
    )
}

fn export_at(name: &str, bucket: &str, prefix: &str) -> String {
    format!(
        r#"{{"Export":{{"ExportArn":"arn:aws:bcm-data-exports:us-east-1:111122223333:export/{name}-2","Name":"{name}",
            "DataQuery":{{"QueryStatement":"SELECT * FROM COST_AND_USAGE_REPORT"}},
            "DestinationConfigurations":{{"S3Destination":{{"S3Bucket":"{bucket}","S3Prefix":"{prefix}","S3Region":"us-east-1",
                "S3OutputConfigurations":{{"OutputType":"CUSTOM","Format":"PARQUET","Compression":"PARQUET","Overwrite":"OVERWRITE_REPORT"}}}}}},
            "RefreshCadence":{{"Frequency":"SYNCHRONOUS"}}}}}}"#
    )
}

fn apis(
    cur: Option<aws_sdk_costandusagereport::Client>,
    exports: Option<aws_sdk_bcmdataexports::Client>,
) -> ReportApis {
    ReportApis { cur, exports }
}

fn at(bucket: &str, prefix: &str) -> Destination {
    Destination {
        bucket: bucket.into(),
        prefix: prefix.into(),
    }
}

#[tokio::test]
async fn a_legacy_report_on_a_later_page_is_defined_with_its_destination() {
    let apis = apis(
        Some(cur(vec![
            vec![report("team-a", "other-bucket", "x")],
            vec![
                report("team-b", "other-bucket", "y"),
                report("acme-cur", "acme-billing", "cur/"),
            ],
        ])),
        None,
    );
    let d = define(&apis, "acme-cur", None).await.unwrap();
    assert_eq!(
        d,
        Definition::Report {
            destination: at("acme-billing", "cur/")
        }
    );
    let Definition::Report { destination } = d else {
        unreachable!()
    };
    // Slashes at either end are the same prefix to AWS's writers.
    assert!(destination.is("acme-billing", "/cur"));
    assert!(!destination.is("acme-billing", "cur2"));
}

#[tokio::test]
async fn a_name_neither_api_defines_is_missing() {
    let apis = apis(
        Some(cur(vec![vec![report("team-a", "b", "p")]])),
        Some(exports(
            (200, listed("other-export", r#"{"StatusCode":"HEALTHY"}"#)),
            (500, String::new()),
        )),
    );
    assert_eq!(
        define(&apis, "acme-cur", None).await.unwrap(),
        Definition::Missing {
            asked: vec![
                "cur:DescribeReportDefinitions",
                "bcm-data-exports:ListExports"
            ]
        }
    );
}

#[tokio::test]
async fn an_unhealthy_export_names_its_reason_and_destination() {
    let apis = apis(
        Some(cur_answering(400, denied("cur:DescribeReportDefinitions"))),
        Some(exports(
            (
                200,
                listed(
                    "acme-focus",
                    r#"{"StatusCode":"UNHEALTHY","StatusReason":"BILL_OWNER_CHANGED","LastRefreshedAt":"2026-12-01T08:00:00Z"}"#,
                ),
            ),
            (200, export_at("acme-focus", "acme-billing", "exports")),
        )),
    );
    assert_eq!(
        define(&apis, "acme-focus", None).await.unwrap(),
        Definition::Export {
            destination: Some(at("acme-billing", "exports")),
            unhealthy: Some("BILL_OWNER_CHANGED".into()),
        }
    );
}

#[tokio::test]
async fn one_api_alone_says_missing_only_for_its_own_kind() {
    // CUR permission not granted; Data Exports lists no such export.
    let answer = || {
        apis(
            Some(cur_answering(400, denied("cur:DescribeReportDefinitions"))),
            Some(exports(
                (200, listed("other-export", r#"{"StatusCode":"HEALTHY"}"#)),
                (500, String::new()),
            )),
        )
    };
    // Nothing delivered says which kind: it may be a legacy report.
    assert_eq!(
        define(&answer(), "acme", None).await.unwrap(),
        Definition::Unknown
    );
    assert_eq!(
        define(&answer(), "acme", Some(ReportKind::LegacyCur))
            .await
            .unwrap(),
        Definition::Unknown
    );
    assert_eq!(
        define(&answer(), "acme", Some(ReportKind::DataExport))
            .await
            .unwrap(),
        Definition::Missing {
            asked: vec!["bcm-data-exports:ListExports"]
        }
    );
}

#[tokio::test]
async fn without_either_permission_nothing_is_known() {
    let apis = apis(
        Some(cur_answering(400, denied("cur:DescribeReportDefinitions"))),
        Some(exports(
            (400, denied("bcm-data-exports:ListExports")),
            (500, String::new()),
        )),
    );
    assert_eq!(
        define(&apis, "acme", Some(ReportKind::DataExport))
            .await
            .unwrap(),
        Definition::Unknown
    );
    // No clients at all: the same, and no call.
    assert_eq!(
        define(
            &ReportApis {
                cur: None,
                exports: None
            },
            "acme",
            None
        )
        .await
        .unwrap(),
        Definition::Unknown
    );
}

#[tokio::test]
async fn a_transient_failure_is_an_error_not_a_verdict() {
    let apis = apis(
        Some(cur_answering(
            503,
            r#"{"__type":"ServiceUnavailableException","Message":"Service is unavailable"}"#.into(),
        )),
        None,
    );
    let e = define(&apis, "acme", Some(ReportKind::LegacyCur))
        .await
        .unwrap_err();
    assert!(e.cause.is_transient(), "{e:?}");
}

#[test]
fn the_manifest_key_tells_the_kind() {
    assert_eq!(
        ReportKind::of_manifest("exports/acme/metadata/BILLING_PERIOD=2026-11/acme-Manifest.json"),
        ReportKind::DataExport
    );
    assert_eq!(
        ReportKind::of_manifest("cur/acme/20261101-20261201/acme-Manifest.json"),
        ReportKind::LegacyCur
    );
}
