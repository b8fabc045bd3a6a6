//! `curlew diff`: what changed between two revisions of a month, per group,
//! exactly (curlew::diff does the work; this is arguments and rendering).

use crate::commands::{check_period, parse_dims, parse_measure};
use crate::render::money;
use anyhow::{bail, Result};
use clap::Args;
use curlew::diff::{diff_revisions, Between, DiffError, Missing, RevisionDiff};
use curlew::ledger::Ledger;
use curlew::money::Money;
use curlew::report::Dim;
use curlew::store::Store;

#[derive(Args)]
pub struct DiffArgs {
    /// Where committed rollups are: a directory or s3://bucket/prefix.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub out: String,
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// The billing period (YYYY-MM).
    #[arg(long)]
    pub period: String,
    /// Only this payer's source (when the tenant has several).
    #[arg(long)]
    pub payer: Option<String>,
    /// Only this report's source (when the payer has several).
    #[arg(long)]
    pub report: Option<String>,
    /// The earlier revision (default: the one `--to` replaced).
    #[arg(long)]
    pub from: Option<String>,
    /// The later revision (default: what CURRENT names).
    #[arg(long)]
    pub to: Option<String>,
    /// Group by, as `curlew report --by` (repeatable).
    #[arg(long = "by", default_values_t = vec!["service".to_string()])]
    pub by: Vec<String>,
    /// The measure compared, as `curlew report --measure`.
    #[arg(long, default_value = "billed")]
    pub measure: String,
    /// table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Changed groups shown in a table (0 = all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

pub async fn run(a: DiffArgs) -> Result<i32> {
    check_period(&a.period, "--period")?;
    let measure = parse_measure(&a.measure)?;
    let dims = parse_dims(&a.by)?;
    if !matches!(a.format.as_str(), "table" | "json") {
        bail!("--format {:?} is not known; use table or json", a.format);
    }
    let (out_store, out_prefix) = Store::open(&a.out).await;
    let ledger = Ledger::new(out_store, &out_prefix);
    let sources: Vec<_> = ledger
        .sources(&a.tenant, Some(&a.period))
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| a.payer.as_ref().is_none_or(|p| *p == s.payer))
        .filter(|s| a.report.as_ref().is_none_or(|r| *r == s.report))
        .collect();
    if sources.is_empty() {
        bail!(
            "nothing committed for tenant {:?}, period {}{}{} in {}; run `curlew ingest ROOT --out {}` first",
            a.tenant,
            a.period,
            a.payer.as_ref().map(|p| format!(", payer {p}")).unwrap_or_default(),
            a.report.as_ref().map(|r| format!(", report {r}")).unwrap_or_default(),
            a.out,
            a.out
        );
    }
    let named = a.from.is_some() || a.to.is_some();
    if named && sources.len() > 1 {
        bail!(
            "--from/--to name revisions of one source, and tenant {:?} has {} for {}: {}; add --payer and --report",
            a.tenant,
            sources.len(),
            a.period,
            sources
                .iter()
                .map(|s| format!("payer {} report {}", s.payer, s.report))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let between = Between {
        from: a.from.clone(),
        to: a.to.clone(),
    };
    let mut diffs = Vec::new();
    // With several sources, one whose month has a single revision is said
    // so; the others are still compared.
    let mut first_only: Vec<Box<Missing>> = Vec::new();
    for s in &sources {
        match diff_revisions(&ledger, s, &a.period, &between, &dims, measure).await {
            Ok(d) => diffs.push(d),
            Err(DiffError::NoEarlier(m)) if !named && sources.len() > 1 => first_only.push(m),
            Err(e) => return Err(e.into()),
        }
    }
    if diffs.is_empty() {
        bail!(
            "no source of tenant {:?} has an earlier revision of {} kept to compare with (each has one: {})",
            a.tenant,
            a.period,
            first_only
                .iter()
                .map(|m| format!("payer {} report {}: {}", m.src.payer, m.src.report, m.revision))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match a.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&json(&a, &diffs, &first_only))?
        ),
        _ => {
            for d in &diffs {
                table(d, a.top);
            }
            for m in &first_only {
                println!(
                    "{} — payer {}, report {}: revision={} is the only revision kept; nothing to compare",
                    a.period, m.src.payer, m.src.report, m.revision
                );
            }
        }
    }
    Ok(0)
}

fn json(a: &DiffArgs, diffs: &[RevisionDiff], first_only: &[Box<Missing>]) -> serde_json::Value {
    let total: Money = diffs.iter().map(|d| d.comparison.total_delta).sum();
    serde_json::json!({
        "tenant": a.tenant,
        "billing_period": a.period,
        "measure": diffs[0].comparison.measure.column(),
        "total_delta": total.normalize().to_string(),
        "sources": diffs.iter().map(source_json).collect::<Vec<_>>(),
        "only_one_revision": first_only.iter().map(|m| serde_json::json!({
            "payer_account": m.src.payer,
            "report": m.src.report,
            "revision": m.revision,
        })).collect::<Vec<_>>(),
    })
}

fn source_json(d: &RevisionDiff) -> serde_json::Value {
    let c = &d.comparison;
    let changes: Vec<serde_json::Value> = c
        .changes
        .iter()
        .map(|ch| {
            let key: serde_json::Map<String, serde_json::Value> = d
                .dims
                .iter()
                .zip(&ch.key)
                .map(|(dim, v)| (dim.header(), v.clone().into()))
                .collect();
            serde_json::json!({
                "key": key,
                "before": ch.before.map(|m| m.to_string()),
                "after": ch.after.map(|m| m.to_string()),
                "delta": ch.delta.to_string(),
            })
        })
        .collect();
    serde_json::json!({
        "payer_account": d.source.payer,
        "report": d.source.report,
        "from": d.from,
        "to": d.to,
        "total_delta": c.total_delta.to_string(),
        "groups_changed": c.changes.len(),
        "changes": changes,
    })
}

fn finality(f: Option<curlew::output::Finality>) -> &'static str {
    match f {
        Some(curlew::output::Finality::Final) => "final",
        Some(curlew::output::Finality::Estimated) => "estimated",
        None => "finality not recorded",
    }
}

