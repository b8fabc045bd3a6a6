//! `curlew`: the billing engine on your machine.

mod bench;
mod check;
mod commands;
mod commitments;
mod connect;
mod connections;
mod diff;
mod export;
mod health;
mod onboard;
mod render;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "curlew", version, about = "AWS billing connector: ingest CUR, CUR 2.0 and FOCUS exactly", long_about = None)]
struct Cli {
    /// Log filter (e.g. info, curlew=debug); logs go to stderr.
    #[arg(long, global = true, env = "CURLEW_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest every new revision under ROOT (a directory standing in for s3://bucket/prefix).
    Ingest(commands::IngestArgs),
    /// Line-level exports: `curlew export focus ROOT --out DIR` (FOCUS 1.2 Parquet).
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Report on committed rollups (only what CURRENT names).
    Report(commands::ReportArgs),
    /// RI and Savings Plans utilization (per commitment) and coverage (per usage account) of a committed period.
    Commitments(commitments::CommitmentsArgs),
    /// Write a realistic month of billing data in AWS's layout.
    Sample(commands::SampleArgs),
    /// What changed between two revisions of a month, per group, exactly
    /// (default: CURRENT against the revision it replaced).
    Diff(diff::DiffArgs),
    /// Sample + ingest + report in a temporary directory.
    Demo {
        /// Rows to generate.
        #[arg(long, default_value_t = 50_000)]
        rows: u64,
        /// Keep the files here instead of a temporary directory.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Delete superseded and abandoned revisions (never what CURRENT names).
    Gc(commands::GcArgs),
    /// Print SQL (DuckDB view or Athena table) that reads exactly what CURRENT names.
    Sql(commands::SqlArgs),
    /// Move a store written in the old layout (tenant=T/billing_period=P/CURRENT) to the source-scoped one.
    Migrate(commands::MigrateArgs),
    /// Prove access to a customer's billing bucket, item by item (exit 1 on any failure).
    Check(check::CheckArgs),
    /// Connect a customer's payer account: External ID, policies, CloudFormation template.
    #[command(subcommand)]
    Onboard(onboard::OnboardCommand),
    /// Connect a payer account (role, bucket-policy or keys mode) once the access proof passes.
    Connect(connect::ConnectArgs),
    /// The connections the registry knows: mode, status, cause, last check and delivery, linked accounts.
    Connections(connections::ConnectionsArgs),
    /// Sweep every connection once (the sweep Lambda's code): re-verify, linked accounts, missed deliveries.
    Sweep(connections::SweepArgs),
    /// Reconcile billed and connected accounts: billed not connected, not active, connected not billed.
    Accounts(connections::AccountsArgs),
    /// AWS Health events: `curlew health replay FILE...` (the health-notify function's code).
    #[command(subcommand)]
    Health(health::HealthCommand),
    /// Benchmark parsing: 2M-row legacy CUR CSV.gz and Parquet; prints rows/s, MB/s, peak RSS.
    Bench(bench::BenchArgs),
}

fn main() {
    if let Err(e) = run() {
        // One line, whatever RUST_BACKTRACE says: the messages say what to do.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(curlew::log_policy::safe_log_filter(&cli.log))
                .unwrap_or_else(|_| curlew::log_policy::safe_log_filter("warn").into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal: logs captured to a file or a pipe stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(async {
        match cli.command {
            Command::Ingest(a) => commands::ingest(a).await,
            Command::Export(c) => export::run(c).await,
            Command::Report(a) => commands::report(a).await,
            Command::Diff(a) => diff::run(a).await,
            Command::Commitments(a) => commitments::run(a).await,
            Command::Sample(a) => commands::sample(a),
            Command::Demo { rows, keep } => commands::demo(rows, keep).await,
            Command::Bench(a) => bench::run(a).await,
            Command::Gc(a) => commands::gc(a).await,
            Command::Sql(a) => commands::sql(a).await,
            Command::Migrate(a) => commands::migrate(a).await,
            Command::Check(a) => check::run(a).await,
            Command::Connect(a) => connect::run(a).await,
            Command::Connections(a) => connections::list(a).await,
            Command::Sweep(a) => connections::sweep(a).await,
            Command::Accounts(a) => connections::accounts(a).await,
            Command::Onboard(c) => onboard::run(c).await,
            Command::Health(c) => health::run(c).await,
        }
    })?;
    std::process::exit(code);
}
