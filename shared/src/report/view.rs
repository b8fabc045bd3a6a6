//! The cost report people look at, as data: what `curlew report --format
//! html` shows of one billing period, built from committed rollups (every sum
//! exact, through [`aggregate`]). [`super::html`] renders it.

use super::{aggregate, Committed, Dim};
use crate::money::Money;
use crate::output::Finality;
use crate::registry::{Connection, ConnectionStatus};
use crate::rollup::Measure;
use chrono::{DateTime, Utc};

/// Services drawn as their own series in the daily chart; the rest is [`OTHER`].
pub const TOP_SERIES: usize = 8;
/// Rows of the top accounts / services tables.
pub const TOP_ROWS: usize = 10;
/// Services compared one by one with the previous month; the rest is [`OTHER`].
pub const TOP_COMPARED: usize = 12;
/// The series (and comparison row) of everything beyond the top ones.
pub const OTHER: &str = "Other";
/// What an empty key shows (as the terminal table does).
pub const NONE: &str = "(none)";

/// One billing period of a tenant, every source summed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportView {
    pub tenant: String,
    pub measure: Measure,
    pub period: String,
    /// The period's total of `measure`: the sum of every daily bar.
    pub total: Money,
    pub daily: DailyChart,
    pub top_accounts: Vec<Ranked>,
    pub top_services: Vec<Ranked>,
    /// The period against the previous committed one (`None`: there is none).
    pub comparison: Option<Comparison>,
    /// Estimated or final, per period and source shown.
    pub finality: Vec<FinalityRow>,
    /// The tenant's connections (empty: none in the registry).
    pub connections: Vec<ConnectionRow>,
    /// Savings Plans / Reserved Instances utilization and coverage, when known.
    pub commitments: Option<CommitmentsView>,
}

/// Cost by day, stacked by service: `days[i].costs[j]` is `series[j]`'s cost that day.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DailyChart {
    pub series: Vec<String>,
    pub days: Vec<Day>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub costs: Vec<Money>,
}

impl Day {
    pub fn total(&self) -> Money {
        self.costs.iter().sum()
    }
}

/// A name and its cost, with its share of the period's total (0..=1; `None` when the total is zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub name: String,
    pub cost: Money,
    pub share: Option<Money>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub previous_period: String,
    pub rows: Vec<Delta>,
    pub current_total: Money,
    pub previous_total: Money,
}

/// One service in both months.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub name: String,
    pub current: Money,
    pub previous: Money,
}

impl Delta {
    pub fn change(&self) -> Money {
        self.current - self.previous
    }
}

/// One committed revision: which source, and whether AWS has invoiced it.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalityRow {
    pub period: String,
    pub payer: String,
    pub report: String,
    pub revision: String,
    /// `None`: a summary written before curlew recorded finality.
    pub finality: Option<Finality>,
    pub invoice_ids: Vec<String>,
    pub rows_without_invoice: u64,
    pub cost: Money,
}

/// A connection as the sweep last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRow {
    pub payer: String,
    pub status: ConnectionStatus,
    pub cause: Option<String>,
    pub remedy: Option<String>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_delivery_at: Option<DateTime<Utc>>,
}

impl ConnectionRow {
    pub fn of(c: &Connection) -> ConnectionRow {
        ConnectionRow {
            payer: c.payer_account.clone(),
            status: c.status,
            cause: c.cause.map(|c| c.as_str().to_owned()),
            remedy: c.remedy.clone(),
            last_checked_at: c.last_checked_at,
            last_delivery_at: c.last_delivery_at,
        }
    }
}

/// Commitment utilization and coverage (Savings Plans, Reserved Instances).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommitmentsView {
    pub rows: Vec<CommitmentRow>,
}

/// One commitment (or kind of commitment). Fractions are 0..=1.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitmentRow {
    /// e.g. `Savings Plans`, `Reserved Instances`, or a commitment's ARN.
    pub name: String,
    /// Used commitment / total commitment.
    pub utilization: Option<Money>,
    /// Usage covered by the commitment / all eligible usage.
    pub coverage: Option<Money>,
    /// The commitment's cost in the period.
    pub commitment: Option<Money>,
    /// Commitment paid for and not used.
    pub unused: Option<Money>,
}

/// Commitment rows the page shows per commitment (largest commitment first).
const TOP_COMMITMENTS: usize = 10;
/// Accounts the page shows coverage for (largest eligible usage first).
const TOP_COVERAGE_ACCOUNTS: usize = 5;

