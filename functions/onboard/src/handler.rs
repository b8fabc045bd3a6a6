//! Create / Update / Delete of a `Custom::CurlewConnection`.
//!
//! Order of business for one SNS record:
//! 1. parse the request; refuse (log and drop, no request at all) one whose
//!    ResponseURL is not a CloudFormation response bucket of the stack's region;
//! 2. under the watchdog: a stored answer for this StackId+RequestId is the
//!    answer (a repeat does nothing else); otherwise decide, store the answer
//!    (put-if-absent: a concurrent twin's answer wins), then
//! 3. send it, once.
//!
//! The onboarding token is the gate: nothing is registered for a stack that
//! does not present a pending (or its own) token of the tenant, whose role is
//! not in its own account, or whose access is not proven.

use crate::config::Deps;
use crate::prove::{prove_with_backoff, ProofTarget, Prover};
use crate::records::Claimed;
use crate::request::{DropReason, Kind, PhysicalId, Props, Request};
use crate::response::{Answer, CheckedUrl, SendError, Status};
use crate::watchdog::before_deadline;
use aws_lambda_events::event::sns::SnsEvent;
use curlew::onboard::{OnboardingError, Presenter};
use curlew::registry::{AccessMode, Connection, ConnectionStatus, RegistryError};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (or, if `delivered` is false, the answer could not be
    /// delivered and the invocation fails so that it is retried).
    Answered {
        status: Status,
        repeated: bool,
        delivered: bool,
    },
    /// Not answered: nothing was done and no request was sent.
    Dropped(DropReason),
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the event is not an SNS event ({0})")]
    NotSns(String),
    #[error("{0} answer(s) could not be delivered; the stored answers are re-sent on retry")]
    NotDelivered(usize),
}

/// The Lambda entry: every record of an SNS event. Fails (so Lambda retries
/// the invocation) only when an answer could not be delivered.
pub async fn handle<P: Prover>(
    deps: &Deps,
    prover: &P,
    event: serde_json::Value,
    deadline: Instant,
) -> Result<Vec<Outcome>, HandlerError> {
    let event: SnsEvent = serde_json::from_value(event).map_err(|e| {
        HandlerError::NotSns(format!("{:?} error at line {}", e.classify(), e.line()))
    })?;
    // SNS invokes with one record; several are handled in turn.
    let mut outcomes = Vec::with_capacity(event.records.len());
    for record in &event.records {
        outcomes.push(handle_message(deps, prover, &record.sns.message, deadline).await);
    }
    let undelivered = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Outcome::Answered {
                    delivered: false,
                    ..
                }
            )
        })
        .count();
    if undelivered > 0 {
        return Err(HandlerError::NotDelivered(undelivered));
    }
    Ok(outcomes)
}

/// One CloudFormation request (an SNS Message).
pub async fn handle_message<P: Prover>(
    deps: &Deps,
    prover: &P,
    message: &str,
    deadline: Instant,
) -> Outcome {
    let req = match Request::parse(message) {
        Ok(r) => r,
        Err(reason) => {
            warn!(%reason, "not answered");
            return Outcome::Dropped(reason);
        }
    };
    let url = match deps.settings.response_policy.check(&req) {
        Ok(u) => u,
        Err(e) => {
            // The URL itself is never logged: its query is a signature.
            warn!(
                stack_id = %req.stack_id,
                request_id = %req.request_id,
                reason = %e,
                "ResponseURL refused; not answered"
            );
            return Outcome::Dropped(DropReason::ResponseUrl(e.to_string()));
        }
    };
    info!(
        request_type = req.kind.name(),
        stack_id = %req.stack_id,
        request_id = %req.request_id,
        logical_resource_id = %req.logical_resource_id,
        response_to = %url.origin(),
        "custom resource request"
    );
    let margin = deps.settings.answer_margin;
    let (answer, repeated) = match before_deadline(
        decide(deps, prover, &req, deadline),
        deadline,
        margin,
    )
    .await
    {
        Ok(Decided::Answer(a, repeated)) => (a, repeated),
        Ok(Decided::InFlight(until)) => {
            info!(stack_id = %req.stack_id, request_id = %req.request_id, %until, "another copy is answering this request; not answered twice");
            return Outcome::Dropped(DropReason::InFlight(until.to_rfc3339()));
        }
        Err(t) => {
            let a = cut_short(&req);
            warn!(stack_id = %req.stack_id, request_id = %req.request_id, status = ?a.status, "{t}; answering");
            // Keep it if the store answers quickly, so a repeat gets the same answer.
            let kept = tokio::time::timeout(margin / 4, deps.records().keep_answer(&a)).await;
            match kept {
                Ok(Ok(stored)) => (stored, false),
                _ => (a, false),
            }
        }
    };
    let delivered = deliver(deps, &url, &answer, deadline).await.is_ok();
    Outcome::Answered {
        status: answer.status,
        repeated,
        delivered,
    }
}

