//! The access proof: what curlew can and cannot do with a customer's
//! billing bucket, item by item (issue 5, item 3).
//!
//! - `assume`: the role with the External ID (must work), without it and with
//!   a wrong one (must be refused: otherwise a confused deputy), and the
//!   accounts (role ARN = expected = caller identity);
//! - `bucket`: region, list and read at the prefix (allowed), list and read
//!   outside it and a probe write (expected denied: a warning if allowed);
//! - `delivery`: the report/export found under the prefix, via discovery;
//! - `render`: the table and the JSON.
//!
//! Secrets (External ID, keys, session tokens) go only into the requests
//! that need them; every detail is scrubbed of them before it is reported.

mod assume;
mod bucket;
mod cause;
mod delivery;
pub mod recent;
pub mod render;
mod session;

pub use cause::{classify, denying_policy, CallError, Cause, DenyingPolicy};
pub use delivery::FoundReport;
pub use session::{partition_of, source_client, source_credentials, SessionError, SessionPurpose};

use crate::onboard::ExternalId;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// What to prove access to, and how curlew reaches it.
#[derive(Debug, Clone, Default)]
pub struct AccessTarget {
    /// Cross-account role mode.
    pub role_arn: Option<String>,
    /// Required with `role_arn`.
    pub external_id: Option<ExternalId>,
    /// Legacy IAM user keys mode.
    pub access_keys: Option<AccessKeys>,
    /// The stack's account (custom resource) or the payer account.
    pub expected_account: Option<String>,
    pub bucket: String,
    pub prefix: String,
    /// The report or export expected under the prefix.
    pub report: Option<String>,
}

/// An IAM user's access keys (legacy mode). `Debug` shows neither.
#[derive(Clone)]
pub struct AccessKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessKeys(redacted)")
    }
}

/// How the proof reaches the customer's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessMode {
    Role,
    AccessKeys,
    /// curlew's own principal, allowed by the customer's bucket policy.
    BucketPolicy,
}

/// curlew's own clients. Clients for other credentials and regions are
/// derived from these (`to_builder`), so an endpoint override (moto), a mock
/// interceptor and the [timeouts](customer_timeouts) carry over.
#[derive(Debug, Clone)]
pub struct AccessClients {
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    /// AWS Organizations, for the sweep's linked accounts (`None`: not read).
    pub org: Option<aws_sdk_organizations::Client>,
    /// Data Exports, for the sweep's export status (`None`: not read).
    pub exports: Option<aws_sdk_bcmdataexports::Client>,
    /// Cost and Usage Reports, for the sweep's report definitions (`None`: not read).
    pub cur: Option<aws_sdk_costandusagereport::Client>,
    timeouts: TimeoutConfig,
}

/// How long curlew waits for AWS on a customer's behalf: a call to a
/// customer's bucket, STS or a billing API that hangs must end as a
/// transient failure, never hold a sweep or a proof until the function's
/// own deadline. (Only the response head is timed for a streamed GET: a
/// large data file's body is read for as long as it takes.)
pub fn customer_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(15))
        .operation_timeout(Duration::from_secs(45))
        .build()
}

/// One place that puts `$t` on a client of any AWS SDK crate.
macro_rules! timed {
    ($client:expr, $krate:ident, $t:expr) => {
        $krate::Client::from_conf(
            $client
                .config()
                .to_builder()
                .timeout_config($t.clone())
                .build(),
        )
    };
}

impl AccessClients {
    pub fn new(sts: aws_sdk_sts::Client, s3: aws_sdk_s3::Client) -> Self {
        let timeouts = customer_timeouts();
        AccessClients {
            sts: timed!(sts, aws_sdk_sts, timeouts),
            s3: timed!(s3, aws_sdk_s3, timeouts),
            org: None,
            exports: None,
            cur: None,
            timeouts,
        }
    }

    /// Other timeouts for every client (tests: a hang in seconds).
    pub fn with_timeouts(mut self, timeouts: TimeoutConfig) -> Self {
        self.sts = timed!(self.sts, aws_sdk_sts, timeouts);
        self.s3 = timed!(self.s3, aws_sdk_s3, timeouts);
        self.org = self.org.map(|c| timed!(c, aws_sdk_organizations, timeouts));
        self.exports = self
            .exports
            .map(|c| timed!(c, aws_sdk_bcmdataexports, timeouts));
        self.cur = self
            .cur
            .map(|c| timed!(c, aws_sdk_costandusagereport, timeouts));
        self.timeouts = timeouts;
        self
    }

