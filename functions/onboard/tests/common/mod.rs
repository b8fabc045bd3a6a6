//! Shared by the onboard tests: curlew's store on moto_server, the events/
//! files re-pointed at a 127.0.0.1 stub, a prover whose verdicts the test
//! scripts, and a log capture that the tests search for secrets.
#![allow(dead_code)]

pub use curlew_testkit::moto;
pub mod stub;

use curlew::onboard::{ExternalId, OnboardingHints, OnboardingToken, Onboardings};
use onboard::prove::{Proof, ProofTarget, Prover, RetryPolicy};
use onboard::response::ResponsePolicy;
use onboard::{Config, Deps, Settings};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use stub::{Reply, Stub};

pub const STACK_ACCOUNT: &str = "111122223333";
/// A presigned query as CloudFormation's: temporary credentials, a session
/// token, a signature. None of it may reach a log.
pub const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAQWERTYUIOPASDFGH%2F20240105%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240105T100000Z&X-Amz-Expires=7199&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef";

// ---- events ---------------------------------------------------------------

pub fn event_file(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The CloudFormation request inside an events/ file.
pub fn request_of(name: &str) -> Value {
    let ev = event_file(name);
    serde_json::from_str(ev["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap()
}

/// `request` back inside the SNS event of `name`.
pub fn sns_event(name: &str, request: &Value) -> Value {
    let mut ev = event_file(name);
    ev["Records"][0]["Sns"]["Message"] = request.to_string().into();
    ev
}

/// What CloudFormation percent-encodes in the response key (':' and '|', not '/').
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The path CloudFormation puts in a ResponseURL for this request.
pub fn response_path(req: &Value) -> String {
    let key = format!(
        "{}|{}|{}",
        req["StackId"].as_str().unwrap(),
        req["LogicalResourceId"].as_str().unwrap(),
        req["RequestId"].as_str().unwrap()
    );
    format!("/{}", utf8_percent_encode(&key, KEY))
}

/// Point the request's ResponseURL at `http://127.0.0.1:<port>` (its path
/// and a presigned query as CloudFormation makes them).
pub fn answer_to(req: &mut Value, port: u16) {
    req["ResponseURL"] = format!(
        "http://127.0.0.1:{port}{}?{PRESIGNED_QUERY}",
        response_path(req)
    )
    .into();
}

pub fn stack_id(name: &str, account: &str) -> String {
    format!(
        "arn:aws:cloudformation:us-east-1:{account}:stack/{name}/0c1d2e3f-aaaa-bbbb-cccc-{account}"
    )
}

// ---- the world -------------------------------------------------------------

pub struct World {
    pub deps: Deps,
    pub stub: Stub,
    pub onboardings: Onboardings,
    pub tenant: String,
    pub token: OnboardingToken,
    pub external_id: ExternalId,
}

pub fn fast_settings(port: u16) -> Settings {
    Settings {
        answer_margin: Duration::from_secs(2),
        retry: RetryPolicy {
            max_wait: Duration::from_millis(400),
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        },
        response_policy: ResponsePolicy::aws_and_loopback_for_tests(port),
    }
}

/// A store bucket on moto, a stub to answer to, and a pending onboarding of
/// tenant "acme" (its token and External ID are remembered as secrets).
pub async fn world(tag: &str) -> World {
    capture_logs();
    let stub = Stub::start(Reply::Ok).await;
    let s3 = moto::s3_client();
    let bucket = moto::new_bucket(&s3, &format!("{tag}-store")).await;
    let config = Config {
        store_bucket: bucket,
        store_prefix: "curlew".into(),
    };
    let deps = Deps::new(config, fast_settings(stub.port()), s3).unwrap();
    let onboardings = deps.onboardings();
    let started = onboardings
        .begin("acme", OnboardingHints::default())
        .await
        .unwrap();
    remember_secret(started.token.expose());
    remember_secret(started.external_id.expose());
    World {
        deps,
        stub,
        onboardings,
        tenant: "acme".into(),
        token: started.token,
        external_id: started.external_id,
    }
}

impl World {
    /// The events/ request `name`, carrying this world's token and answering to its stub.
    pub fn request(&self, name: &str) -> Value {
        let mut r = request_of(name);
        r["ResourceProperties"]["OnboardingToken"] = self.token.expose().into();
        answer_to(&mut r, self.stub.port());
        r
    }
}

// ---- a scripted prover -----------------------------------------------------

type Verdict = Box<dyn Fn(u32) -> Option<Proof> + Send + Sync>;

/// Proves by script: `verdict(n)` for the n-th call (from 0); `None` hangs.
pub struct ScriptedProver {
    verdict: Verdict,
    calls: AtomicU32,
    pub seen: Mutex<Vec<ProofTarget>>,
}

impl ScriptedProver {
    pub fn new(verdict: impl Fn(u32) -> Option<Proof> + Send + Sync + 'static) -> Self {
        ScriptedProver {
            verdict: Box::new(verdict),
            calls: AtomicU32::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn passing() -> Self {
        Self::new(|_| Some(pass()))
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

pub fn pass() -> Proof {
    Proof {
        passed: true,
        retryable: false,
        summary: "assume with External ID: ok; list/read at prefix: ok; report curlew-cur found"
            .into(),
    }
}

pub fn denied(retryable: bool, summary: &str) -> Proof {
    Proof {
        passed: false,
        retryable,
        summary: summary.into(),
    }
}

impl Prover for ScriptedProver {
    async fn prove(&self, target: &ProofTarget) -> Proof {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(target.clone());
        match (self.verdict)(n) {
            Some(p) => p,
            None => std::future::pending().await,
        }
    }
}

// ---- logs -------------------------------------------------------------------

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Buf> = OnceLock::new();
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Every log line of this test binary goes to one buffer: at TRACE from
/// curlew and onboard, with the crates `curlew::log_policy` caps (the AWS
/// SDK, hyper, rustls: at debug they print credentials) held at warn, as the
/// function runs.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Buf::default();
        let w = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                curlew::log_policy::safe_log_filter("trace"),
            ))
            .with_ansi(false)
            .with_writer(move || w.clone())
            .init();
        buf
    });
}

pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.get().expect("capture_logs first").0.lock().unwrap()).into_owned()
}

pub fn remember_secret(s: &str) {
    SECRETS.lock().unwrap().push(s.to_owned());
}

fn has_key_id(logs: &str, prefix: &str) -> Option<String> {
    logs.match_indices(prefix).find_map(|(i, _)| {
        let tail = &logs[i + prefix.len()..];
        let id: String = tail.chars().take(16).collect();
        (id.len() == 16
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        .then(|| format!("{prefix}{id}"))
    })
}

/// No access key ids, session tokens, signatures, External IDs or onboarding
/// tokens in anything logged so far (by any test of this binary).
pub fn assert_no_secrets_logged() {
    let logs = logs();
    assert!(!logs.is_empty(), "nothing was captured");
    if let Some(path) = std::env::var_os("ONBOARD_TEST_LOG_FILE") {
        std::fs::write(path, &logs).unwrap();
    }
    for p in ["AKIA", "ASIA"] {
        assert_eq!(has_key_id(&logs, p), None, "an access key id was logged");
    }
    for s in [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN",
        "0123456789abcdef0123456789abcdef",
        "cwt_",
    ] {
        assert!(!logs.contains(s), "{s} was logged");
    }
    for s in SECRETS.lock().unwrap().iter() {
        assert!(!logs.contains(s.as_str()), "a secret was logged");
    }
}