async fn deliver(
    deps: &Deps,
    url: &CheckedUrl,
    answer: &Answer,
    deadline: Instant,
) -> Result<(), SendError> {
    let body = answer.body();
    let until = deadline
        .checked_sub(Duration::from_millis(200))
        .unwrap_or(deadline);
    let r = deps.responder.put(url, body, until).await;
    match &r {
        Ok(()) => info!(
            stack_id = %answer.stack_id,
            request_id = %answer.request_id,
            status = ?answer.status,
            physical_resource_id = %answer.physical_resource_id,
            reason = answer.reason.as_deref().unwrap_or(""),
            "answered"
        ),
        Err(e) => error!(
            stack_id = %answer.stack_id,
            request_id = %answer.request_id,
            to = %url.origin(),
            error = %e,
            "answer not delivered"
        ),
    }
    r
}

/// What deciding a request came to.
enum Decided {
    /// Send this (`true`: the stored answer of an earlier copy).
    Answer(Answer, bool),
    /// Another copy is deciding it until then: send nothing.
    InFlight(chrono::DateTime<chrono::Utc>),
}

/// The answer to `req`: the stored one if it was answered before, nothing
/// if another copy is deciding it right now, else a fresh decision, stored
/// before it is returned.
async fn decide<P: Prover>(deps: &Deps, prover: &P, req: &Request, deadline: Instant) -> Decided {
    let records = deps.records();
    match records.answer(&req.stack_id, &req.request_id).await {
        Ok(Some(stored)) => {
            info!(request_id = %req.request_id, "repeated request: the stored answer again");
            return Decided::Answer(stored, true);
        }
        Ok(None) => {}
        Err(e) => warn!(error = %e, "stored answers unreadable; deciding afresh"),
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let until = chrono::Utc::now() + chrono::Duration::from_std(left).unwrap_or_default();
    match records.claim(&req.stack_id, &req.request_id, until).await {
        Ok(Claimed::Mine) => {}
        Ok(Claimed::Theirs(until)) => {
            // It may have answered between our two reads.
            if let Ok(Some(stored)) = records.answer(&req.stack_id, &req.request_id).await {
                return Decided::Answer(stored, true);
            }
            return Decided::InFlight(until);
        }
        // Better answered twice (the same way) than never.
        Err(e) => warn!(error = %e, "request not claimed; deciding anyway"),
    }
    let answer = match &req.kind {
        Kind::Create => create(deps, prover, req).await,
        Kind::Update { physical_id } => update(deps, prover, req, physical_id).await,
        Kind::Delete { physical_id } => delete(deps, req, physical_id).await,
    };
    match records.keep_answer(&answer).await {
        Ok(stored) => {
            let repeated = stored != answer;
            Decided::Answer(stored, repeated)
        }
        Err(e) => {
            warn!(error = %e, "answer not stored; sending it anyway");
            Decided::Answer(answer, false)
        }
    }
}

/// The answer when the work did not finish before the deadline: FAILED,
/// except for a Delete, which always succeeds (a FAILED Delete leaves the
/// customer's stack in DELETE_FAILED; the connection is left as it was and
/// the sweep finds it unreachable once the role is gone).
fn cut_short(req: &Request) -> Answer {
    match &req.kind {
        Kind::Delete { physical_id } => {
            let mut a = Answer::new(req, Status::Success, physical_id.clone());
            a.reason = Some(
                "curlew could not finish before CloudFormation's deadline; the connection \
                 was left as it was (the stack's deletion is not held up)."
                    .into(),
            );
            a
        }
        _ => Answer::failed(
            req,
            fallback_physical_id(req),
            "curlew could not finish before CloudFormation's deadline; nothing more \
             will be done for this request. Retry the stack operation.",
        ),
    }
}

/// The physical id a FAILED answer carries when the work did not finish.
fn fallback_physical_id(req: &Request) -> String {
    match &req.kind {
        Kind::Update { physical_id } | Kind::Delete { physical_id } => physical_id.clone(),
        Kind::Create => create_physical_id(req),
    }
}

/// `curlew:<tenant>:<stack account>` when the properties name a tenant; a
/// rejected Create gets an id no connection has, so its rollback Delete is a no-op.
fn create_physical_id(req: &Request) -> String {
    match Props::from_value(&req.properties, &req.stack) {
        Ok(p) => PhysicalId {
            tenant: p.tenant,
            account: req.stack.account.clone(),
        }
        .to_string(),
        Err(_) => format!("curlew-rejected:{}", req.request_id),
    }
}

/// An internal failure: the detail goes to the log, the customer gets a
/// reason without curlew's bucket names.
fn internal(req: &Request, physical_id: String, what: &str, e: &dyn std::fmt::Display) -> Answer {
    error!(stack_id = %req.stack_id, request_id = %req.request_id, error = %e, "{what}");
    Answer::failed(
        req,
        physical_id,
        format!("curlew could not {what} (an internal error, logged); retry the stack operation"),
    )
}

fn success(req: &Request, id: &PhysicalId, status: ConnectionStatus) -> Answer {
    let mut a = Answer::new(req, Status::Success, id.to_string());
    a.data.insert("ConnectionId".into(), id.connection_id());
    let s = serde_json::to_value(status).expect("status serialises");
    a.data
        .insert("Status".into(), s.as_str().unwrap_or_default().to_owned());
    a
}

/// When the token is checked, and when it is taken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenStep {
    /// Before the proof: may this stack use it? Nothing written.
    Check,
    /// After the proof: this stack takes it (a stack that failed, rolled
    /// back and was deployed again must still find it pending).
    Redeem,
}