    /// With a Data Exports client (the sweep derives the customer's from it).
    pub fn with_exports(mut self, exports: aws_sdk_bcmdataexports::Client) -> Self {
        self.exports = Some(timed!(exports, aws_sdk_bcmdataexports, self.timeouts));
        self
    }

    /// With a Cost and Usage Reports client (the sweep derives the customer's from it).
    pub fn with_cur(mut self, cur: aws_sdk_costandusagereport::Client) -> Self {
        self.cur = Some(timed!(cur, aws_sdk_costandusagereport, self.timeouts));
        self
    }

    /// With the Data Exports and Cost and Usage Reports clients from the
    /// standard AWS settings (the optional report checks).
    pub async fn with_report_apis_from_env(self) -> Self {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        self.with_exports(aws_sdk_bcmdataexports::Client::new(&conf))
            .with_cur(aws_sdk_costandusagereport::Client::new(&conf))
    }

    /// With an Organizations client (the sweep derives the customer's from it).
    pub fn with_org(mut self, org: aws_sdk_organizations::Client) -> Self {
        self.org = Some(timed!(org, aws_sdk_organizations, self.timeouts));
        self
    }

    /// From the standard AWS settings (env, profile, AWS_ENDPOINT_URL; path-style S3 then).
    pub async fn from_env() -> Self {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let region = conf
            .region()
            .cloned()
            .unwrap_or_else(|| Region::new("us-east-1"));
        let sts = aws_sdk_sts::config::Builder::from(&conf).region(region.clone());
        let mut s3 = aws_sdk_s3::config::Builder::from(&conf).region(region);
        if std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        {
            s3 = s3.force_path_style(true);
        }
        // The report APIs are opt-in (`with_report_apis_from_env`): optional checks.
        AccessClients::new(
            aws_sdk_sts::Client::from_conf(sts.build()),
            aws_sdk_s3::Client::from_conf(s3.build()),
        )
        .with_org(aws_sdk_organizations::Client::new(&conf))
    }

