//! What may be logged. The AWS SDK crates print resolved credentials (access
//! key ids, session tokens) and signing material at debug and trace, so they
//! are held at info whatever RUST_LOG says; everything of curlew's own may
//! log at any level (its logs name stacks and requests, never a ResponseURL's
//! query, an External ID, a token or a key).

use tracing_subscriber::EnvFilter;

/// The SDK crates that must never log below info.
pub const SDK_TARGETS: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_s3",
    "aws_sdk_sts",
    "aws_sigv4",
    "aws_smithy_http_client",
    "aws_smithy_mocks",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
];

/// `base`, with the SDK crates capped at info.
pub fn log_filter(base: EnvFilter) -> EnvFilter {
    SDK_TARGETS.iter().fold(base, |f, t| {
        f.add_directive(format!("{t}=info").parse().expect("a valid directive"))
    })
}