/// The token must be a pending, unexpired onboarding of the tenant for the
/// stack's account, or one this stack already redeemed.
async fn token(
    deps: &Deps,
    req: &Request,
    props: &Props,
    pid: &str,
    step: TokenStep,
) -> Result<(), Answer> {
    let onboardings = deps.onboardings();
    let by = Presenter {
        stack_id: &req.stack_id,
        request_id: &req.request_id,
        account: &req.stack.account,
    };
    let r = match step {
        TokenStep::Check => onboardings.check(&props.tenant, &props.token, by).await,
        TokenStep::Redeem => onboardings.redeem(&props.tenant, &props.token, by).await,
    };
    match r {
        Ok(_) => Ok(()),
        Err(
            e @ (OnboardingError::UnknownToken { .. }
            | OnboardingError::TokenUsed { .. }
            | OnboardingError::TokenExpired { .. }
            | OnboardingError::TokenOtherAccount { .. }
            | OnboardingError::BadTenant(_)),
        ) => {
            warn!(stack_id = %req.stack_id, tenant = %props.tenant, reason = %e, "onboarding token refused");
            Err(Answer::failed(req, pid.to_owned(), e.to_string()))
        }
        Err(e) => Err(internal(
            req,
            pid.to_owned(),
            "check the onboarding token",
            &e,
        )),
    }
}

