//! Logging for every function: JSON lines, the level from
//! `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls) or `RUST_LOG`,
//! and the SDK's crates capped by [`curlew::log_policy`] whatever is asked.

use curlew::log_policy::safe_log_filter;

/// The filter a function runs with, from its environment.
pub fn filter_from_env() -> String {
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    safe_log_filter(&requested)
}

/// Install the subscriber (once, at cold start).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_new(filter_from_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(safe_log_filter("info")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .with_current_span(false)
        .without_time()
        .init();
}