    /// An S3 client with `creds` (curlew's own when `None`) in `region`.
    pub fn s3_with(&self, creds: Option<&Credentials>, region: Option<&str>) -> aws_sdk_s3::Client {
        let mut b = self.s3.config().to_builder();
        if let Some(c) = creds {
            b = b.credentials_provider(c.clone());
        }
        if let Some(r) = region {
            b = b.region(Region::new(r.to_owned()));
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    /// An STS client with `creds`.
    pub fn sts_with(&self, creds: &Credentials) -> aws_sdk_sts::Client {
        let b = self
            .sts
            .config()
            .to_builder()
            .credentials_provider(creds.clone());
        aws_sdk_sts::Client::from_conf(b.build())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "PASS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        })
    }
}

/// One line of the proof.
#[derive(Debug, Clone, Serialize)]
pub struct CheckItem {
    pub id: &'static str,
    pub title: String,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

impl CheckItem {
    fn new(id: &'static str, title: &str, outcome: Outcome, detail: impl Into<String>) -> Self {
        CheckItem {
            id,
            title: title.to_owned(),
            outcome,
            detail: detail.into(),
            cause: None,
        }
    }

    fn because(mut self, cause: Cause) -> Self {
        self.cause = Some(cause);
        self
    }
}

/// The whole proof.
#[derive(Debug, Clone, Serialize)]
pub struct AccessReport {
    pub mode: AccessMode,
    pub bucket: String,
    pub prefix: String,
    /// The bucket's region (GetBucketLocation).
    pub region: Option<String>,
    /// The account of the identity that read the bucket (GetCallerIdentity).
    pub account: Option<String>,
    /// Reports/exports found under the prefix.
    pub reports: Vec<FoundReport>,
    pub items: Vec<CheckItem>,
    /// How many times the proof ran (see [`prove_with_retry`]).
    pub attempts: u32,
}

const ASSUME: &str = "assume";
/// The items a just-created role or policy can deny until IAM propagates.
const PROPAGATING: [&str; 4] = [ASSUME, "bucket-region", "list-prefix", "read-prefix"];

impl AccessReport {
    /// No item failed.
    pub fn passed(&self) -> bool {
        self.items.iter().all(|i| i.outcome != Outcome::Fail)
    }

    /// Worth running again: something failed, and every failure is
    /// throttling, a 5xx, or an AccessDenied IAM's eventual consistency
    /// explains: the assume with the External ID (a role created seconds
    /// ago), or the reads at the prefix right after a successful assume (a
    /// read policy attached to the role seconds after its trust policy).
    pub fn retryable(&self) -> bool {
        let mut fails = self.failures().peekable();
        fails.peek().is_some()
            && fails.all(|i| {
                matches!(i.cause, Some(Cause::Throttled | Cause::Unavailable))
                    || (i.cause == Some(Cause::AccessDenied) && PROPAGATING.contains(&i.id))
            })
    }

    pub fn failures(&self) -> impl Iterator<Item = &CheckItem> {
        self.items.iter().filter(|i| i.outcome == Outcome::Fail)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &CheckItem> {
        self.items.iter().filter(|i| i.outcome == Outcome::Warn)
    }

    /// One line of at most 300 characters (a CloudFormation Reason).
    pub fn summary(&self) -> String {
        let fails: Vec<&CheckItem> = self.failures().collect();
        let warns: Vec<&str> = self.warnings().map(|i| i.id).collect();
        let s = if fails.is_empty() {
            let mut s = format!("access proven for s3://{}/{}", self.bucket, self.prefix);
            if let Some(r) = &self.region {
                s.push_str(&format!(" ({r})"));
            }
            if let Some(r) = self.reports.first() {
                s.push_str(&format!(
                    "; {} {} newest {}",
                    r.kind,
                    r.name,
                    r.newest_period.as_deref().unwrap_or("-")
                ));
            }
            if !warns.is_empty() {
                s.push_str(&format!("; warnings: {}", warns.join(", ")));
            }
            s
        } else {
            let parts: Vec<String> = fails
                .iter()
                .map(|i| format!("{}: {}", i.id, i.detail))
                .collect();
            format!("access check failed: {}", parts.join("; "))
        };
        let one_line: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        truncate(&one_line, 300)
    }
}

/// At most `max` characters, with "..." when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

/// Run the proof once.
pub async fn prove(clients: &AccessClients, target: &AccessTarget) -> AccessReport {
    let prefix = normalise_prefix(&target.prefix);
    let mode = match (&target.role_arn, &target.access_keys) {
        (Some(_), _) => AccessMode::Role,
        (None, Some(_)) => AccessMode::AccessKeys,
        (None, None) => AccessMode::BucketPolicy,
    };
    let mut report = AccessReport {
        mode,
        bucket: target.bucket.clone(),
        prefix: prefix.clone(),
        region: None,
        account: None,
        reports: Vec::new(),
        items: Vec::new(),
        attempts: 1,
    };
    let creds = match assume::identity(clients, target, &mut report).await {
        Some(c) => c,
        None => {
            for &(id, title) in bucket::ITEMS.iter().chain(delivery::ITEMS) {
                report.items.push(CheckItem::new(
                    id,
                    title,
                    Outcome::Skip,
                    "needs working credentials (see above)",
                ));
            }
            return scrubbed(report, target);
        }
    };
    let probes = bucket::Probes {
        clients,
        creds: creds.as_ref(),
        bucket: &target.bucket,
        prefix: &prefix,
    };
    let client = probes.run(&mut report).await;
    match client {
        Some(client) => {
            delivery::find(
                client,
                &target.bucket,
                &prefix,
                target.report.as_deref(),
                &mut report,
            )
            .await
        }
        None => {
            for &(id, title) in delivery::ITEMS {
                report.items.push(CheckItem::new(
                    id,
                    title,
                    Outcome::Skip,
                    "needs a readable prefix (see above)",
                ));
            }
        }
    }
    for i in &report.items {
        tracing::debug!(item = i.id, outcome = %i.outcome, "access proof");
    }
    scrubbed(report, target)
}

/// How long [`prove_with_retry`] keeps trying.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Give up once this much time has passed (the next wait would cross it).
    pub total: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// About two minutes: long enough for a new role to become assumable.
    fn default() -> Self {
        RetryPolicy {
            total: Duration::from_secs(120),
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// Run the proof again while it is [`AccessReport::retryable`], with doubling
/// waits, until it passes, fails for good, or `policy.total` would be crossed.
pub async fn prove_with_retry(
    clients: &AccessClients,
    target: &AccessTarget,
    policy: &RetryPolicy,
) -> AccessReport {
    let start = Instant::now();
    let mut wait = policy.first_backoff;
    let mut attempts = 1;
    loop {
        let mut report = prove(clients, target).await;
        report.attempts = attempts;
        if !report.retryable() || start.elapsed() + wait > policy.total {
            return report;
        }
        tracing::info!(
            attempt = attempts,
            wait_ms = wait.as_millis() as u64,
            "access proof: retrying"
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(policy.max_backoff);
        attempts += 1;
    }
}

/// `""` stays the whole bucket; otherwise no leading `/` and one trailing `/`.
pub fn normalise_prefix(p: &str) -> String {
    let p = p.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

/// Remove any secret of `target` that might have found its way into a detail.
fn scrubbed(mut report: AccessReport, target: &AccessTarget) -> AccessReport {
    let mut secrets: Vec<&str> = Vec::new();
    if let Some(id) = &target.external_id {
        secrets.push(id.expose());
    }
    if let Some(k) = &target.access_keys {
        secrets.push(&k.access_key_id);
        secrets.push(&k.secret_access_key);
    }
    for item in &mut report.items {
        for s in secrets.iter().filter(|s| s.len() >= 4) {
            if item.detail.contains(*s) {
                item.detail = item.detail.replace(*s, "(redacted)");
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(items: Vec<CheckItem>) -> AccessReport {
        AccessReport {
            mode: AccessMode::Role,
            bucket: "b".into(),
            prefix: "cur/".into(),
            region: Some("eu-west-1".into()),
            account: None,
            reports: Vec::new(),
            items,
            attempts: 1,
        }
    }

    fn item(id: &'static str, outcome: Outcome, cause: Option<Cause>) -> CheckItem {
        CheckItem {
            id,
            title: id.into(),
            outcome,
            detail: format!("{id} detail"),
            cause,
        }
    }

    #[test]
    fn retryable_only_for_a_denied_first_assume_or_throttling() {
        let denied = item(ASSUME, Outcome::Fail, Some(Cause::AccessDenied));
        let throttled = item("list-prefix", Outcome::Fail, Some(Cause::Throttled));
        let skip = item("read-prefix", Outcome::Skip, None);
        assert!(report(vec![denied.clone(), skip.clone()]).retryable());
        assert!(report(vec![throttled.clone(), skip]).retryable());
        let deputy = item("assume-without-id", Outcome::Fail, Some(Cause::Other));
        assert!(!report(vec![denied.clone(), deputy]).retryable());
        let kms = item("read-prefix", Outcome::Fail, Some(Cause::Kms));
        assert!(!report(vec![kms]).retryable());
        let pass = report(vec![item(ASSUME, Outcome::Pass, None)]);
        assert!(pass.passed() && !pass.retryable());
        assert!(!report(vec![denied]).passed());
    }

    #[test]
    fn summary_is_one_short_line() {
        let mut long = item("read-prefix", Outcome::Fail, Some(Cause::Kms));
        long.detail = format!("line one\nline two {}", "x".repeat(400));
        let s = report(vec![long, item("write-probe", Outcome::Warn, None)]).summary();
        assert!(s.chars().count() <= 300, "{s}");
        assert!(!s.contains('\n'));
        assert!(s.starts_with("access check failed: read-prefix: line one line two"));
        let ok = report(vec![
            item(ASSUME, Outcome::Pass, None),
            item("write-probe", Outcome::Warn, None),
        ])
        .summary();
        assert_eq!(
            ok,
            "access proven for s3://b/cur/ (eu-west-1); warnings: write-probe"
        );
    }

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix(""), "");
        assert_eq!(normalise_prefix("/cur"), "cur/");
        assert_eq!(normalise_prefix("cur/"), "cur/");
    }

    #[test]
    fn secrets_echoed_in_an_error_never_reach_a_rendering() {
        let id = ExternalId::mint().unwrap();
        let keys = AccessKeys {
            access_key_id: "AKIAEXAMPLEKEY123456".into(),
            secret_access_key: "s3cr3t/abcdefghij".into(),
        };
        let target = AccessTarget {
            external_id: Some(id.clone()),
            access_keys: Some(keys.clone()),
            ..AccessTarget::default()
        };
        let mut echoed = item(ASSUME, Outcome::Fail, Some(Cause::Other));
        echoed.detail = format!(
            "bad request: ExternalId={} key={} secret={}",
            id.expose(),
            keys.access_key_id,
            keys.secret_access_key
        );
        let r = scrubbed(report(vec![echoed]), &target);
        for text in [render::table(&r), render::json(&r), r.summary()] {
            assert!(text.contains("ExternalId=(redacted)"), "{text}");
            for secret in [id.expose(), &keys.access_key_id, &keys.secret_access_key] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }

    #[test]
    fn keys_debug_is_redacted() {
        let k = AccessKeys {
            access_key_id: "AKIAEXAMPLEKEY123456".into(),
            secret_access_key: "s3cr3t/abc".into(),
        };
        let d = format!("{k:?}");
        assert!(!d.contains("AKIA") && !d.contains("s3cr3t"));
    }
}
