//! Data Exports' own word on an export (the read policy's `--data-exports`
//! option): `ListExports` through the customer's credentials, the named
//! export's `ExportStatus`. UNHEALTHY (with its `StatusReason`:
//! INSUFFICIENT_PERMISSION, BILL_OWNER_CHANGED, INTERNAL_FAILURE) is
//! export-unhealthy. Without the permission (AccessDenied) the check is
//! skipped: it is optional. A legacy CUR report is not an export, so a name
//! not listed says nothing here (no manifest at all is export-missing).

use crate::access::{CallError, Cause};
use aws_sdk_bcmdataexports::config::retry::RetryConfig;
use aws_sdk_bcmdataexports::config::{Credentials, Region};

/// Pages of 20 exports; no account has more than this many.
const MAX_PAGES: usize = 50;

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

/// `Some(reason)` when the export named `name` is UNHEALTHY; `None` when it
/// is healthy, not listed, or the permission is not granted.
pub async fn unhealthy(
    client: &aws_sdk_bcmdataexports::Client,
    name: &str,
) -> Result<Option<String>, CallError> {
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = match client
            .list_exports()
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) => {
                let e = CallError::from_sdk(&e);
                // The optional permission was not granted: nothing to say.
                return if e.cause == Cause::AccessDenied {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        if let Some(x) = page.exports().iter().find(|x| x.export_name() == name) {
            let status = x.export_status();
            let bad = status
                .and_then(|s| s.status_code())
                .is_some_and(|c| c.as_str() == "UNHEALTHY");
            return Ok(bad.then(|| {
                status
                    .and_then(|s| s.status_reason())
                    .map_or("no reason given".into(), |r| r.as_str().to_owned())
            }));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(None),
        }
    }
    Ok(None)
}