impl CommitmentsView {
    /// The page's rows from a period's committed commitments: each kind's
    /// totals (utilization at the payer, coverage of all eligible usage by
    /// that kind), the largest commitments, all eligible usage, and the
    /// accounts with the most eligible usage. Every figure is one
    /// `curlew commitments` prints.
    pub fn from_commitments(c: &crate::commitments::Commitments) -> CommitmentsView {
        use crate::commitments::{ratio, Kind};
        let all = c.coverage_total();
        let mut rows = Vec::new();
        for (kind, label, covered) in [
            (Kind::SavingsPlan, "Savings Plans", all.savings_plan_cost),
            (
                Kind::Reservation,
                "Reserved Instances",
                all.reservation_cost,
            ),
        ] {
            if let Some(t) = c.totals(kind) {
                rows.push(CommitmentRow {
                    name: format!("{label} (all)"),
                    utilization: t.utilization(),
                    coverage: ratio(covered, all.eligible_cost),
                    commitment: Some(t.commitment_cost),
                    unused: Some(t.unused_cost),
                });
            }
        }
        let mut each: Vec<&(String, crate::commitments::Utilization)> =
            c.utilization.iter().collect();
        each.sort_by(|a, b| {
            b.1.commitment_cost
                .cmp(&a.1.commitment_cost)
                .then(a.0.cmp(&b.0))
        });
        for (id, u) in each.into_iter().take(TOP_COMMITMENTS) {
            rows.push(CommitmentRow {
                name: id.clone(),
                utilization: u.utilization(),
                coverage: None,
                commitment: Some(u.commitment_cost),
                unused: Some(u.unused_cost),
            });
        }
        if !c.coverage.is_empty() {
            rows.push(CommitmentRow {
                name: "All eligible usage (coverage)".into(),
                utilization: None,
                coverage: all.coverage(),
                commitment: None,
                unused: None,
            });
        }
        let mut accounts: Vec<&(String, crate::commitments::Coverage)> =
            c.coverage.iter().collect();
        accounts.sort_by(|a, b| {
            b.1.eligible_cost
                .cmp(&a.1.eligible_cost)
                .then(a.0.cmp(&b.0))
        });
        for (account, cv) in accounts.into_iter().take(TOP_COVERAGE_ACCOUNTS) {
            rows.push(CommitmentRow {
                name: format!("account {account} (coverage)"),
                utilization: None,
                coverage: cv.coverage(),
                commitment: None,
                unused: None,
            });
        }
        CommitmentsView { rows }
    }
}

/// `measure` of a group (zero when the rollups lack the column, as `report` prints `-`).
fn cost(s: &crate::rollup::Sums, measure: Measure) -> Money {
    s.measure(measure).unwrap_or(Money::ZERO)
}

fn name(k: &str) -> String {
    if k.is_empty() {
        NONE.to_owned()
    } else {
        k.to_owned()
    }
}

fn share(part: Money, total: Money) -> Option<Money> {
    part.checked_div(total)
}

impl ReportView {
    /// The view of `current` (the committed sources of one period), against
    /// `previous` (those of the previous committed period, if any).
    pub fn build(
        tenant: &str,
        measure: Measure,
        period: &str,
        current: &[Committed],
        previous: &[Committed],
        connections: &[Connection],
    ) -> ReportView {
        let total: Money = current
            .iter()
            .flat_map(|c| &c.rows)
            .map(|r| cost(&r.sums, measure))
            .sum();
        let ranked = |dim: Dim| -> Vec<Ranked> {
            aggregate(current, &[dim], measure)
                .into_iter()
                .take(TOP_ROWS)
                .map(|(k, s)| Ranked {
                    name: name(&k[0]),
                    cost: cost(&s, measure),
                    share: share(cost(&s, measure), total),
                })
                .collect()
        };
        ReportView {
            tenant: tenant.to_owned(),
            measure,
            period: period.to_owned(),
            total,
            daily: daily(current, measure),
            top_accounts: ranked(Dim::Account),
            top_services: ranked(Dim::Service),
            comparison: comparison(current, previous, measure),
            finality: current
                .iter()
                .chain(previous)
                .map(|c| finality_row(c, measure))
                .collect(),
            connections: connections.iter().map(ConnectionRow::of).collect(),
            commitments: None,
        }
    }
}

