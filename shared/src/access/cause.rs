//! Why an AWS call failed, in the terms the access proof reports: access
//! denied and KMS named separately, missing bucket, throttling, bad
//! credentials, wrong region. The one classifier of AWS errors: the sweep's
//! diagnosis (`crate::sweep::diagnose`) reads these causes, the policy type
//! AWS names in a denial ([`denying_policy`]) and the region a redirect
//! expects ([`CallError::region`]).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

/// The cause of a failed (or expectedly denied) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// IAM said no (policy, trust policy, SCP, bucket policy).
    AccessDenied,
    /// A KMS key refused (the bucket or object is SSE-KMS and the principal may not use the key).
    Kms,
    NoSuchBucket,
    NotFound,
    /// Rate limited: worth retrying.
    Throttled,
    /// AWS itself failed (5xx, `InternalError`, `ServiceUnavailable`): worth retrying.
    Unavailable,
    /// STS is not activated in the region for the account asked to issue
    /// credentials (`RegionDisabledException`, HTTP 403: not a denial).
    RegionDisabled,
    /// The credentials themselves are unknown, expired or malformed.
    Credentials,
    /// The bucket is in another region than the one asked.
    WrongRegion,
    /// No answer (connection, timeout).
    Network,
    /// The role can be assumed without the External ID, or with a wrong one.
    ConfusedDeputy,
    /// The role's, the stack's and the caller identity's accounts differ.
    AccountMismatch,
    #[default]
    Other,
}

impl Cause {
    /// Worth retrying: the next call (or the next sweep) may well succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Cause::Throttled | Cause::Unavailable | Cause::Network)
    }
}

/// The kind of policy an AccessDenied message names ("with an explicit deny
/// in a service control policy", "because no resource-based policy allows").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyingPolicy {
    ServiceControl,
    ResourceControl,
    ResourceBased,
    IdentityBased,
    PermissionsBoundary,
    Session,
    VpcEndpoint,
}

/// Which policy denied, from AWS's message, if it says (since 2024 it does
/// for S3, STS and most services; a bare "Access Denied" says nothing).
pub fn denying_policy(message: &str) -> Option<DenyingPolicy> {
    const NAMES: [(&str, DenyingPolicy); 7] = [
        ("service control polic", DenyingPolicy::ServiceControl),
        ("resource control polic", DenyingPolicy::ResourceControl),
        ("resource-based polic", DenyingPolicy::ResourceBased),
        ("identity-based polic", DenyingPolicy::IdentityBased),
        ("permissions boundar", DenyingPolicy::PermissionsBoundary),
        ("session polic", DenyingPolicy::Session),
        ("vpc endpoint polic", DenyingPolicy::VpcEndpoint),
    ];
    let lower = message.to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|&(_, p)| p)
}

/// The region S3 says the bucket is in: `expecting 'eu-west-1'` in an
/// `AuthorizationHeaderMalformed` message.
fn expected_region(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("expecting '")?;
    let (region, _) = rest.split_once('\'')?;
    (!region.is_empty()).then(|| region.to_owned())
}

/// A failed call: its cause, the service's code and message (never a
/// credential: AWS error messages carry ARNs and actions, not secrets).
#[derive(Debug, Clone, Default, thiserror::Error)]
#[error("{}", code_message(.code, .message))]
pub struct CallError {
    pub cause: Cause,
    pub code: String,
    pub message: String,
    /// The HTTP status, when AWS answered.
    pub status: Option<u16>,
    /// For a wrong region: the bucket's region, from the `x-amz-bucket-region`
    /// header (a 301 `PermanentRedirect`, a HEAD's bare 301) or the message.
    pub region: Option<String>,
}

fn code_message(code: &str, message: &str) -> String {
    if code.is_empty() {
        message.to_owned()
    } else {
        format!("{code}: {message}")
    }
}

impl CallError {
    /// Classify an SDK error of any operation (S3 and STS share these types).
    pub fn from_sdk<E>(e: &SdkError<E, HttpResponse>) -> CallError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match e {
            SdkError::DispatchFailure(d) => CallError {
                cause: Cause::Network,
                message: format!(
                    "no answer from AWS ({})",
                    if d.is_timeout() {
                        "timeout"
                    } else {
                        "connection failed"
                    }
                ),
                ..CallError::default()
            },
            SdkError::TimeoutError(_) => CallError {
                cause: Cause::Network,
                message: "no answer from AWS (timeout)".into(),
                ..CallError::default()
            },
            _ => {
                let code = e.code().unwrap_or("").to_owned();
                let raw = e.raw_response();
                let status = raw.map(|r| r.status().as_u16());
                let message = match (e.message(), status) {
                    (Some(m), _) if !m.is_empty() => m.to_owned(),
                    (_, Some(s)) => format!("HTTP {s}"),
                    _ => "the request failed before reaching AWS".into(),
                };
                let cause = classify(&code, &message, status);
                let region = (cause == Cause::WrongRegion)
                    .then(|| {
                        raw.and_then(|r| r.headers().get("x-amz-bucket-region"))
                            .map(str::to_owned)
                            .or_else(|| expected_region(&message))
                    })
                    .flatten();
                CallError {
                    cause,
                    code,
                    message,
                    status,
                    region,
                }
            }
        }
    }

    /// The service's error code, or the cause when there is none.
    pub fn code_or_cause(&self) -> String {
        if self.code.is_empty() {
            format!("{:?}", self.cause)
        } else {
            self.code.clone()
        }
    }

    pub fn is_denial(&self) -> bool {
        matches!(self.cause, Cause::AccessDenied | Cause::Kms)
    }

    /// The policy type the denial names, if any.
    pub fn policy(&self) -> Option<DenyingPolicy> {
        denying_policy(&self.message)
    }
}

