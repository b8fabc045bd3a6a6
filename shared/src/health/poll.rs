//! The optional poll (daily, through the customer's credentials): AWS
//! Health's organizational view, as the AWS Cloud Intelligence Dashboards
//! read it, to catch what a push missed. `DescribeEventsForOrganization`
//! (updated in a window, `maxResults` 100, every page), then per event its
//! affected accounts, their descriptions (`DescribeEventDetailsForOrganization`,
//! 10 accounts a call) and affected entities
//! (`DescribeAffectedEntitiesForOrganization`, 10 accounts a call, every
//! page). Each (event, account) becomes the same [`Incoming`] a pushed event
//! is, for [`super::process`].
//!
//! The API needs a Business or Enterprise support plan:
//! `SubscriptionRequiredException` is [`Polled::NotSubscribed`], a state of
//! the connection, not a failure. Its limits are low: the client retries
//! throttling with adaptive backoff ([`health_client`]).
//!
//! A polled event has no `communicationId`; dedupe is keyed by (eventArn,
//! account) and decides by the state's fingerprint, so an event both pushed
//! and polled in the same state is announced once.

use super::detail::{AffectedEntity, EventDescription, HealthDetail, Incoming};
use aws_sdk_health::config::retry::RetryConfig;
use aws_sdk_health::config::{Credentials, Region};
use aws_sdk_health::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_health::types::{
    DateTimeRange, EntityAccountFilter, EventAccountFilter, OrganizationEventFilter,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Page size of every call (the API's maximum).
pub const MAX_RESULTS: i32 = 100;
/// Accounts per detail / entity call (the API's maximum).
const ACCOUNTS_A_CALL: usize = 10;
/// No listing has more pages than this.
const MAX_PAGES: usize = 1_000;
/// Attempts per call (adaptive: throttling slows the client down).
pub const MAX_ATTEMPTS: u32 = 8;

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// One per (event, affected account); PUBLIC events without affected
    /// accounts once, without an account.
    Events(Vec<Incoming>),
    /// `SubscriptionRequiredException`: no Business/Enterprise support plan
    /// (or the organizational view is not enabled). Not a failure.
    NotSubscribed,
}

/// A call that failed (after the client's retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AWS Health {operation}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct PollError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
}

impl PollError {
    /// Throttling that outlasted the retries.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("ThrottlingException" | "TooManyRequestsException" | "Throttling")
        )
    }
}

enum CallFailed {
    NotSubscribed,
    Other(PollError),
}

fn failed<E, R>(operation: &'static str, e: SdkError<E, R>) -> CallFailed
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().map(str::to_owned);
    if code.as_deref() == Some("SubscriptionRequiredException") {
        return CallFailed::NotSubscribed;
    }
    CallFailed::Other(PollError {
        operation,
        message: e
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| aws_sdk_health::error::DisplayErrorContext(&e).to_string()),
        code,
    })
}

