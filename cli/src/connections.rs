//! `curlew connections` (what the registry knows of each connection, as a
//! table or JSON) and `curlew sweep` (the sweep Lambda's code, run here: part
//! jobs of missed deliveries run locally, like `curlew ingest`).

use anyhow::Result;
use clap::{Args, ValueEnum};
use curlew::access::AccessClients;
use curlew::ledger::Ledger;
use curlew::pipeline::{Notice, Notify, NotifyFuture, DEFAULT_MAX_FILES};
use curlew::registry::{AccessMode, Connection, Registry};
use curlew::store::Store;
use curlew::sweep::{sweep_connection, LocalDispatch, SweepCtx, DEFAULT_STALE_HOURS};
use serde_json::{json, Value};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args)]
pub struct ConnectionsArgs {
    /// curlew's store (directory or s3://bucket/prefix), where the registry lives.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    /// Only this tenant's connections.
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Args)]
pub struct SweepArgs {
    /// curlew's store (directory or s3://bucket/prefix).
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    /// Only this tenant's connections.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Newest manifest older than this many hours: report-stale.
    #[arg(long, default_value_t = DEFAULT_STALE_HOURS)]
    pub stale_hours: i64,
    /// Also ask the billing APIs about each connection's named report (the
    /// read policy's --report-definitions and --data-exports options):
    /// Cost and Usage Reports' DescribeReportDefinitions and Data Exports'
    /// ListExports/GetExport. A deleted report or one delivering elsewhere is
    /// export-missing, an UNHEALTHY export export-unhealthy.
    #[arg(long, visible_alias = "data-exports")]
    pub report_apis: bool,
}

fn mode(m: AccessMode) -> &'static str {
    match m {
        AccessMode::CrossAccountRole => "role",
        AccessMode::BucketPolicy => "bucket-policy",
        AccessMode::AccessKeys => "keys",
    }
}

/// One connection as `curlew connections --format json` prints it. `since`
/// is the bill processing start (`YYYY-MM`, as `--since` stores it);
/// `status_since` is when the status last changed.
pub fn connection_json(c: &Connection) -> Value {
    json!({
        "tenant": c.tenant,
        "payer_account": c.payer_account,
        "mode": mode(c.access_mode),
        "status": c.status,
        "cause": c.cause,
        "remedy": c.remedy,
        "since": c.since,
        "status_since": c.status_since,
        "last_checked_at": c.last_checked_at,
        "consecutive_failures": c.consecutive_failures,
        "last_delivery_at": c.last_delivery_at,
        "linked_accounts": c.linked_accounts,
    })
}

