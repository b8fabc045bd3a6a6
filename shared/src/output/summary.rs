//! `summary.json`: what a committed revision of one billing period is made of.

use crate::commitments::{Commitments, Kind};
use crate::dimensions::Dimensions;
use crate::manifest::DeliveryKind;
use crate::money::Money;
use crate::pipeline::OffPeriod;
use crate::rollup::{PeriodRollup, ProviderSkip, Sums};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One input file of a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub rows: u64,
}

/// Where a revision came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: String,
    pub report: String,
    pub manifest_key: Option<String>,
    pub manifest_etag: Option<String>,
    /// `false` for bare data files: nothing vouches that the delivery is complete.
    pub vouched_by_manifest: bool,
    pub dialects: Vec<String>,
}

/// Spend not attributed because its usage account is not connected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unattributed {
    pub total: Sums,
    pub accounts: BTreeMap<String, Sums>,
}

/// Whether a revision's numbers are AWS's last word on the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finality {
    /// Some or all rows have no invoice id yet: AWS's estimate, it will change.
    Estimated,
    /// Every row carries an invoice id: the month is invoiced.
    Final,
}

impl Finality {
    /// Final when every row of the period has an invoice id.
    pub fn of(r: &PeriodRollup) -> Finality {
        if !r.invoice_ids.is_empty() && r.rows_without_invoice == 0 {
            Finality::Final
        } else {
            Finality::Estimated
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Finality::Estimated => "estimated",
            Finality::Final => "final",
        }
    }
}

/// The summary of one (tenant, billing period, revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub tenant: String,
    /// The payer account of the source (with tenant and report, whose CURRENT this is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_account: Option<String>,
    pub billing_period: String,
    pub revision: String,
    pub source: SourceInfo,
    pub input_files: Vec<InputFile>,
    pub rows_read: u64,
    pub rows_per_line_item_type: BTreeMap<String, u64>,
    /// Every row read (attributed + unattributed).
    pub totals: Sums,
    /// What the rollup file holds.
    pub attributed: Sums,
    pub unattributed: Unattributed,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_providers_skipped: BTreeMap<String, ProviderSkip>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_line_item_types: Vec<String>,
    pub rollup_rows: u64,
    /// Rows the files held for other billing periods than the manifest's:
    /// counted here, never committed into those periods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub off_period: BTreeMap<String, OffPeriod>,
    /// The tag and cost category dimensions the rollup is grouped by (its
    /// `Tags` and `x_CostCategories` columns hold these keys only).
    #[serde(default, skip_serializing_if = "Dimensions::is_empty")]
    pub dimensions: Dimensions,
    /// Estimated or final (absent in summaries written before curlew told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finality: Option<Finality>,
    /// The invoice ids the rows carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoice_ids: Vec<String>,
    #[serde(default)]
    pub rows_without_invoice: u64,
    /// Totals of commitments.parquet (absent when the period has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitments: Option<CommitmentTotals>,
}

/// Totals of a period's commitments (`crate::commitments`): per kind, the
/// used and total commitment over every commitment; coverage over every account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentTotals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savings_plans: Option<KindTotals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<KindTotals>,
    pub covered_cost: Money,
    pub eligible_cost: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Money>,
}

/// One kind of commitment, summed over its commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTotals {
    pub commitments: u64,
    pub used_cost: Money,
    pub unused_cost: Money,
    pub commitment_cost: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<Money>,
}

impl CommitmentTotals {
    fn of(period: &str, r: &PeriodRollup) -> Option<CommitmentTotals> {
        if r.commitments.is_empty() {
            return None;
        }
        let c = Commitments::from_sums(period, &r.commitments);
        let kind = |k: Kind| {
            c.totals(k).map(|u| KindTotals {
                commitments: c.utilization.iter().filter(|(_, x)| x.kind == k).count() as u64,
                used_cost: u.used_cost.normalize(),
                unused_cost: u.unused_cost.normalize(),
                commitment_cost: u.commitment_cost.normalize(),
                utilization: u.utilization(),
            })
        };
        let cov = c.coverage_total();
        Some(CommitmentTotals {
            savings_plans: kind(Kind::SavingsPlan),
            reservations: kind(Kind::Reservation),
            covered_cost: cov.covered_cost().normalize(),
            eligible_cost: cov.eligible_cost.normalize(),
            coverage: cov.coverage(),
        })
    }
}

impl Summary {
    pub fn new(
        tenant: &str,
        period: &str,
        revision: &str,
        kind: DeliveryKind,
        source: SourceInfo,
        input_files: Vec<InputFile>,
        r: &PeriodRollup,
    ) -> Summary {
        let unattributed_total = r.unattributed_total();
        let attributed = r.groups.total();
        let _ = kind;
        Summary {
            tenant: tenant.into(),
            payer_account: None,
            billing_period: period.into(),
            revision: revision.into(),
            source,
            input_files,
            rows_read: r.totals.rows,
            rows_per_line_item_type: r.rows_per_type.clone(),
            totals: r.totals.clone(),
            attributed,
            unattributed: Unattributed {
                total: unattributed_total,
                accounts: r.unattributed.clone(),
            },
            other_providers_skipped: r.other_providers.clone(),
            unknown_line_item_types: r.unknown_types.iter().cloned().collect(),
            rollup_rows: r.groups.len() as u64,
            off_period: BTreeMap::new(),
            dimensions: Dimensions::default(),
            finality: Some(Finality::of(r)),
            invoice_ids: r.invoice_ids.iter().cloned().collect(),
            rows_without_invoice: r.rows_without_invoice,
            commitments: CommitmentTotals::of(period, r),
        }
    }
}