/// Prove access with the tenant's External ID (retrying while the role may
/// still be propagating).
async fn prove<P: Prover>(
    deps: &Deps,
    prover: &P,
    req: &Request,
    props: &Props,
    pid: &str,
) -> Result<(), Answer> {
    let external_id = match deps.onboardings().external_id(&props.tenant).await {
        Ok(x) => x,
        Err(e @ OnboardingError::NoExternalId { .. }) => {
            return Err(Answer::failed(req, pid.to_owned(), e.to_string()))
        }
        Err(e) => {
            return Err(internal(
                req,
                pid.to_owned(),
                "read the tenant's External ID",
                &e,
            ))
        }
    };
    let target = ProofTarget {
        role_arn: props.role_arn.clone(),
        external_id,
        expected_account: req.stack.account.clone(),
        bucket: props.bucket.clone(),
        prefix: props.prefix.clone(),
        report: props.report.clone(),
    };
    let (proof, attempts) = prove_with_backoff(prover, &target, &deps.settings.retry).await;
    if proof.passed {
        info!(stack_id = %req.stack_id, attempts, "access proven");
        Ok(())
    } else {
        warn!(stack_id = %req.stack_id, attempts, summary = %proof.summary, "access proof failed");
        Err(Answer::failed(
            req,
            pid.to_owned(),
            format!(
                "the access proof failed after {attempts} attempt(s): {}",
                proof.summary
            ),
        ))
    }
}

fn apply(c: &mut Connection, props: &Props) {
    c.access_mode = AccessMode::CrossAccountRole;
    c.role_arn = Some(props.role_arn.clone());
    c.bucket = props.bucket.clone();
    c.prefix = props.prefix.clone();
    c.report = Some(props.report.clone());
    c.status = ConnectionStatus::Connected;
    c.status_detail = None;
}

/// Create the connection, or bring an existing one (a reconnect) up to date.
async fn register(
    deps: &Deps,
    id: &PhysicalId,
    props: &Props,
) -> Result<Connection, RegistryError> {
    let registry = deps.registry();
    let mut conn = Connection::new(
        &id.tenant,
        &id.account,
        AccessMode::CrossAccountRole,
        &props.bucket,
        &props.prefix,
    );
    apply(&mut conn, props);
    match registry.create(&conn).await {
        Ok(()) => Ok(conn),
        Err(RegistryError::Exists { .. }) => {
            registry
                .update(&id.tenant, &id.account, |c| apply(c, props))
                .await
        }
        Err(e) => Err(e),
    }
}

/// Bind the stack to the connection, then register it.
async fn connect<P: Prover>(
    deps: &Deps,
    prover: &P,
    req: &Request,
    props: &Props,
    id: &PhysicalId,
) -> Answer {
    let pid = id.to_string();
    if props.role_account != req.stack.account {
        warn!(stack_id = %req.stack_id, "role account differs from the stack's account");
        return Answer::failed(
            req,
            pid,
            format!(
                "RoleArn is in account {} but the stack runs in account {}: the role must be in the stack's own (payer) account",
                props.role_account, req.stack.account
            ),
        );
    }
    if let Err(a) = token(deps, req, props, &pid, TokenStep::Check).await {
        return a;
    }
    if let Err(a) = prove(deps, prover, req, props, &pid).await {
        return a;
    }
    if let Err(a) = token(deps, req, props, &pid, TokenStep::Redeem).await {
        return a;
    }
    // Bound first: a registered connection always has an owner that may disconnect it.
    let registered = match deps.records().bind(id, &req.stack_id, &props.token).await {
        Err(e) => Err(("record the stack that owns the connection", e.to_string())),
        Ok(()) => register(deps, id, props)
            .await
            .map_err(|e| ("register the connection", e.to_string())),
    };
    match registered {
        Ok(c) => {
            info!(stack_id = %req.stack_id, connection = %id.connection_id(), version = c.version, "connection registered");
            success(req, id, c.status)
        }
        Err((what, e)) => {
            // The stack fails and rolls back: leave the token for its next try.
            if let Err(r) = deps
                .onboardings()
                .release(&props.tenant, &props.token, &req.stack_id)
                .await
            {
                warn!(stack_id = %req.stack_id, error = %r, "onboarding token not released");
            }
            internal(req, pid, what, &e)
        }
    }
}

