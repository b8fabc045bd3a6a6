//! `curlew commitments`: RI and Savings Plans utilization and coverage of a
//! committed period (commitments.parquet, through CURRENT).

use crate::commands::check_period;
use crate::render::money;
use anyhow::{bail, Result};
use clap::Args;
use curlew::commitments::{load_current, Commitments, Coverage, Kind, Utilization};
use curlew::ledger::Ledger;
use curlew::money::Money;
use curlew::store::Store;
use serde_json::{json, Value};

#[derive(Args)]
pub struct CommitmentsArgs {
    /// Where committed rollups are: a directory or s3://bucket/prefix.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub out: String,
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// The billing period (YYYY-MM).
    #[arg(long)]
    pub period: String,
    /// table or json (exact decimals as strings).
    #[arg(long, default_value = "table")]
    pub format: String,
}

pub async fn run(a: CommitmentsArgs) -> Result<i32> {
    check_period(&a.period, "--period")?;
    if !matches!(a.format.as_str(), "table" | "json") {
        bail!("--format {:?} is not known; use table or json", a.format);
    }
    let (store, prefix) = Store::open(&a.out).await;
    let ledger = Ledger::new(store, &prefix);
    let Some(c) = load_current(&ledger, &a.tenant, &a.period).await? else {
        bail!(
            "no commitments committed for tenant {:?} and period {} in {}; run `curlew ingest ROOT --out {}` first (a revision committed before curlew computed commitments has none: ingest it again)",
            a.tenant,
            a.period,
            a.out,
            a.out
        );
    };
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&to_json(&a.tenant, &c))?);
    } else {
        table(&a.tenant, &c);
    }
    Ok(0)
}

fn exact(m: Money) -> Value {
    Value::String(m.normalize().to_string())
}

fn opt(m: Option<Money>) -> Value {
    m.map_or(Value::Null, exact)
}

fn util_json(u: &Utilization) -> Value {
    json!({
        "kind": u.kind.as_str(),
        "payer": u.payer,
        "rows": u.rows,
        "used_quantity": opt(u.used_quantity),
        "unused_quantity": opt(u.unused_quantity),
        "used_cost": exact(u.used_cost),
        "unused_cost": exact(u.unused_cost),
        "commitment_cost": exact(u.commitment_cost),
        "utilization": opt(u.utilization()),
        "utilization_by_quantity": opt(u.utilization_by_quantity()),
    })
}

fn coverage_json(c: &Coverage) -> Value {
    json!({
        "payer": c.payer,
        "rows": c.rows,
        "reservation_cost": exact(c.reservation_cost),
        "savings_plan_cost": exact(c.savings_plan_cost),
        "covered_cost": exact(c.covered_cost()),
        "eligible_cost": exact(c.eligible_cost),
        "coverage": opt(c.coverage()),
    })
}

/// The JSON of `curlew commitments --format json`.
fn to_json(tenant: &str, c: &Commitments) -> Value {
    let utilization: Vec<Value> = c
        .utilization
        .iter()
        .map(|(id, u)| {
            let mut v = util_json(u);
            v["commitment_id"] = json!(id);
            v
        })
        .collect();
    let coverage: Vec<Value> = c
        .coverage
        .iter()
        .map(|(account, cv)| {
            let mut v = coverage_json(cv);
            v["account"] = json!(account);
            v
        })
        .collect();
    let kind = |k: Kind| c.totals(k).map_or(Value::Null, |u| util_json(&u));
    json!({
        "tenant": tenant,
        "billing_period": c.period,
        "utilization": utilization,
        "coverage": coverage,
        "totals": {
            "savings_plans": kind(Kind::SavingsPlan),
            "reservations": kind(Kind::Reservation),
            "coverage": coverage_json(&c.coverage_total()),
        },
    })
}

/// A ratio as a percentage with two decimals (the JSON keeps every digit).
fn percent(r: Option<Money>) -> String {
    r.map_or("-".into(), |r| {
        format!("{:.2}%", (r * Money::ONE_HUNDRED).round_dp(2))
    })
}

fn table(tenant: &str, c: &Commitments) {
    println!("Commitments of tenant {tenant}, {}", c.period);
    println!();
    println!(
        "{:<12} {:<90} {:>16} {:>16} {:>16} {:>9} {:>9}",
        "KIND", "COMMITMENT", "USED", "UNUSED", "COMMITMENT", "UTIL", "HOURS"
    );
    let line = |kind: &str, id: &str, u: &Utilization| {
        println!(
            "{:<12} {:<90} {:>16} {:>16} {:>16} {:>9} {:>9}",
            kind,
            id,
            money(u.used_cost),
            money(u.unused_cost),
            money(u.commitment_cost),
            percent(u.utilization()),
            percent(u.utilization_by_quantity())
        );
    };
    for (id, u) in &c.utilization {
        line(u.kind.as_str(), id, u);
    }
    for k in [Kind::SavingsPlan, Kind::Reservation] {
        if let Some(t) = c.totals(k) {
            line("TOTAL", k.as_str(), &t);
        }
    }
    if c.utilization.is_empty() {
        println!("(no Savings Plans or reservations in this period)");
    }
    println!();
    println!(
        "{:<14} {:>16} {:>16} {:>16} {:>9}",
        "ACCOUNT", "RI COVERED", "SP COVERED", "ELIGIBLE", "COVERAGE"
    );
    let cov = |account: &str, cv: &Coverage| {
        println!(
            "{:<14} {:>16} {:>16} {:>16} {:>9}",
            account,
            money(cv.reservation_cost),
            money(cv.savings_plan_cost),
            money(cv.eligible_cost),
            percent(cv.coverage())
        );
    };
    for (account, cv) in &c.coverage {
        cov(account, cv);
    }
    cov("TOTAL", &c.coverage_total());
    println!();
    println!("Utilization at the payer, per commitment; coverage per usage account, on the on-demand equivalent of eligible usage (README: Commitments).");
}
