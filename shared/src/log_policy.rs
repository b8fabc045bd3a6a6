//! What may reach a log. The AWS SDK's own output prints credentials: at
//! debug each request's configuration, and `aws_config` at info the access
//! key id it loaded. So every binary caps the SDK's crates at `warn`,
//! whatever filter the operator asks for.

/// Crates whose debug/trace output can carry credentials or presigned URLs.
pub const CAPPED_CRATES: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_sigv4",
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_s3",
    "aws_sdk_sts",
    "aws_sdk_sns",
    "aws_sdk_sqs",
    "aws_sdk_organizations",
    "aws_sdk_bcmdataexports",
    "hyper",
    "hyper_util",
    "rustls",
];

/// The operator's filter (`warn`, `curlew=debug`, ...) with the capped crates
/// held at `warn`: directives naming them are dropped and replaced.
pub fn safe_log_filter(requested: &str) -> String {
    let named = |d: &str| {
        let target = d.split(['=', '[']).next().unwrap_or("").trim();
        CAPPED_CRATES
            .iter()
            .any(|c| target == *c || target.starts_with(&format!("{c}::")))
    };
    let mut out: Vec<String> = requested
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !named(d))
        .map(str::to_owned)
        .collect();
    out.extend(CAPPED_CRATES.iter().map(|c| format!("{c}=warn")));
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_crates_are_capped_whatever_is_asked() {
        let f = safe_log_filter("debug,aws_smithy_runtime=trace,curlew=trace");
        assert!(f.starts_with("debug,curlew=trace,"));
        assert!(!f.contains("aws_smithy_runtime=trace"));
        assert!(f.contains("aws_smithy_runtime=warn") && f.contains("aws_config=warn"));
        assert!(!f.contains("=info"), "{f}");
        assert!(safe_log_filter("").starts_with("aws_smithy_runtime=warn"));
    }
}
