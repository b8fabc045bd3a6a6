//! The access proof, as the handler sees it: a target (role, External ID,
//! bucket, prefix, report) in, a verdict out. The proof itself lives in
//! `curlew::access`; this seam lets tests decide the verdict.

use curlew::access::{AccessClients, AccessTarget};
use curlew::onboard::ExternalId;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// What is proven. `external_id` is redacted in Debug.
#[derive(Debug, Clone)]
pub struct ProofTarget {
    pub role_arn: String,
    pub external_id: ExternalId,
    /// The stack's account: the role's and the assumed session's must equal it.
    pub expected_account: String,
    pub bucket: String,
    pub prefix: String,
    pub report: String,
}

/// The verdict of one proof attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub passed: bool,
    /// Worth another attempt (AccessDenied on a role created seconds ago,
    /// throttling): IAM is eventually consistent.
    pub retryable: bool,
    /// One line per item; safe to log and to answer (no credentials, no
    /// External ID).
    pub summary: String,
}

pub trait Prover: Send + Sync {
    fn prove(&self, target: &ProofTarget) -> impl Future<Output = Proof> + Send;
}

/// How long a retryable failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// No new attempt starts after this much time since the first.
    pub max_wait: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// About two minutes: a role and its trust policy created by the same
    /// stack seconds before are usually assumable within that.
    fn default() -> Self {
        RetryPolicy {
            max_wait: Duration::from_secs(120),
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Prove, retrying retryable failures with exponential backoff (full
/// jitter on the upper half) for up to `policy.max_wait`. Returns the last
/// verdict and the number of attempts.
pub async fn prove_with_backoff<P: Prover>(
    prover: &P,
    target: &ProofTarget,
    policy: &RetryPolicy,
) -> (Proof, u32) {
    let start = Instant::now();
    let mut delay = policy.first_delay;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let proof = prover.prove(target).await;
        if proof.passed || !proof.retryable {
            return (proof, attempts);
        }
        let half = delay / 2;
        let pause = half + half.mul_f64(fastrand::f64());
        if start.elapsed() + pause > policy.max_wait {
            return (proof, attempts);
        }
        tracing::info!(
            attempts,
            pause_ms = pause.as_millis() as u64,
            summary = %proof.summary,
            "access proof not yet passing; retrying"
        );
        tokio::time::sleep(pause).await;
        delay = (delay * 2).min(policy.max_delay);
    }
}

/// The real proof: `curlew::access::prove`, one attempt per call (the
/// handler's [`prove_with_backoff`] does the retrying, so tests can shorten it).
#[derive(Debug, Clone)]
pub struct AccessProver {
    clients: AccessClients,
}

impl AccessProver {
    pub fn new(clients: AccessClients) -> AccessProver {
        AccessProver { clients }
    }
}

impl Prover for AccessProver {
    async fn prove(&self, t: &ProofTarget) -> Proof {
        let target = AccessTarget {
            role_arn: Some(t.role_arn.clone()),
            external_id: Some(t.external_id.clone()),
            expected_account: Some(t.expected_account.clone()),
            bucket: t.bucket.clone(),
            prefix: t.prefix.clone(),
            report: Some(t.report.clone()),
            ..AccessTarget::default()
        };
        let report = curlew::access::prove(&self.clients, &target).await;
        Proof {
            passed: report.passed(),
            retryable: report.retryable(),
            summary: report.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct DeniedThenOk(AtomicU32, u32);

    impl Prover for DeniedThenOk {
        async fn prove(&self, _: &ProofTarget) -> Proof {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Proof {
                passed: n >= self.1,
                retryable: true,
                summary: format!("attempt {n}"),
            }
        }
    }

    fn target() -> ProofTarget {
        ProofTarget {
            role_arn: "arn:aws:iam::111122223333:role/curlew-read-acme".into(),
            external_id: ExternalId::from_stored("x".repeat(40)),
            expected_account: "111122223333".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
            report: "r".into(),
        }
    }

    #[tokio::test]
    async fn retries_access_denied_until_it_passes_or_time_is_up() {
        let fast = RetryPolicy {
            max_wait: Duration::from_millis(500),
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        };
        let p = DeniedThenOk(AtomicU32::new(0), 3);
        let (proof, attempts) = prove_with_backoff(&p, &target(), &fast).await;
        assert!(proof.passed);
        assert_eq!(attempts, 4);
        let never = DeniedThenOk(AtomicU32::new(0), u32::MAX);
        let t = Instant::now();
        let (proof, attempts) = prove_with_backoff(&never, &target(), &fast).await;
        assert!(!proof.passed && attempts > 3);
        assert!(t.elapsed() <= Duration::from_millis(600));
    }
}
