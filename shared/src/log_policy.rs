//! What may reach a log. The AWS SDK's own output prints credentials: at
//! debug each request's configuration, and `aws_config` at info the access
//! key id it loaded. So every binary caps the SDK's crates at `warn`,
//! whatever filter the operator asks for.

/// Targets whose debug/trace output can carry credentials or presigned
/// URLs, by prefix (a filter's target matches every target that starts with
/// it): `aws_sdk` is every AWS service client, `aws_smithy` the runtime.
pub const CAPPED_CRATES: &[&str] = &[
    "aws_smithy",
    "aws_sdk",
    "aws_sigv4",
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "hyper",
    "rustls",
];

/// The operator's filter (`warn`, `curlew=debug`, ...) with the capped crates
/// held at `warn`: directives naming them are dropped and replaced. Span
/// directives (`[invoke]=debug`, `curlew[invoke]=debug`) are dropped too:
/// EnvFilter applies one to every event inside a matching span, whatever
/// the event's crate, past any per-crate cap.
pub fn safe_log_filter(requested: &str) -> String {
    let unsafe_directive = |d: &str| {
        let target = d.split(['=', '[']).next().unwrap_or("").trim();
        d.contains('[') || CAPPED_CRATES.iter().any(|c| target.starts_with(c))
    };
    let mut out: Vec<String> = requested
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !unsafe_directive(d))
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
        assert!(f.contains("aws_smithy=warn") && f.contains("aws_config=warn"));
        assert!(!f.contains("=info"), "{f}");
        assert!(safe_log_filter("").starts_with("aws_smithy=warn"));
        // Every service client, also one added later, by prefix.
        let f = safe_log_filter("aws_sdk_costandusagereport=trace,aws_sdk_health::client=debug");
        assert!(!f.contains("trace") && !f.contains("debug"), "{f}");
    }

    /// What reaches the log, through the real EnvFilter: span directives
    /// (which EnvFilter applies to every event in the span, past a
    /// per-crate cap) cannot lift the cap; the operator's own crates still
    /// get what a plain directive asks.
    #[test]
    fn a_span_directive_cannot_lift_the_cap() {
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let filter = tracing_subscriber::EnvFilter::try_new(safe_log_filter(
            "info,[invoke]=trace,aws[invoke]=trace,curlew[invoke]=trace,curlew=debug",
        ))
        .unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("invoke");
            let _in = span.enter();
            tracing::debug!(target: "aws_config::profile", "loaded AKIDLEAKED");
            tracing::debug!(target: "aws_sdk_sts::config", "request with AKIDLEAKED2");
            tracing::warn!(target: "aws_smithy_runtime::client", "a warning stays");
            tracing::debug!(target: "curlew::sweep", "curlew debug kept");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("AKIDLEAKED"), "{out}");
        assert!(out.contains("a warning stays"), "{out}");
        assert!(out.contains("curlew debug kept"), "{out}");
    }
}
