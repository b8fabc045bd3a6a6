//! The billing APIs' own word on the connection's named report (the read
//! policy's optional `--report-definitions` and `--data-exports`
//! permissions), through the customer's credentials:
//!
//! - `cur:DescribeReportDefinitions`: the legacy CUR reports, with the bucket
//!   and prefix each delivers to;
//! - `bcm-data-exports:ListExports`: the exports with their `ExportStatus`
//!   (UNHEALTHY with a `StatusReason`: INSUFFICIENT_PERMISSION,
//!   BILL_OWNER_CHANGED, INTERNAL_FAILURE), then `GetExport` of the named one
//!   for its S3 destination.
//!
//! A permission not granted (AccessDenied) means that API was not asked. A
//! report is missing only when every API that could define it was asked and
//! none does: both answered, or the one of the kind the delivered manifests
//! show. A transient failure says nothing (the next sweep asks again).

use crate::access::{CallError, Cause};
use aws_sdk_bcmdataexports::config::retry::RetryConfig;
use aws_sdk_bcmdataexports::config::{Credentials, Region};

/// Pages (20 exports, 5 report definitions each); no account has more.
const MAX_PAGES: usize = 200;

/// Which kind of report a manifest key shows: Data Exports keep manifests
/// under `metadata/BILLING_PERIOD=`, legacy CUR in period folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    LegacyCur,
    DataExport,
}

impl ReportKind {
    pub fn of_manifest(key: &str) -> ReportKind {
        if key.contains("/metadata/BILLING_PERIOD=") {
            ReportKind::DataExport
        } else {
            ReportKind::LegacyCur
        }
    }
}

/// Where a report or export delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub bucket: String,
    pub prefix: String,
}

impl Destination {
    /// Whether this is the connection's bucket and prefix (slashes at either
    /// end of a prefix are the same prefix to AWS's writers).
    pub fn is(&self, bucket: &str, prefix: &str) -> bool {
        self.bucket == bucket && self.prefix.trim_matches('/') == prefix.trim_matches('/')
    }
}

/// What the billing APIs say of a report name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definition {
    /// No API that could define it answered (permission not granted, no
    /// client, or a transient failure).
    Unknown,
    /// Every API that could define it answered, and none has it.
    Missing { asked: Vec<&'static str> },
    /// A legacy CUR report definition.
    Report { destination: Destination },
    /// A Data Exports export; `unhealthy` is its StatusReason when UNHEALTHY.
    Export {
        destination: Option<Destination>,
        unhealthy: Option<String>,
    },
}

/// The customer's clients for the two APIs (both live in us-east-1;
/// cn-northwest-1 for CUR in aws-cn, where Data Exports does not exist).
pub struct ReportApis {
    pub cur: Option<aws_sdk_costandusagereport::Client>,
    pub exports: Option<aws_sdk_bcmdataexports::Client>,
}

impl ReportApis {
    pub fn for_customer(
        cur: Option<&aws_sdk_costandusagereport::Client>,
        exports: Option<&aws_sdk_bcmdataexports::Client>,
        creds: &Credentials,
        partition: &str,
    ) -> ReportApis {
        let cn = partition == "aws-cn";
        ReportApis {
            cur: cur.map(|base| {
                let region = if cn { "cn-northwest-1" } else { "us-east-1" };
                aws_sdk_costandusagereport::Client::from_conf(
                    base.config()
                        .to_builder()
                        .credentials_provider(creds.clone())
                        .region(Region::new(region))
                        .retry_config(RetryConfig::adaptive())
                        .build(),
                )
            }),
            exports: exports
                .filter(|_| !cn)
                .map(|base| exports_client(base, creds)),
        }
    }
}

/// A Data Exports client for `creds` (the service's only endpoint: us-east-1).
pub fn exports_client(
    base: &aws_sdk_bcmdataexports::Client,
    creds: &Credentials,
) -> aws_sdk_bcmdataexports::Client {
    let conf = base
        .config()
        .to_builder()
        .credentials_provider(creds.clone())
        .region(Region::new("us-east-1"))
        .retry_config(RetryConfig::adaptive())
        .build();
    aws_sdk_bcmdataexports::Client::from_conf(conf)
}

/// Ask both APIs about `name`. `kind` is what the delivered manifests show,
/// when any were seen: then that kind's API alone can say "missing".
pub async fn define(
    apis: &ReportApis,
    name: &str,
    kind: Option<ReportKind>,
) -> Result<Definition, CallError> {
    let report = match &apis.cur {
        Some(c) => optional(report_definition(c, name).await)?,
        None => None,
    };
    if let Some(Some(destination)) = report {
        return Ok(Definition::Report { destination });
    }
    let export = match &apis.exports {
        Some(c) => optional(export_definition(c, name).await)?,
        None => None,
    };
    if let Some(Some(found)) = export {
        return Ok(found);
    }
    // What answered "not defined here".
    let cur_says_no = report.is_some();
    let exports_say_no = export.is_some();
    let missing = match kind {
        _ if cur_says_no && exports_say_no => true,
        Some(ReportKind::LegacyCur) => cur_says_no,
        Some(ReportKind::DataExport) => exports_say_no,
        None => false,
    };
    if !missing {
        return Ok(Definition::Unknown);
    }
    let mut asked = Vec::new();
    if cur_says_no {
        asked.push("cur:DescribeReportDefinitions");
    }
    if exports_say_no {
        asked.push("bcm-data-exports:ListExports");
    }
    Ok(Definition::Missing { asked })
}

/// An API whose permission was not granted: not asked (`None`).
fn optional<T>(r: Result<T, CallError>) -> Result<Option<T>, CallError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.cause == Cause::AccessDenied => Ok(None),
        Err(e) => Err(e),
    }
}

async fn report_definition(
    client: &aws_sdk_costandusagereport::Client,
    name: &str,
) -> Result<Option<Destination>, CallError> {
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .describe_report_definitions()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CallError::from_sdk(&e))?;
        if let Some(r) = page
            .report_definitions()
            .iter()
            .find(|r| r.report_name() == name)
        {
            return Ok(Some(Destination {
                bucket: r.s3_bucket().to_owned(),
                prefix: r.s3_prefix().to_owned(),
            }));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

async fn export_definition(
    client: &aws_sdk_bcmdataexports::Client,
    name: &str,
) -> Result<Option<Definition>, CallError> {
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .list_exports()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CallError::from_sdk(&e))?;
        if let Some(x) = page.exports().iter().find(|x| x.export_name() == name) {
            let status = x.export_status();
            let unhealthy = status
                .and_then(|s| s.status_code())
                .is_some_and(|c| c.as_str() == "UNHEALTHY")
                .then(|| {
                    status
                        .and_then(|s| s.status_reason())
                        .map_or("no reason given".into(), |r| r.as_str().to_owned())
                });
            let destination = optional(export_destination(client, x.export_arn()).await)?.flatten();
            return Ok(Some(Definition::Export {
                destination,
                unhealthy,
            }));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// `GetExport`'s S3 destination.
async fn export_destination(
    client: &aws_sdk_bcmdataexports::Client,
    arn: &str,
) -> Result<Option<Destination>, CallError> {
    let out = client
        .get_export()
        .export_arn(arn)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    Ok(out
        .export()
        .and_then(|x| x.destination_configurations())
        .and_then(|d| d.s3_destination())
        .map(|s| Destination {
            bucket: s.s3_bucket().to_owned(),
            prefix: s.s3_prefix().to_owned(),
        }))
}
