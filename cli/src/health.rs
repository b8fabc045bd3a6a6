//! `curlew health replay FILE...`: saved AWS Health events (EventBridge
//! JSON, as `events/` holds them) through the health-notify function's code,
//! `curlew::health::process`, against the connections registered in the
//! store. Dedupe state is recorded like the function's, so replaying the same
//! file again says `duplicate`. Notices are not published from here (there is
//! no topic locally): the outcome per event is printed.

use crate::connections::Format;
use anyhow::{bail, Context, Result};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use clap::{Args, Subcommand};
use curlew::health::{process, HealthCtx, HealthDetail, Incoming};
use curlew::pipeline::Silent;
use curlew::store::Store;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum HealthCommand {
    /// Replay saved AWS Health events: route, de-duplicate and record them as
    /// the health-notify function does; prints one outcome per event
    /// (published, duplicate, awaiting-pages, unknown-account).
    Replay(ReplayArgs),
}

#[derive(Args)]
pub struct ReplayArgs {
    /// EventBridge events (JSON files), in the order they arrived.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// curlew's store (directory or s3://bucket/prefix): registry, ledger, dedupe records.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
}

pub async fn run(cmd: HealthCommand) -> Result<i32> {
    match cmd {
        HealthCommand::Replay(a) => replay(a).await,
    }
}

/// An EventBridge AWS Health event from a file, or what is wrong with it.
fn read_event(path: &Path) -> Result<Incoming> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ev: EventBridgeEvent<HealthDetail> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an EventBridge event (a JSON object with detail-type, source and detail)",
            path.display()
        )
    })?;
    if ev.source != "aws.health" {
        bail!(
            "{}: source is {:?}, not aws.health; only AWS Health events can be replayed",
            path.display(),
            ev.source
        );
    }
    if ev.detail.event_arn.as_deref().unwrap_or("").is_empty() {
        bail!("{}: detail.eventArn is missing", path.display());
    }
    Ok(Incoming {
        detail_type: Some(ev.detail_type),
        account: ev.account,
        region: ev.region,
        detail: ev.detail,
    })
}

async fn replay(a: ReplayArgs) -> Result<i32> {
    // Every file is read before anything is recorded: a typo costs nothing.
    let events: Vec<Incoming> = a
        .files
        .iter()
        .map(|f| read_event(f))
        .collect::<Result<_>>()?;
    let (store, prefix) = Store::open(&a.store).await;
    let ctx = HealthCtx::on_store(store, &prefix, &Silent);
    if let Format::Table = a.format {
        println!(
            "{:<10} {:<16} {:<14} {:<20} event",
            "file", "outcome", "account", "tenants"
        );
    }
    for (file, inc) in a.files.iter().zip(&events) {
        let p = process(&ctx, inc, chrono::Utc::now())
            .await
            .with_context(|| format!("{}", file.display()))?;
        match a.format {
            Format::Json => println!(
                "{}",
                json!({
                    "event_arn": p.event_arn,
                    "account_id": p.account_id,
                    "outcome": p.outcome.as_str(),
                    "tenants": p.tenants,
                })
            ),
            Format::Table => println!(
                "{:<10} {:<16} {:<14} {:<20} {}",
                file.file_name().map_or("-".into(), |n| n.to_string_lossy()),
                p.outcome.as_str(),
                p.account_id.as_deref().unwrap_or("-"),
                if p.tenants.is_empty() {
                    "-".to_owned()
                } else {
                    p.tenants.join(",")
                },
                p.event_arn
            ),
        }
    }
    Ok(0)
}