/// Every connection (of one tenant), read one by one: an unreadable
/// document is reported and skipped, not fatal to the others.
async fn connections(registry: &Registry, tenant: Option<&str>) -> Result<Vec<Connection>> {
    let mut out = Vec::new();
    for (t, p) in registry.keys(tenant).await? {
        match registry.get(&t, &p).await {
            Ok((c, _)) => out.push(c),
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    Ok(out)
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

pub async fn list(a: ConnectionsArgs) -> Result<i32> {
    let (store, prefix) = Store::open(&a.store).await;
    let all = connections(&Registry::new(store, &prefix), a.tenant.as_deref()).await?;
    match a.format {
        Format::Json => {
            let v: Vec<Value> = all.iter().map(connection_json).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            println!(
                "{:<12} {:<13} {:<13} {:<12} {:<20} {:<8} {:<16} {:<16} linked",
                "tenant",
                "payer",
                "mode",
                "status",
                "cause",
                "since",
                "last check",
                "last delivery"
            );
            for c in &all {
                println!(
                    "{:<12} {:<13} {:<13} {:<12} {:<20} {:<8} {:<16} {:<16} {}",
                    c.tenant,
                    c.payer_account,
                    mode(c.access_mode),
                    c.status.as_str(),
                    c.cause.map_or("-", |c| c.as_str()),
                    c.since.as_deref().unwrap_or("-"),
                    time(c.last_checked_at),
                    time(c.last_delivery_at),
                    c.linked_accounts.len()
                );
                if let Some(r) = &c.remedy {
                    println!("    {r}");
                }
            }
        }
    }
    Ok(0)
}

/// Prints each notice as one JSON line on stdout (locally there is no topic).
struct Printed;

impl Notify for Printed {
    fn publish<'a>(&'a self, notice: &'a Notice) -> NotifyFuture<'a> {
        Box::pin(async move {
            println!(
                "{}",
                serde_json::to_string(notice).map_err(|e| e.to_string())?
            );
            Ok(())
        })
    }
}

/// Exit code 1 when a sweep failed (not when a connection is broken: that
/// is what the sweep found, and `curlew connections` shows it).
pub async fn sweep(a: SweepArgs) -> Result<i32> {
    let (store, prefix) = Store::open(&a.store).await;
    let registry = Registry::new(store.clone(), &prefix);
    let ledger = Ledger::new(store.clone(), &prefix);
    let mut clients = AccessClients::from_env().await;
    if a.report_apis {
        clients = clients.with_report_apis_from_env().await;
    }
    let dispatch = LocalDispatch {
        ledger: ledger.clone(),
        notify: &Printed,
    };
    let ctx = SweepCtx {
        clients: &clients,
        own: store,
        own_prefix: prefix,
        ledger,
        registry: registry.clone(),
        dispatch: &dispatch,
        notify: &Printed,
        stale_after: chrono::Duration::hours(a.stale_hours),
        max_files: DEFAULT_MAX_FILES,
        // Run by hand: always sweep.
        min_interval: chrono::Duration::zero(),
    };
    let keys = registry.keys(a.tenant.as_deref()).await?;
    let mut failed = 0;
    for (t, p) in &keys {
        match sweep_connection(&ctx, t, p, chrono::Utc::now()).await {
            Ok(o) if o.skipped => eprintln!("{t}/{p}: {} (not swept)", o.status),
            Ok(o) => eprintln!(
                "{t}/{p}: {}{}; this sweep saw {}; {} missed delivery(ies) planned; {} linked-account change(s)",
                o.status,
                o.cause.map(|c| format!(" ({c})")).unwrap_or_default(),
                o.observed.map_or("no problem".into(), |c| c.to_string()),
                o.planned.len(),
                o.account_changes.len()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("{t}/{p}: sweep failed: {e}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} sweep(s) failed", keys.len());
        return Ok(1);
    }
    Ok(0)
}

#[derive(Args)]
pub struct AccountsArgs {
    /// curlew's store (directory or s3://bucket/prefix).
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    #[arg(long)]
    pub tenant: String,
    /// One billing period (YYYY-MM); every committed one by default.
    #[arg(long)]
    pub period: Option<String>,
    /// Days without a row before a connected account counts as not billed.
    #[arg(long, default_value_t = curlew::sweep::reconcile::DEFAULT_QUIET_DAYS)]
    pub quiet_days: i64,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `curlew accounts`: the reconciliation of billed and connected accounts.
pub async fn accounts(a: AccountsArgs) -> Result<i32> {
    if let Some(p) = &a.period {
        crate::commands::check_period(p, "--period")?;
    }
    let (store, prefix) = Store::open(&a.store).await;
    let all = curlew::sweep::reconcile::reconcile_tenant(
        &Ledger::new(store.clone(), &prefix),
        &Registry::new(store, &prefix),
        &a.tenant,
        a.period.as_deref(),
        a.quiet_days,
    )
    .await?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&all)?),
        Format::Table => {
            for r in &all {
                println!(
                    "{} {} {} ({})",
                    r.tenant, r.payer_account, r.billing_period, r.report
                );
                for s in &r.billed_not_connected {
                    println!(
                        "  billed, not connected: {} ({} billed)",
                        s.account, s.spend.billed_cost
                    );
                }
                for s in &r.billed_not_active {
                    println!(
                        "  billed, not active:    {} {} ({} billed; expected for RI/SP fees of a closed account)",
                        s.account,
                        s.state.as_deref().unwrap_or("?"),
                        s.spend.billed_cost
                    );
                }
                for acct in &r.connected_not_billed {
                    println!("  connected, not billed for {} days: {acct}", a.quiet_days);
                }
            }
        }
    }
    Ok(0)
}
