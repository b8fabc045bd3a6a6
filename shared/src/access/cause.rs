//! Why an AWS call failed, in the terms the access proof reports: access
//! denied and KMS named separately, missing bucket, throttling, bad
//! credentials, wrong region.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

/// The cause of a failed (or expectedly denied) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    Other,
}

/// A failed call: its cause, the service's code and message (never a
/// credential: AWS error messages carry ARNs and actions, not secrets).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", code_message(.code, .message))]
pub struct CallError {
    pub cause: Cause,
    pub code: String,
    pub message: String,
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
                code: String::new(),
                message: format!(
                    "no answer from AWS ({})",
                    if d.is_timeout() {
                        "timeout"
                    } else {
                        "connection failed"
                    }
                ),
            },
            SdkError::TimeoutError(_) => CallError {
                cause: Cause::Network,
                code: String::new(),
                message: "no answer from AWS (timeout)".into(),
            },
            _ => {
                let code = e.code().unwrap_or("").to_owned();
                let status = e.raw_response().map(|r| r.status().as_u16());
                let message = match (e.message(), status) {
                    (Some(m), _) if !m.is_empty() => m.to_owned(),
                    (_, Some(s)) => format!("HTTP {s}"),
                    _ => "the request failed before reaching AWS".into(),
                };
                CallError {
                    cause: classify(&code, &message, status),
                    code,
                    message,
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
        assert_eq!(classify("InternalError", "", Some(500)), Cause::Other);
    }
}
