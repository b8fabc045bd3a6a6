//! `curlew connect`: register a payer account's connection once the access
//! proof passes (nothing is stored when it fails), in any of the three modes.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use curlew::access::{prove_with_retry, render, AccessClients, AccessTarget, RetryPolicy};
use curlew::onboard::keys::{check_keys, KeyVault};
use curlew::onboard::Onboardings;
use curlew::registry::{AccessMode, Connection, ConnectionStatus, Registry};
use curlew::store::Store;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The customer's curlew-read-<tenant> role, with the tenant's External ID.
    Role,
    /// curlew's own principal, allowed by the bucket policy.
    BucketPolicy,
    /// An IAM user's keys, from CURLEW_CUSTOMER_ACCESS_KEY_ID / _SECRET_ACCESS_KEY.
    Keys,
}

#[derive(Args)]
pub struct ConnectArgs {
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub payer_account: String,
    #[arg(long, value_enum)]
    pub mode: Mode,
    #[arg(long)]
    pub bucket: String,
    /// The report's prefix in the bucket ("" = the whole bucket).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// The report or export the connection ingests.
    #[arg(long)]
    pub report: Option<String>,
    /// The role (role mode).
    #[arg(long)]
    pub role_arn: Option<String>,
    /// Bill processing start (YYYY-MM): earlier periods are not ingested.
    #[arg(long)]
    pub since: Option<String>,
    #[command(flatten)]
    pub dimensions: crate::commands::DimensionArgs,
    /// curlew's store (directory or s3://bucket/prefix): the registry, the
    /// tenant's External ID, the keys.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    /// Keep retrying the proof for up to this many seconds while the only
    /// failure is a denied assume (a role created moments ago) or throttling.
    #[arg(long, default_value_t = 0)]
    pub retry_secs: u64,
    /// The KMS key (ARN: the curlew stack's SecretsKeyArn output) the access
    /// keys are stored under in an s3:// store; that store's bucket policy
    /// refuses keys under any other.
    #[arg(long, env = "CURLEW_SECRETS_KMS_KEY")]
    pub secrets_kms_key: Option<String>,
}

pub async fn run(a: ConnectArgs) -> Result<i32> {
    crate::onboard::check_account(&a.payer_account)?;
    curlew::onboard::pending::check_tenant(&a.tenant)?;
    if let Some(s) = &a.since {
        crate::commands::check_period(s, "--since")?;
    }
    let dimensions = a.dimensions.dimensions()?;
    let (store, prefix) = Store::open(&a.store).await;
    let mut target = AccessTarget {
        expected_account: Some(a.payer_account.clone()),
        bucket: a.bucket.clone(),
        prefix: a.prefix.clone(),
        report: a.report.clone(),
        ..AccessTarget::default()
    };
    let mode = match a.mode {
        Mode::Role => {
            let Some(role) = &a.role_arn else {
                bail!(
                    "--mode role needs --role-arn (the customer's curlew-read-{} role)",
                    a.tenant
                );
            };
            target.role_arn = Some(role.clone());
            target.external_id = Some(
                Onboardings::new(store.clone(), &prefix)
                    .external_id(&a.tenant)
                    .await
                    .with_context(|| format!("reading tenant {:?}'s External ID from {}; start its onboarding first (`curlew onboard new`)", a.tenant, a.store))?,
            );
            AccessMode::CrossAccountRole
        }
        Mode::BucketPolicy => AccessMode::BucketPolicy,
        Mode::Keys => {
            let keys = crate::check::access_keys()?;
            check_keys(&keys)?;
            target.access_keys = Some(keys);
            AccessMode::AccessKeys
        }
    };
    if a.role_arn.is_some() && a.mode != Mode::Role {
        bail!("--role-arn is for --mode role only");
    }
    let policy = RetryPolicy {
        total: Duration::from_secs(a.retry_secs),
        ..RetryPolicy::default()
    };
    let report = prove_with_retry(&AccessClients::from_env().await, &target, &policy).await;
    print!("{}", render::table(&report));
    if !report.passed() {
        eprintln!("not connected: the access proof failed (nothing was stored)");
        return Ok(1);
    }
    if let Some(keys) = &target.access_keys {
        KeyVault::new(store.clone(), &prefix)
            .with_kms_key(a.secrets_kms_key.clone())?
            .put(&a.tenant, &a.payer_account, keys)
            .await?;
    }
    let mut conn = Connection::new(&a.tenant, &a.payer_account, mode, &a.bucket, &a.prefix);
    conn.role_arn = a.role_arn.clone();
    conn.report = a.report.clone();
    conn.since = a.since.clone();
    conn.dimensions = dimensions;
    conn.status = ConnectionStatus::Connected;
    conn.status_detail = Some(report.summary());
    Registry::new(store, &prefix).connect(&conn).await?;
    println!("connected {}/{} ({:?})", a.tenant, a.payer_account, mode);
    Ok(0)
}