/// The cause from an error code, message and HTTP status. KMS comes first:
/// S3 reports a refused key as AccessDenied with "kms:" in the message.
pub fn classify(code: &str, message: &str, status: Option<u16>) -> Cause {
    let lower = message.to_ascii_lowercase();
    if code.starts_with("KMS.")
        || code.contains("KMS")
        || lower.contains("kms:")
        || lower.contains("kms key")
        || lower.contains("aws kms")
    {
        return Cause::Kms;
    }
    match code {
        c if c.contains("Throttl") => Cause::Throttled,
        "SlowDown" | "TooManyRequests" | "RequestLimitExceeded" | "TooManyRequestsException" => {
            Cause::Throttled
        }
        "RegionDisabledException" => Cause::RegionDisabled,
        "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceFailureException"
        | "ServiceException" => Cause::Unavailable,
        "AccessDenied" | "AccessDeniedException" | "AllAccessDisabled" => Cause::AccessDenied,
        "NoSuchBucket" => Cause::NoSuchBucket,
        "NoSuchKey" | "NotFound" => Cause::NotFound,
        "InvalidClientTokenId"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidToken"
        | "UnrecognizedClientException" => Cause::Credentials,
        "PermanentRedirect"
        | "AuthorizationHeaderMalformed"
        | "IllegalLocationConstraintException" => Cause::WrongRegion,
        _ => match status {
            Some(429) => Cause::Throttled,
            Some(403) => Cause::AccessDenied,
            Some(404) => Cause::NotFound,
            Some(301 | 307) => Cause::WrongRegion,
            Some(500..=599) => Cause::Unavailable,
            _ => Cause::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_is_told_apart_from_access_denied() {
        let kms = "User: arn:aws:sts::111122223333:assumed-role/r/s is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/k";
        assert_eq!(classify("AccessDenied", kms, Some(403)), Cause::Kms);
        assert_eq!(classify("KMS.DisabledException", "", Some(400)), Cause::Kms);
        assert_eq!(
            classify("AccessDenied", "Access Denied", Some(403)),
            Cause::AccessDenied
        );
        assert_eq!(classify("", "", Some(403)), Cause::AccessDenied);
    }

    #[test]
    fn other_causes() {
        assert_eq!(
            classify("Throttling", "Rate exceeded", Some(400)),
            Cause::Throttled
        );
        assert_eq!(classify("SlowDown", "", Some(503)), Cause::Throttled);
        assert_eq!(classify("", "", Some(429)), Cause::Throttled);
        assert_eq!(
            classify("NoSuchBucket", "gone", Some(404)),
            Cause::NoSuchBucket
        );
        assert_eq!(classify("NoSuchKey", "", Some(404)), Cause::NotFound);
        assert_eq!(
            classify("InvalidClientTokenId", "", Some(403)),
            Cause::Credentials
        );
        assert_eq!(
            classify("PermanentRedirect", "", Some(301)),
            Cause::WrongRegion
        );
        assert_eq!(classify("InternalError", "", Some(500)), Cause::Unavailable);
        assert_eq!(classify("", "", Some(503)), Cause::Unavailable);
        assert_eq!(classify("Teapot", "", Some(418)), Cause::Other);
        assert_eq!(
            classify("RegionDisabledException", "STS is not activated", Some(403)),
            Cause::RegionDisabled
        );
    }

    #[test]
    fn the_denying_policy_and_the_expected_region_are_read_from_the_message() {
        let m = |tail: &str| {
            format!("User: arn:aws:sts::111122223333:assumed-role/r/s is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::b/k\" {tail}")
        };
        for (tail, want) in [
            (
                "with an explicit deny in a service control policy",
                DenyingPolicy::ServiceControl,
            ),
            (
                "because no service control policy allows the s3:GetObject action",
                DenyingPolicy::ServiceControl,
            ),
            (
                "with an explicit deny in a resource control policy",
                DenyingPolicy::ResourceControl,
            ),
            (
                "because no resource-based policy allows the s3:GetObject action",
                DenyingPolicy::ResourceBased,
            ),
            (
                "because no identity-based policy allows the s3:GetObject action",
                DenyingPolicy::IdentityBased,
            ),
            (
                "with an explicit deny in a permissions boundary",
                DenyingPolicy::PermissionsBoundary,
            ),
            (
                "because no session policy allows the s3:GetObject action",
                DenyingPolicy::Session,
            ),
            (
                "with an explicit deny in a VPC endpoint policy",
                DenyingPolicy::VpcEndpoint,
            ),
        ] {
            assert_eq!(denying_policy(&m(tail)), Some(want), "{tail}");
        }
        assert_eq!(denying_policy("Access Denied"), None);
        assert_eq!(
            expected_region("The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(expected_region("Access Denied"), None);
    }
}