/// A Health client for `creds` on the partition's global endpoint
/// (us-east-1; cn-northwest-1 for aws-cn), adaptive retry.
pub fn health_client(
    base: &aws_sdk_health::Client,
    creds: &Credentials,
    partition: &str,
) -> aws_sdk_health::Client {
    let region = if partition == "aws-cn" {
        "cn-northwest-1"
    } else {
        "us-east-1"
    };
    let conf = base
        .config()
        .to_builder()
        .credentials_provider(creds.clone())
        .region(Region::new(region))
        .retry_config(RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(crate::access::customer_timeouts())
        .build();
    aws_sdk_health::Client::from_conf(conf)
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

/// RFC 1123, as EventBridge events carry times.
fn rfc1123(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    let t = t?;
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

/// Events updated in `[since, until]`, with their accounts, descriptions and entities.
pub async fn poll_organization(
    client: &aws_sdk_health::Client,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Polled, PollError> {
    match poll(client, since, until).await {
        Ok(events) => Ok(Polled::Events(events)),
        Err(CallFailed::NotSubscribed) => Ok(Polled::NotSubscribed),
        Err(CallFailed::Other(e)) => Err(e),
    }
}

async fn poll(
    client: &aws_sdk_health::Client,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Incoming>, CallFailed> {
    let filter = OrganizationEventFilter::builder()
        .last_updated_time(
            DateTimeRange::builder()
                .from(smithy_time(since))
                .to(smithy_time(until))
                .build(),
        )
        .build();
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .describe_events_for_organization()
            .filter(filter.clone())
            .max_results(MAX_RESULTS)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| failed("DescribeEventsForOrganization", e))?;
        events.extend(out.events().iter().cloned());
        // An empty page with a token goes on; no token is the end.
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    let mut out = Vec::new();
    for ev in events {
        let Some(arn) = ev.arn() else { continue };
        let accounts = affected_accounts(client, arn).await?;
        let descriptions = descriptions(client, arn, &accounts).await?;
        let mut entities = entities(client, arn, &accounts).await?;
        let detail = |account: Option<&str>| HealthDetail {
            event_arn: Some(arn.to_owned()),
            service: ev.service().map(str::to_owned),
            event_type_code: ev.event_type_code().map(str::to_owned),
            event_type_category: ev.event_type_category().map(|c| c.as_str().to_owned()),
            event_scope_code: ev.event_scope_code().map(|c| c.as_str().to_owned()),
            communication_id: None,
            start_time: rfc1123(ev.start_time()),
            end_time: rfc1123(ev.end_time()),
            last_updated_time: rfc1123(ev.last_updated_time()),
            status_code: ev.status_code().map(|c| c.as_str().to_owned()),
            event_region: ev.region().map(str::to_owned),
            event_description: descriptions
                .get(account.unwrap_or(""))
                .map(|d| {
                    vec![EventDescription {
                        language: Some("en_US".into()),
                        latest_description: Some(d.clone()),
                    }]
                })
                .unwrap_or_default(),
            event_metadata: None,
            affected_account: account.map(str::to_owned),
            affected_entities: Vec::new(),
            page: None,
            total_pages: None,
        };
        if accounts.is_empty() {
            out.push(incoming(detail(None)));
        }
        for a in &accounts {
            let mut d = detail(Some(a));
            d.affected_entities = entities.remove(a).unwrap_or_default();
            out.push(incoming(d));
        }
    }
    Ok(out)
}

fn incoming(detail: HealthDetail) -> Incoming {
    Incoming {
        detail_type: Some("AWS Health Event".into()),
        account: detail.affected_account.clone(),
        region: None,
        detail,
    }
}

async fn affected_accounts(
    client: &aws_sdk_health::Client,
    arn: &str,
) -> Result<Vec<String>, CallFailed> {
    let mut accounts = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .describe_affected_accounts_for_organization()
            .event_arn(arn)
            .max_results(MAX_RESULTS)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| failed("DescribeAffectedAccountsForOrganization", e))?;
        accounts.extend(out.affected_accounts().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(accounts)
}

/// Account -> description ("" for a PUBLIC event without accounts).
async fn descriptions(
    client: &aws_sdk_health::Client,
    arn: &str,
    accounts: &[String],
) -> Result<BTreeMap<String, String>, CallFailed> {
    let mut out = BTreeMap::new();
    let batches: Vec<Vec<Option<&String>>> = if accounts.is_empty() {
        vec![vec![None]]
    } else {
        accounts
            .chunks(ACCOUNTS_A_CALL)
            .map(|c| c.iter().map(Some).collect())
            .collect()
    };
    for batch in batches {
        let filters: Vec<EventAccountFilter> = batch
            .iter()
            .map(|a| {
                EventAccountFilter::builder()
                    .event_arn(arn)
                    .set_aws_account_id(a.cloned())
                    .build()
                    .expect("event arn is set")
            })
            .collect();
        let got = client
            .describe_event_details_for_organization()
            .set_organization_event_detail_filters(Some(filters))
            .send()
            .await
            .map_err(|e| failed("DescribeEventDetailsForOrganization", e))?;
        for d in got.successful_set() {
            if let Some(text) = d.event_description().and_then(|e| e.latest_description()) {
                out.insert(d.aws_account_id().unwrap_or("").to_owned(), text.to_owned());
            }
        }
    }
    Ok(out)
}

/// Account -> its affected entities.
async fn entities(
    client: &aws_sdk_health::Client,
    arn: &str,
    accounts: &[String],
) -> Result<BTreeMap<String, Vec<AffectedEntity>>, CallFailed> {
    let mut out: BTreeMap<String, Vec<AffectedEntity>> = BTreeMap::new();
    for chunk in accounts.chunks(ACCOUNTS_A_CALL) {
        let filters: Vec<EntityAccountFilter> = chunk
            .iter()
            .map(|a| {
                EntityAccountFilter::builder()
                    .event_arn(arn)
                    .aws_account_id(a)
                    .build()
                    .expect("event arn is set")
            })
            .collect();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let got = client
                .describe_affected_entities_for_organization()
                .set_organization_entity_account_filters(Some(filters.clone()))
                .max_results(MAX_RESULTS)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| failed("DescribeAffectedEntitiesForOrganization", e))?;
            for e in got.entities() {
                out.entry(e.aws_account_id().unwrap_or("").to_owned())
                    .or_default()
                    .push(AffectedEntity {
                        entity_value: e.entity_value().map(str::to_owned),
                        status: e.status_code().map(|s| s.as_str().to_owned()),
                        last_updated_time: rfc1123(e.last_updated_time()),
                        tags: e
                            .tags()
                            .filter(|t| !t.is_empty())
                            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                    });
            }
            match got.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// What a poll reaches customers with: STS (the role), curlew's store (the
/// tenant's External ID, stored keys) and a Health client to derive the
/// customer's from.
pub struct PollClients<'a> {
    pub access: &'a crate::access::AccessClients,
    pub health: &'a aws_sdk_health::Client,
    pub own: &'a crate::store::Store,
    pub own_prefix: &'a str,
}

/// What polling one connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSummary {
    pub tenant: String,
    pub payer_account: String,
    /// `polled`, `not-subscribed`, `failed`, or `skipped` (bucket-policy
    /// mode: no customer credentials to poll with).
    pub state: &'static str,
    pub events: usize,
    pub published: usize,
}

/// Poll one connection's organization through its credentials (the role
/// with the tenant's External ID, or its stored keys) for events updated in
/// `[since, until]`, run each through [`super::process`] (the dedupe
/// records make a re-poll, or a pushed twin with the same key, publish
/// nothing), and record the outcome on the connection (`health_poll`).
/// A refused role or a failed call is recorded as `failed`, not returned:
/// one connection's poll never stops the others'. Errors of curlew's own
/// store are returned (transient).
pub async fn poll_connection(
    ctx: &super::HealthCtx<'_>,
    with: &PollClients<'_>,
    conn: &crate::registry::Connection,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<PollSummary, super::HealthError> {
    let mut summary = PollSummary {
        tenant: conn.tenant.clone(),
        payer_account: conn.payer_account.clone(),
        state: "skipped",
        events: 0,
        published: 0,
    };
    let creds = match crate::access::source_credentials(
        with.access,
        conn,
        with.own,
        with.own_prefix,
        crate::access::SessionPurpose::HealthPoll,
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(summary),
        Err(e) => {
            summary.state = "failed";
            record(ctx, conn, &summary, Some(e.to_string())).await?;
            return Ok(summary);
        }
    };
    let partition = crate::sweep::orgs::partition_of(conn.role_arn.as_deref());
    let client = health_client(with.health, &creds, partition);
    let detail = match poll_organization(&client, since, until).await {
        Ok(Polled::NotSubscribed) => {
            summary.state = "not-subscribed";
            None
        }
        Ok(Polled::Events(events)) => {
            summary.state = "polled";
            summary.events = events.len();
            for inc in &events {
                let p = super::process(ctx, inc, until).await?;
                summary.published += p.notices;
            }
            None
        }
        Err(e) => {
            summary.state = "failed";
            Some(e.to_string())
        }
    };
    record(ctx, conn, &summary, detail).await?;
    Ok(summary)
}

async fn record(
    ctx: &super::HealthCtx<'_>,
    conn: &crate::registry::Connection,
    s: &PollSummary,
    detail: Option<String>,
) -> Result<(), super::HealthError> {
    let state = crate::registry::HealthPoll {
        state: s.state.to_owned(),
        at: Utc::now(),
        events: s.events,
        detail,
    };
    ctx.registry
        .update(&conn.tenant, &conn.payer_account, |c| {
            c.health_poll = Some(state.clone())
        })
        .await?;
    Ok(())
}
