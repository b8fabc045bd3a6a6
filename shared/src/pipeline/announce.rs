//! One manifest of one connection -> the pipeline's decision and the part
//! jobs to run: the per-connection planning both the cur-ingest planner (an
//! announced manifest) and the sweep (a manifest no event announced) call.
//! Transport (SNS part jobs, local jobs) is the caller's.

use super::{park, plan_delivery, stage_plan, Decision, Parked, PartJob, PipelineError, Plan};
use super::{Scope, Skip};
use crate::discover::{delivery_from_manifest, Source};
use crate::failure::Class;
use crate::ledger::{Ledger, SourceId};
use crate::registry::{Connection, Registry, RegistryError};

/// What planning one manifest for one connection came to.
#[derive(Debug)]
pub enum Announced {
    /// Stored; `jobs` are the parts not staged yet (all, the first time).
    Planned {
        plan: Box<Plan>,
        period: String,
        jobs: Vec<PartJob>,
    },
    /// Not ingested (another report, before the start date, not newer than
    /// CURRENT; `held` ones, AWS rewriting the report, are parked for the
    /// sweep).
    Skipped {
        source: SourceId,
        why: String,
        held: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
}

impl AnnounceError {
    pub fn class(&self) -> Class {
        match self {
            AnnounceError::Pipeline(e) => e.class(),
            AnnounceError::Registry(e) => e.class(),
        }
    }
}

/// Plan manifest `key` of `bucket` for `conn`, reading through `source`.
pub async fn plan_manifest(
    ledger: &Ledger,
    registry: &Registry,
    source: &Source,
    conn: &Connection,
    bucket: &str,
    key: &str,
    max_files: usize,
) -> Result<Announced, AnnounceError> {
    let mut scope = Scope::for_connection(conn);
    scope.max_files = max_files;
    let delivery = delivery_from_manifest(source, key, scope.max_files)
        .await
        .map_err(PipelineError::from)?;
    let known = Scope::known_reports(conn);
    let period = delivery.period.clone().unwrap_or_default();
    let plan = match plan_delivery(source, ledger, &scope, delivery, &known).await? {
        Decision::Skipped {
            source: id,
            skip: Skip::Held { why },
        } => {
            // AWS is rewriting the report: nothing will announce this manifest
            // again, so it waits with the parked announcements for the sweep.
            tracing::info!(source = %id, %why, %key, "held back; parked for the sweep");
            park_manifest(ledger, conn, bucket, key, &why).await?;
            return Ok(Announced::Skipped {
                source: id,
                why,
                held: true,
            });
        }
        Decision::Skipped { source, skip } => {
            tracing::info!(%source, ?skip, %key, "not planned");
            return Ok(Announced::Skipped {
                source,
                why: format!("{skip:?}"),
                held: false,
            });
        }
        Decision::Planned(plan) => plan,
    };
    if conn.report.is_none() {
        // The first report planned under the prefix becomes the connection's;
        // a later different one is refused by the pipeline, naming both,
        // instead of being summed. Bound only once planned, so a stray or
        // refused manifest binds nothing.
        match registry
            .bind_report(&conn.tenant, &conn.payer_account, &plan.source.report)
            .await
        {
            Ok(()) => {}
            Err(RegistryError::ReportAmbiguous { bound, other, .. }) => {
                return Err(PipelineError::Ambiguous {
                    payer: conn.payer_account.clone(),
                    period,
                    reports: vec![bound, other],
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        }
    }
    let jobs = stage_plan(ledger, &plan).await?;
    Ok(Announced::Planned { plan, period, jobs })
}

/// Keep a manifest of `conn` for the sweep to plan again.
pub async fn park_manifest(
    ledger: &Ledger,
    conn: &Connection,
    bucket: &str,
    key: &str,
    why: &str,
) -> Result<(), PipelineError> {
    park(
        ledger,
        &Parked {
            tenant: conn.tenant.clone(),
            payer_account: conn.payer_account.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            why: why.to_owned(),
            at: chrono::Utc::now(),
        },
    )
    .await
}