/// Cost by day and service: the top [`TOP_SERIES`] services of the period,
/// the rest as [`OTHER`].
pub fn daily(committed: &[Committed], measure: Measure) -> DailyChart {
    let services = aggregate(committed, &[Dim::Service], measure);
    let mut series: Vec<String> = services
        .iter()
        .take(TOP_SERIES)
        .map(|(k, _)| k[0].clone())
        .collect();
    let has_other = services.len() > TOP_SERIES;
    let mut by_day: std::collections::BTreeMap<String, Vec<Money>> = Default::default();
    let width = series.len() + usize::from(has_other);
    for (k, s) in aggregate(committed, &[Dim::Day, Dim::Service], measure) {
        let slot = series.iter().position(|x| *x == k[1]).unwrap_or(TOP_SERIES);
        let costs = by_day
            .entry(k[0].clone())
            .or_insert_with(|| vec![Money::ZERO; width]);
        costs[slot] += cost(&s, measure);
    }
    for s in &mut series {
        *s = name(s);
    }
    if has_other {
        series.push(OTHER.to_owned());
    }
    DailyChart {
        series,
        days: by_day
            .into_iter()
            .map(|(day, costs)| Day { day, costs })
            .collect(),
    }
}

fn comparison(
    current: &[Committed],
    previous: &[Committed],
    measure: Measure,
) -> Option<Comparison> {
    let previous_period = previous.first()?.period.clone();
    let mut both: std::collections::BTreeMap<String, Delta> = Default::default();
    for (set, is_current) in [(current, true), (previous, false)] {
        for (k, s) in aggregate(set, &[Dim::Service], measure) {
            let d = both.entry(k[0].clone()).or_insert_with(|| Delta {
                name: name(&k[0]),
                current: Money::ZERO,
                previous: Money::ZERO,
            });
            if is_current {
                d.current += cost(&s, measure);
            } else {
                d.previous += cost(&s, measure);
            }
        }
    }
    let mut rows: Vec<Delta> = both.into_values().collect();
    rows.sort_by(|a, b| {
        (b.current.max(b.previous))
            .cmp(&a.current.max(a.previous))
            .then_with(|| a.name.cmp(&b.name))
    });
    let current_total = rows.iter().map(|d| d.current).sum();
    let previous_total = rows.iter().map(|d| d.previous).sum();
    if rows.len() > TOP_COMPARED {
        let rest = rows.split_off(TOP_COMPARED);
        rows.push(Delta {
            name: OTHER.to_owned(),
            current: rest.iter().map(|d| d.current).sum(),
            previous: rest.iter().map(|d| d.previous).sum(),
        });
    }
    Some(Comparison {
        previous_period,
        rows,
        current_total,
        previous_total,
    })
}

fn finality_row(c: &Committed, measure: Measure) -> FinalityRow {
    FinalityRow {
        period: c.period.clone(),
        payer: c.source.payer.clone(),
        report: c.source.report.clone(),
        revision: c.current.revision.clone(),
        finality: c.summary.finality,
        invoice_ids: c.summary.invoice_ids.clone(),
        rows_without_invoice: c.summary.rows_without_invoice,
        cost: c.rows.iter().map(|r| cost(&r.sums, measure)).sum(),
    }
}

/// Load the view of `period` (default: the newest committed period) of
/// `tenant`, against the committed period before it, with the tenant's
/// connections from the registry in the same store. `None`: nothing committed
/// (or not `period`).
pub async fn load(
    ledger: &crate::ledger::Ledger,
    registry: &crate::registry::Registry,
    tenant: &str,
    period: Option<&str>,
    measure: Measure,
) -> Result<Option<ReportView>, super::ReportError> {
    let periods = super::committed_periods(ledger, tenant).await?;
    let Some(at) = (match period {
        Some(p) => periods.iter().position(|x| x == p),
        None => periods.len().checked_sub(1),
    }) else {
        return Ok(None);
    };
    let current = super::load_committed(ledger, tenant, Some(&periods[at])).await?;
    let previous = match at.checked_sub(1) {
        Some(i) => super::load_committed(ledger, tenant, Some(&periods[i])).await?,
        None => Vec::new(),
    };
    let mut connections = Vec::new();
    // Connections are optional on the page: a registry that cannot be
    // listed (no permission on it) costs their section, not the report.
    let keys = match registry.keys(Some(tenant)).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!("connections left out of the report: {e}");
            Vec::new()
        }
    };
    for (t, payer) in keys {
        match registry.get(&t, &payer).await {
            Ok((c, _)) => connections.push(c),
            // One unreadable document costs its own row, not the report.
            Err(e) => tracing::warn!("connection {payer} left out of the report: {e}"),
        }
    }
    let mut view = ReportView::build(
        tenant,
        measure,
        &periods[at],
        &current,
        &previous,
        &connections,
    );
    // Utilization and coverage, where the period's revisions have them (an
    // unreadable file costs its section, not the report).
    view.commitments = match crate::commitments::load_current(ledger, tenant, &periods[at]).await {
        Ok(c) => c.map(|c| CommitmentsView::from_commitments(&c)),
        Err(e) => {
            tracing::warn!("commitments left out of the report: {e}");
            None
        }
    };
    Ok(Some(view))
}
