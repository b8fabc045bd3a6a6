//! `curlew export focus ROOT --out DIR`: line-level FOCUS 1.2 Parquet from
//! any billing input, through `curlew::export`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use curlew::discover::Source;
use curlew::export::{export_focus, units_text, ExportOptions, ExportReport};
use curlew::store::Store;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Every current revision under ROOT as FOCUS 1.2 Parquet, one file per input file, under DIR/billing_period=YYYY-MM/.
    Focus(FocusArgs),
}

#[derive(Args)]
pub struct FocusArgs {
    /// A directory holding a copy of the report's bucket prefix (or bare data files).
    pub root: PathBuf,
    /// Where the Parquet files go (Hive-partitioned by billing period).
    #[arg(long)]
    pub out: PathBuf,
    /// Only this report/export, when ROOT holds several.
    #[arg(long)]
    pub report: Option<String>,
}

pub async fn run(c: ExportCommand) -> Result<i32> {
    match c {
        ExportCommand::Focus(a) => focus(a).await,
    }
}

async fn focus(a: FocusArgs) -> Result<i32> {
    if !a.root.is_dir() {
        bail!(
            "{} is not a directory; point `curlew export focus` at the folder that holds a copy of the report's bucket prefix (or at bare data files)",
            a.root.display()
        );
    }
    if a.out.exists() && !a.out.is_dir() {
        bail!(
            "--out {} is a file; name a directory (it is created if missing)",
            a.out.display()
        );
    }
    let source = Source {
        store: Store::local(&a.root),
        prefix: String::new(),
    };
    let opts = ExportOptions {
        report: a.report.clone(),
    };
    let report = export_focus(&source, &a.out, &opts).await?;
    print!("{}", summary(&report));
    Ok(0)
}

/// What an export did, for a terminal: files, rows, per period totals.
pub fn summary(r: &ExportReport) -> String {
    let mut s = String::new();
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    let outputs: usize = r.files.iter().map(|f| f.written.len()).sum();
    let rows: u64 = r.periods.values().map(|t| t.rows).sum();
    s.push_str(&format!(
        "exported {} input files to {outputs} FOCUS 1.2 files, {rows} rows\n",
        r.files.len()
    ));
    for (period, t) in &r.periods {
        s.push_str(&format!(
            "  {period}: {} rows, BilledCost {}, EffectiveCost {}, ListCost {}, ContractedCost {}, ConsumedQuantity {}\n",
            t.rows,
            units_text(t.billed),
            units_text(t.effective),
            units_text(t.list),
            units_text(t.contracted),
            units_text(t.consumed)
        ));
    }
    let off: u64 = r.files.iter().map(|f| f.off_period_rows).sum();
    if off > 0 {
        s.push_str(&format!(
            "  {off} rows of another billing period than their manifest's: not exported (as ingestion)\n"
        ));
    }
    for (p, o) in &r.other_providers {
        s.push_str(&format!(
            "  not AWS, not exported: {p}: {} rows, BilledCost {}\n",
            o.rows, o.billed_cost
        ));
    }
    s
}
