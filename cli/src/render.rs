//! Terminal output: the ingest summary and report tables.

use anyhow::Result;
use curlew::ingest::{DeliveryStatus, IngestReport};
use curlew::ledger::CommitOutcome;
use curlew::money::Money;
use curlew::report::{Committed, Dim};
use curlew::rollup::{Measure, Sums};
use std::time::Duration;

pub(crate) fn money(m: Money) -> String {
    // Display rounded to cents; the files keep every digit.
    let r = m.round_dp(2);
    let s = format!("{r:.2}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
}

/// Estimated or final, and a restatement said plainly.
pub fn finality(s: &curlew::output::Summary, restates: Option<&str>) -> String {
    use curlew::output::Finality;
    let mut line = match s.finality {
        Some(Finality::Final) => format!("final: invoiced ({})", s.invoice_ids.join(", ")),
        Some(Finality::Estimated) if s.invoice_ids.is_empty() => {
            "estimated: no invoice yet (AWS revises estimated months)".to_string()
        }
        Some(Finality::Estimated) => format!(
            "estimated: {} row(s) without an invoice id beside invoice {}",
            s.rows_without_invoice,
            s.invoice_ids.join(", ")
        ),
        None => "finality not recorded (summary from an older curlew)".to_string(),
    };
    if let Some(r) = restates {
        line.push_str(&format!("; RESTATEMENT: replaces {r}, which was final"));
    }
    line
}

pub fn ingest_summary(r: &IngestReport, out: &str, took: Duration, bytes: u64) {
    println!(
        "curlew ingest: {} deliver{} in {:.2?} ({} read)",
        r.deliveries.len(),
        if r.deliveries.len() == 1 { "y" } else { "ies" },
        took,
        indicatif::HumanBytes(bytes)
    );
    for w in &r.warnings {
        println!("  warning: {w}");
    }
    for d in &r.deliveries {
        let what = format!(
            "{} (payer {}) {} {}",
            if d.report.is_empty() {
                "(bare files)"
            } else {
                &d.report
            },
            d.source.payer,
            d.period.as_deref().unwrap_or(""),
            d.revision
        );
        match &d.status {
            DeliveryStatus::Committed(periods) => {
                for p in periods {
                    let s = &p.summary;
                    let state = match &p.outcome {
                        CommitOutcome::Committed {
                            previous: Some(prev),
                        } => format!("committed (replaces {prev})"),
                        CommitOutcome::Committed { previous: None } => "committed".into(),
                        CommitOutcome::NotNewer { current } => {
                            format!("not newer than {current}; unchanged")
                        }
                    };
                    println!("  {} period {}: {state}", what.trim(), p.period);
                    println!(
                        "    {} rows from {} file(s); BilledCost {}  EffectiveCost {}  (attributed {})",
                        s.rows_read,
                        s.input_files.len(),
                        money(s.totals.billed_cost),
                        money(s.totals.effective_cost),
                        money(s.attributed.billed_cost)
                    );
                    let types: Vec<String> = s
                        .rows_per_line_item_type
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect();
                    println!("    rows by type: {}", types.join(", "));
                    println!("    {}", finality(s, p.restates.as_deref()));
                    if !s.unattributed.accounts.is_empty() {
                        println!(
                            "    unattributed: {} in {} unconnected account(s): {}",
                            money(s.unattributed.total.billed_cost),
                            s.unattributed.accounts.len(),
                            s.unattributed
                                .accounts
                                .keys()
                                .take(8)
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    for (other, o) in &s.off_period {
                        println!("    {} row(s) dated in billing period {other} (BilledCost {}): counted here, not committed to {other} (the manifest decides the period)", o.rows, money(o.billed_cost));
                    }
                    for (prov, skip) in &s.other_providers_skipped {
                        println!("    skipped {} row(s) of provider {prov} (BilledCost {}): curlew ingests AWS rows only", skip.rows, money(skip.billed_cost));
                    }
                    if !s.unknown_line_item_types.is_empty() {
                        println!(
                            "    note: unknown line item types ingested as Usage: {}",
                            s.unknown_line_item_types.join(", ")
                        );
                    }
                }
            }
            DeliveryStatus::AlreadyCurrent { current } => println!(
                "  {}: already committed (current {current}); nothing to do",
                what.trim()
            ),
            DeliveryStatus::BeforeSince => println!("  {}: before --since; skipped", what.trim()),
            DeliveryStatus::OtherReport => {
                println!("  {}: not the --report asked for; skipped", what.trim())
            }
            DeliveryStatus::Held(why) => println!("  {}: held back: {why}", what.trim()),
            DeliveryStatus::Abandoned(why) => {
                println!("  {}: abandoned, nothing committed: {why}", what.trim())
            }
            DeliveryStatus::Failed(rec) => println!(
                "  {}: FAILED ({}; recorded, not retried): {}",
                what.trim(),
                rec.class,
                rec.error
            ),
            DeliveryStatus::Retry(e) => println!(
                "  {}: FAILED ({}; run again later): {e}",
                what.trim(),
                e.class()
            ),
        }
    }
    for e in &r.errors {
        println!("  error: {e}");
    }
    println!("  output: {out}");
}

pub fn table(
    committed: &[Committed],
    dims: &[Dim],
    measure: Measure,
    rows: &[(Vec<String>, Sums)],
    top: usize,
) {
    let periods: Vec<&str> = committed.iter().map(|c| c.period.as_str()).collect();
    println!(
        "{} by {} — tenant {}, period{} {}",
        measure.column(),
        dims.iter()
            .map(|d| d.header())
            .collect::<Vec<_>>()
            .join(", "),
        committed
            .first()
            .map(|c| c.summary.tenant.as_str())
            .unwrap_or(""),
        if periods.len() == 1 { "" } else { "s" },
        periods.join(", ")
    );
    let shown: Vec<&(Vec<String>, Sums)> = if top == 0 {
        rows.iter().collect()
    } else {
        rows.iter().take(top).collect()
    };
    let mut widths: Vec<usize> = dims.iter().map(|d| d.header().len()).collect();
    for (k, _) in &shown {
        for (w, v) in widths.iter_mut().zip(k) {
            *w = (*w).max(v.len().min(48));
        }
    }
    let values: Vec<String> = shown
        .iter()
        .map(|(_, s)| s.measure(measure).map(money).unwrap_or_else(|| "-".into()))
        .collect();
    let vw = values
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(measure.column().len())
        .max(16);
    let mut line = String::new();
    for (d, w) in dims.iter().zip(&widths) {
        line.push_str(&format!("{:<w$}  ", d.header(), w = *w));
    }
    println!("{line}{:>vw$}  {:>9}", measure.column(), "LineItems");
    println!("{}", "-".repeat(line.len() + vw + 11));
    for ((k, s), v) in shown.iter().zip(&values) {
        let mut line = String::new();
        for (val, w) in k.iter().zip(&widths) {
            let val: String = val.chars().take(48).collect();
            line.push_str(&format!(
                "{:<w$}  ",
                if val.is_empty() {
                    "(none)".to_string()
                } else {
                    val
                },
                w = *w
            ));
        }
        println!("{line}{v:>vw$}  {:>9}", s.rows);
    }
    if shown.len() < rows.len() {
        let mut rest = Sums::default();
        for (_, s) in &rows[shown.len()..] {
            rest.merge(s);
        }
        let label = format!("({} more)", rows.len() - shown.len());
        let w0: usize = widths.iter().map(|w| w + 2).sum();
        println!(
            "{label:<w0$}{:>vw$}  {:>9}",
            rest.measure(measure)
                .map(money)
                .unwrap_or_else(|| "-".into()),
            rest.rows
        );
    }
    let mut total = Sums::default();
    for (_, s) in rows {
        total.merge(s);
    }
    let w0: usize = widths.iter().map(|w| w + 2).sum();
    println!("{}", "-".repeat(line.len() + vw + 11));
    println!(
        "{:<w0$}{:>vw$}  {:>9}",
        "Total",
        total
            .measure(measure)
            .map(money)
            .unwrap_or_else(|| "-".into()),
        total.rows
    );
    if let Some(exact) = total.measure(measure) {
        println!("exact total: {exact}");
    }
    let unattributed: Money = committed
        .iter()
        .map(|c| c.summary.unattributed.total.billed_cost)
        .sum();
    if !unattributed.is_zero() {
        println!(
            "not attributed (unconnected accounts): BilledCost {}",
            money(unattributed)
        );
    }
}

pub fn csv(dims: &[Dim], rows: &[(Vec<String>, Sums)]) -> Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    let mut header: Vec<String> = dims.iter().map(|d| d.header()).collect();
    header.extend(Measure::ALL.iter().map(|m| m.column().to_string()));
    header.push("x_LineItemCount".into());
    w.write_record(&header)?;
    for (k, s) in rows {
        let mut rec = k.clone();
        rec.extend(
            Measure::ALL
                .iter()
                .map(|m| s.measure(*m).map(|v| v.to_string()).unwrap_or_default()),
        );
        rec.push(s.rows.to_string());
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

pub fn json(dims: &[Dim], rows: &[(Vec<String>, Sums)]) -> Result<()> {
    let v: Vec<serde_json::Value> = rows
        .iter()
        .map(|(k, s)| {
            let mut o = serde_json::Map::new();
            for (d, v) in dims.iter().zip(k) {
                o.insert(d.header(), v.clone().into());
            }
            for m in Measure::ALL {
                if let Some(v) = s.measure(m) {
                    o.insert(m.column().into(), v.to_string().into());
                }
            }
            o.insert("x_LineItemCount".into(), s.rows.into());
            serde_json::Value::Object(o)
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