fn signed(m: Money) -> String {
    if m.is_sign_positive() && !m.is_zero() {
        format!("+{}", money(m))
    } else {
        money(m)
    }
}

fn table(d: &RevisionDiff, top: usize) {
    let c = &d.comparison;
    let col = c.measure.column();
    let total = |s: &curlew::rollup::Sums| s.measure(c.measure).map(money).unwrap_or("-".into());
    println!(
        "{col} of {} — tenant {}, payer {}, report {}",
        d.period, d.source.tenant, d.source.payer, d.source.report
    );
    println!(
        "  from revision={} ({}): {}",
        d.from.revision,
        finality(d.from.finality),
        total(&c.before)
    );
    println!(
        "  to   revision={} ({}): {}",
        d.to.revision,
        finality(d.to.finality),
        total(&c.after)
    );
    println!(
        "  total delta {} (exact: {})",
        signed(c.total_delta),
        c.total_delta
    );
    if c.changes.is_empty() {
        println!("  no group changed");
        return;
    }
    let shown = if top == 0 {
        &c.changes[..]
    } else {
        &c.changes[..top.min(c.changes.len())]
    };
    let headers: Vec<String> = d.dims.iter().map(Dim::header).collect();
    let mut widths: Vec<usize> = headers.iter().map(String::len).collect();
    for ch in shown {
        for (w, v) in widths.iter_mut().zip(&ch.key) {
            *w = (*w).max(v.len().min(48));
        }
    }
    let cell = |m: Option<Money>| m.map(money).unwrap_or_else(|| "(none)".into());
    let rows: Vec<[String; 4]> = shown
        .iter()
        .map(|ch| {
            [
                cell(ch.before),
                cell(ch.after),
                signed(ch.delta),
                ch.delta.to_string(),
            ]
        })
        .collect();
    let nw: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([["before", "after", "delta", "exact delta"][i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut line = String::from(" ");
    for (h, w) in headers.iter().zip(&widths) {
        line.push_str(&format!(" {h:<w$}"));
    }
    for (h, w) in ["before", "after", "delta", "exact delta"].iter().zip(&nw) {
        line.push_str(&format!(" {h:>w$}"));
    }
    println!("{line}");
    for (ch, r) in shown.iter().zip(&rows) {
        let mut line = String::from(" ");
        for (v, w) in ch.key.iter().zip(&widths) {
            let v: String = v.chars().take(48).collect();
            line.push_str(&format!(" {v:<w$}"));
        }
        for (v, w) in r.iter().zip(&nw) {
            line.push_str(&format!(" {v:>w$}"));
        }
        println!("{line}");
    }
    if shown.len() < c.changes.len() {
        println!(
            "  ... {} more changed group(s); --top 0 shows all",
            c.changes.len() - shown.len()
        );
    }
}