async fn create<P: Prover>(deps: &Deps, prover: &P, req: &Request) -> Answer {
    let props = match Props::from_value(&req.properties, &req.stack) {
        Ok(p) => p,
        Err(e) => return Answer::failed(req, create_physical_id(req), e.to_string()),
    };
    let id = PhysicalId {
        tenant: props.tenant.clone(),
        account: req.stack.account.clone(),
    };
    connect(deps, prover, req, &props, &id).await
}

async fn update<P: Prover>(deps: &Deps, prover: &P, req: &Request, physical_id: &str) -> Answer {
    // Whatever happens, the physical id is the request's: an Update never replaces.
    let fail = |reason: String| Answer::failed(req, physical_id.to_owned(), reason);
    let Some(id) = PhysicalId::parse(physical_id) else {
        return fail("PhysicalResourceId is not a curlew connection id".into());
    };
    let props = match Props::from_value(&req.properties, &req.stack) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    if props.tenant != id.tenant || req.stack.account != id.account {
        return fail(format!(
            "connection {} belongs to tenant {} in account {}; TenantId and the stack's account cannot change on Update (create a new stack)",
            id.connection_id(),
            id.tenant,
            id.account
        ));
    }
    let mut a = connect(deps, prover, req, &props, &id).await;
    a.physical_resource_id = physical_id.to_owned();
    a
}

async fn delete(deps: &Deps, req: &Request, physical_id: &str) -> Answer {
    let done = Answer::new(req, Status::Success, physical_id.to_owned());
    let Some(id) = PhysicalId::parse(physical_id) else {
        info!(stack_id = %req.stack_id, "delete of a resource that never was a connection");
        return done;
    };
    if id.account != req.stack.account {
        warn!(stack_id = %req.stack_id, "delete names another account's connection; nothing done");
        return done;
    }
    let Ok(props) = Props::from_value(&req.properties, &req.stack) else {
        warn!(stack_id = %req.stack_id, "delete with invalid properties; nothing done");
        return done;
    };
    match deps.records().owns(&id, &req.stack_id, &props.token).await {
        Ok(true) => {}
        Ok(false) => {
            info!(stack_id = %req.stack_id, connection = %id.connection_id(), "this stack does not own the connection; nothing done");
            return done;
        }
        Err(e) => {
            error!(stack_id = %req.stack_id, error = %e, "owner unknown; connection left as it is");
            return done;
        }
    }
    let r = deps
        .registry()
        .update(&id.tenant, &id.account, |c| {
            c.status = ConnectionStatus::Disconnected;
            c.status_detail = Some("the customer's CloudFormation stack was deleted".into());
        })
        .await;
    match r {
        Ok(_) => info!(connection = %id.connection_id(), "connection disconnected (data kept)"),
        Err(RegistryError::Missing { .. }) => {
            info!(connection = %id.connection_id(), "no such connection; nothing to disconnect")
        }
        Err(e) => {
            error!(connection = %id.connection_id(), error = %e, "could not mark the connection disconnected");
            return done;
        }
    }
    // The token has served its stack: `curlew gc` removes it a week on.
    if let Err(e) = deps
        .onboardings()
        .retire(&id.tenant, &props.token, &req.stack_id)
        .await
    {
        warn!(connection = %id.connection_id(), error = %e, "could not retire the onboarding token (gc keeps it)");
    }
    done
}
