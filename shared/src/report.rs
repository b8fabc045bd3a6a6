//! Reading committed rollups back (only through CURRENT) and re-aggregating
//! them; `view` and `html`: the cost report people look at (`chart`: its SVG).

mod chart;
pub mod html;
pub mod view;

use crate::dimensions::value_in;
use crate::ledger::{Current, Ledger, LedgerError, SourceId};
use crate::money::Money;
use crate::output::{read_rollup, OutputError, RollupRow, Summary};
use crate::rollup::{Measure, Sums};
use crate::store::StoreError;
use std::collections::BTreeMap;

/// What an untagged row shows under a tag or cost category dimension.
pub const UNTAGGED: &str = "(untagged)";

/// A report dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Period,
    Day,
    Payer,
    Account,
    Service,
    Region,
    Category,
    Type,
    UsageType,
    /// `tag:KEY`: the key's value in the rollup's `Tags`.
    Tag(String),
    /// `cost-category:NAME`: in `x_CostCategories`.
    CostCategory(String),
}

impl Dim {
    pub fn parse(s: &str) -> Option<Dim> {
        if let Some(k) = s.strip_prefix("tag:").filter(|k| !k.is_empty()) {
            return Some(Dim::Tag(k.into()));
        }
        if let Some(k) = s.strip_prefix("cost-category:").filter(|k| !k.is_empty()) {
            return Some(Dim::CostCategory(k.into()));
        }
        Some(match s {
            "period" => Dim::Period,
            "day" => Dim::Day,
            "payer" => Dim::Payer,
            "account" => Dim::Account,
            "service" => Dim::Service,
            "region" => Dim::Region,
            "category" => Dim::Category,
            "type" => Dim::Type,
            "usage-type" => Dim::UsageType,
            _ => return None,
        })
    }
    pub fn header(&self) -> String {
        match self {
            Dim::Tag(k) => format!("tag:{k}"),
            Dim::CostCategory(k) => format!("cost-category:{k}"),
            other => other.fixed_header().into(),
        }
    }

    fn fixed_header(&self) -> &'static str {
        match self {
            Dim::Period => "BillingPeriod",
            Dim::Day => "ChargePeriodStart",
            Dim::Payer => "BillingAccountId",
            Dim::Account => "SubAccountId",
            Dim::Service => "ServiceName",
            Dim::Region => "RegionId",
            Dim::Category => "ChargeCategory",
            Dim::Type => "x_LineItemType",
            Dim::UsageType => "x_UsageType",
            Dim::Tag(_) | Dim::CostCategory(_) => "",
        }
    }

    fn value(&self, period: &str, r: &RollupRow) -> String {
        // r.key = KEY_COLUMNS[1..]: payer, account, service code, service name,
        // region, category, type, usage type, currency, Tags, x_CostCategories
        let keyed = |json: &str, k: &str| value_in(json, k).unwrap_or_else(|| UNTAGGED.into());
        match self {
            Dim::Tag(k) => keyed(&r.key[9], k),
            Dim::CostCategory(k) => keyed(&r.key[10], k),
            Dim::Period => period.to_owned(),
            Dim::Day => r.day.clone(),
            Dim::Payer => r.key[0].clone(),
            Dim::Account => r.key[1].clone(),
            Dim::Service => r.key[3].clone(),
            Dim::Region => r.key[4].clone(),
            Dim::Category => r.key[5].clone(),
            Dim::Type => {
                if r.key[6].is_empty() {
                    r.key[5].clone()
                } else {
                    r.key[6].clone()
                }
            }
            Dim::UsageType => r.key[7].clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("{key} is not a summary ({problem})")]
    Summary { key: String, problem: String },
}

/// One committed period of one source: what CURRENT names, its rows and summary.
#[derive(Debug, Clone)]
pub struct Committed {
    pub period: String,
    pub source: SourceId,
    pub current: Current,
    pub rows: Vec<RollupRow>,
    pub summary: Summary,
}

/// The periods a tenant has committed (sorted), from every source.
pub async fn committed_periods(ledger: &Ledger, tenant: &str) -> Result<Vec<String>, ReportError> {
    let mut periods: Vec<String> = ledger
        .sources(tenant, None)
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    periods.dedup();
    Ok(periods)
}

/// Load what CURRENT names for every source of each committed period (or
/// just `period`): a tenant's report is the sum of its sources.
pub async fn load_committed(
    ledger: &Ledger,
    tenant: &str,
    period: Option<&str>,
) -> Result<Vec<Committed>, ReportError> {
    let mut out = Vec::new();
    for (p, source) in ledger.sources(tenant, period).await? {
        let Some((current, _)) = ledger.current(&source, &p).await? else {
            continue;
        };
        out.push(load_current(ledger, p, source, current).await?);
    }
    Ok(out)
}

/// Load the revision `current` names (its rollup and summary).
pub async fn load_current(
    ledger: &Ledger,
    period: String,
    source: SourceId,
    current: Current,
) -> Result<Committed, ReportError> {
    let (_, bytes) = ledger.store.get_bytes(&current.rollup_key).await?;
    let rows = read_rollup(&current.rollup_key, bytes)?;
    let summary = load_summary(ledger, &current.summary_key).await?;
    Ok(Committed {
        period,
        source,
        current,
        rows,
        summary,
    })
}

/// A revision's summary.json.
pub async fn load_summary(ledger: &Ledger, key: &str) -> Result<Summary, ReportError> {
    let (_, bytes) = ledger.store.get_bytes(key).await?;
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Summary {
        key: key.to_owned(),
        problem: e.to_string(),
    })
}

/// Groups of rollup rows by report dimensions, every measure summed exactly.
pub type Grouped = BTreeMap<Vec<String>, Sums>;

/// Add one committed row of `period` to its group of `dims` (the one
/// grouping rule of `curlew report` and `curlew diff`).
pub fn group_row(groups: &mut Grouped, period: &str, dims: &[Dim], r: &RollupRow) {
    let key: Vec<String> = dims.iter().map(|d| d.value(period, r)).collect();
    groups.entry(key).or_default().merge(&r.sums);
}

/// Group committed rows by `dims`, summing every measure exactly. Sorted by
/// `measure` descending, then key.
pub fn aggregate(
    committed: &[Committed],
    dims: &[Dim],
    measure: Measure,
) -> Vec<(Vec<String>, Sums)> {
    let mut groups = Grouped::new();
    for c in committed {
        for r in &c.rows {
            group_row(&mut groups, &c.period, dims, r);
        }
    }
    let mut v: Vec<(Vec<String>, Sums)> = groups.into_iter().collect();
    v.sort_by(|a, b| {
        let (x, y) = (
            a.1.measure(measure).unwrap_or(Money::ZERO),
            b.1.measure(measure).unwrap_or(Money::ZERO),
        );
        y.cmp(&x).then_with(|| a.0.cmp(&b.0))
    });
    v
}
