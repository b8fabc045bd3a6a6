//! `curlew check`: the access proof, item by item, as a table or JSON; exit
//! code 1 on any failure. The External ID never appears on the command line:
//! it comes from the onboarding store (`--external-id-from-tenant`) or stdin.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use curlew::access::{
    prove_with_retry, render, AccessClients, AccessKeys, AccessTarget, RetryPolicy,
};
use curlew::onboard::{ExternalId, Onboardings};
use curlew::store::Store;
use std::io::BufRead;
use std::time::Duration;

#[derive(Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The customer's role (cross-account role mode). Without it and without
    /// --access-keys-from-env, curlew reads with its own credentials (bucket-policy mode).
    #[arg(long)]
    pub role_arn: Option<String>,
    /// Use this tenant's External ID, read from the onboarding store (--store).
    #[arg(long, conflicts_with = "external_id_stdin")]
    pub external_id_from_tenant: Option<String>,
    /// Read the External ID from the first line of stdin.
    #[arg(long)]
    pub external_id_stdin: bool,
    /// Legacy IAM user keys mode: the customer's keys from CURLEW_CUSTOMER_ACCESS_KEY_ID
    /// and CURLEW_CUSTOMER_SECRET_ACCESS_KEY (never from arguments).
    #[arg(long, conflicts_with = "role_arn")]
    pub access_keys_from_env: bool,
    /// curlew's store (directory or s3://bucket/prefix), where onboardings live.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    /// The customer's billing bucket.
    #[arg(long)]
    pub bucket: String,
    /// The report's prefix in the bucket ("" = the whole bucket).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// The report or export expected under the prefix.
    #[arg(long)]
    pub report: Option<String>,
    /// The account the role and the session must belong to (the payer account).
    #[arg(long)]
    pub expected_account: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: CheckFormat,
    /// Keep retrying for up to this many seconds while the only failure is a
    /// denied assume (a role created moments ago) or throttling.
    #[arg(long, default_value_t = 0)]
    pub retry_secs: u64,
}

async fn external_id(a: &CheckArgs) -> Result<Option<ExternalId>> {
    if let Some(tenant) = &a.external_id_from_tenant {
        let (store, prefix) = Store::open(&a.store).await;
        let id = Onboardings::new(store, &prefix)
            .external_id(tenant)
            .await
            .with_context(|| format!("reading tenant {tenant:?}'s External ID from {}", a.store))?;
        return Ok(Some(id));
    }
    if a.external_id_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the External ID from stdin")?;
        let id = line.trim();
        if id.is_empty() {
            bail!("--external-id-stdin: stdin held no External ID");
        }
        return Ok(Some(ExternalId::from_stored(id.to_owned())));
    }
    Ok(None)
}

pub(crate) fn access_keys() -> Result<AccessKeys> {
    let get = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .with_context(|| format!("--access-keys-from-env: {name} is not set"))
    };
    Ok(AccessKeys {
        access_key_id: get("CURLEW_CUSTOMER_ACCESS_KEY_ID")?,
        secret_access_key: get("CURLEW_CUSTOMER_SECRET_ACCESS_KEY")?,
    })
}

pub async fn run(a: CheckArgs) -> Result<i32> {
    let external_id = external_id(&a).await?;
    if a.role_arn.is_some() && external_id.is_none() {
        bail!("--role-arn needs the tenant's External ID: pass --external-id-from-tenant T (with --store) or --external-id-stdin");
    }
    let target = AccessTarget {
        role_arn: a.role_arn.clone(),
        external_id,
        access_keys: if a.access_keys_from_env {
            Some(access_keys()?)
        } else {
            None
        },
        expected_account: a.expected_account.clone(),
        bucket: a.bucket.clone(),
        prefix: a.prefix.clone(),
        report: a.report.clone(),
    };
    let clients = AccessClients::from_env().await;
    let policy = RetryPolicy {
        total: Duration::from_secs(a.retry_secs),
        ..RetryPolicy::default()
    };
    let report = prove_with_retry(&clients, &target, &policy).await;
    match a.format {
        CheckFormat::Table => print!("{}", render::table(&report)),
        CheckFormat::Json => println!("{}", render::json(&report)),
    }
    Ok(if report.passed() { 0 } else { 1 })
}
