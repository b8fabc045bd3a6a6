//! RI and Savings Plans utilization and coverage, from the billing data itself
//! (issue 15, item 3): a small side table of each period, summed as rows are
//! read (staged with the part, merged by the commit) and written beside the
//! rollup as `commitments.parquet`.
//!
//! Utilization is per commitment (ARN / CommitmentDiscountId), at the payer:
//! - Savings Plans (CUR): used = Σ `savingsPlan/UsedCommitment`, commitment =
//!   Σ `savingsPlan/TotalCommitmentToDate` over `SavingsPlanRecurringFee` rows;
//!   unused = the difference.
//! - Reserved Instances (CUR): used hours = Σ `lineItem/UsageAmount` on
//!   `DiscountedUsage`, unused hours = Σ `reservation/UnusedQuantity` on `RIFee`;
//!   used cost = Σ `reservation/EffectiveCost` on `DiscountedUsage`, unused cost =
//!   Σ (`reservation/UnusedAmortizedUpfrontFeeForBillingPeriod` +
//!   `reservation/UnusedRecurringFee`) on `RIFee`.
//! - FOCUS: rows with a CommitmentDiscountId and a CommitmentDiscountStatus of
//!   `Used` / `Unused`: quantity from CommitmentDiscountQuantity, cost from EffectiveCost.
//!
//! Coverage is per usage account, on the on-demand equivalent
//! (`pricing/publicOnDemandCost`, FOCUS ListCost) of the usage the Cloud
//! Intelligence Dashboards' `summary_view` calls `Running_Usage` (line item
//! types `Usage`, `DiscountedUsage`, `SavingsPlanCoveredUsage`): covered by
//! reservations (`DiscountedUsage`), by Savings Plans (`SavingsPlanCoveredUsage`),
//! of all of it. FOCUS: ChargeCategory `Usage` rows not `Unused`, covered when `Used`.

mod load;
mod parquet;

pub use load::{commitments_key, load_current, CommitmentsError};
pub use parquet::{read_commitments, write_commitments};

use crate::charge::AmortizedInput;
use crate::fields::Field;
use crate::money::{to_sum_units_rounded, Accumulator, Money};

use crate::read::{nullish, BadField, RowAccess};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What kind of commitment discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    SavingsPlan,
    Reservation,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SavingsPlan => "SavingsPlan",
            Kind::Reservation => "Reservation",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "SavingsPlan" => Some(Kind::SavingsPlan),
            "Reservation" => Some(Kind::Reservation),
            _ => None,
        }
    }

    /// FOCUS CommitmentDiscountType (`Savings Plan`, `Reserved Instance`, ...).
    fn of_focus_type(t: &[u8]) -> Kind {
        if t.to_ascii_lowercase().windows(7).any(|w| w == b"savings") {
            Kind::SavingsPlan
        } else {
            Kind::Reservation
        }
    }
}

/// Sums of one commitment over a period (additive: parts merge by adding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utilization {
    pub kind: Kind,
    /// The payer (`bill/PayerAccountId`, FOCUS BillingAccountId).
    pub payer: String,
    pub rows: u64,
    /// Hours (RI) or commitment units (FOCUS CommitmentDiscountQuantity) used;
    /// `None` where the input has no quantity (CUR Savings Plans).
    pub used_quantity: Option<Money>,
    pub unused_quantity: Option<Money>,
    pub used_cost: Money,
    pub unused_cost: Money,
    /// The commitment of the period: Σ TotalCommitmentToDate (CUR Savings
    /// Plans), used + unused cost otherwise.
    pub commitment_cost: Money,
}

impl Utilization {
    fn new(kind: Kind, payer: &[u8]) -> Self {
        Utilization {
            kind,
            payer: String::from_utf8_lossy(payer).into_owned(),
            rows: 0,
            used_quantity: None,
            unused_quantity: None,
            used_cost: Money::ZERO,
            unused_cost: Money::ZERO,
            commitment_cost: Money::ZERO,
        }
    }

    fn merge(&mut self, o: &Utilization) {
        self.rows += o.rows;
        add_opt(&mut self.used_quantity, o.used_quantity);
        add_opt(&mut self.unused_quantity, o.unused_quantity);
        self.used_cost += o.used_cost;
        self.unused_cost += o.unused_cost;
        self.commitment_cost += o.commitment_cost;
    }

    /// Utilization by cost: used / commitment (`None` without a commitment).
    pub fn utilization(&self) -> Option<Money> {
        ratio(self.used_cost, self.commitment_cost)
    }

    /// Utilization by quantity (RI hours): used / (used + unused).
    pub fn utilization_by_quantity(&self) -> Option<Money> {
        let used = self.used_quantity.unwrap_or_default();
        let unused = self.unused_quantity.unwrap_or_default();
        if self.used_quantity.is_none() && self.unused_quantity.is_none() {
            return None;
        }
        ratio(used, used + unused)
    }
}

/// On-demand equivalent of one usage account's eligible usage (additive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub payer: String,
    pub rows: u64,
    /// Covered by reservations (DiscountedUsage).
    pub reservation_cost: Money,
    /// Covered by Savings Plans (SavingsPlanCoveredUsage).
    pub savings_plan_cost: Money,
    /// All eligible usage, covered or not.
    pub eligible_cost: Money,
}

impl Coverage {
    fn merge(&mut self, o: &Coverage) {
        if self.payer.is_empty() {
            self.payer.clone_from(&o.payer);
        }
        self.rows += o.rows;
        self.reservation_cost += o.reservation_cost;
        self.savings_plan_cost += o.savings_plan_cost;
        self.eligible_cost += o.eligible_cost;
    }

    pub fn covered_cost(&self) -> Money {
        self.reservation_cost + self.savings_plan_cost
    }

    /// Covered / eligible (`None` without eligible usage).
    pub fn coverage(&self) -> Option<Money> {
        ratio(self.covered_cost(), self.eligible_cost)
    }
}

/// `a / b` as DECIMAL(38,18) stores it (rounded half away from zero at 18
/// decimals); `None` when `b` is zero.
pub fn ratio(a: Money, b: Money) -> Option<Money> {
    if b.is_zero() {
        return None;
    }
    let q = a.checked_div(b)?;
    to_sum_units_rounded(q).map(|u| Money::from_i128_with_scale(u, 18).normalize())
}

fn add_opt(acc: &mut Option<Money>, v: Option<Money>) {
    if let Some(v) = v {
        *acc = Some(acc.unwrap_or(Money::ZERO) + v);
    }
}

/// One period's commitments: utilization per commitment id, coverage per
/// usage account. What a part stages and the commit merges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentSums {
    #[serde(default)]
    pub utilization: BTreeMap<String, Utilization>,
    #[serde(default)]
    pub coverage: BTreeMap<String, Coverage>,
}

impl CommitmentSums {
    pub fn is_empty(&self) -> bool {
        self.utilization.is_empty() && self.coverage.is_empty()
    }

    pub fn merge(&mut self, o: &CommitmentSums) {
        for (id, u) in &o.utilization {
            match self.utilization.get_mut(id) {
                Some(mine) => mine.merge(u),
                None => {
                    self.utilization.insert(id.clone(), u.clone());
                }
            }
        }
        for (a, c) in &o.coverage {
            self.coverage.entry(a.clone()).or_default().merge(c);
        }
    }
}

/// What a row is to coverage: eligible usage, and by what it is covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    OnDemand,
    Reservation,
    SavingsPlan,
}

/// The coverage role of a CUR line item type (CID `summary_view`'s `Running_Usage`).
pub fn cur_role(line_item_type: &[u8]) -> Option<Role> {
    match line_item_type {
        b"Usage" => Some(Role::OnDemand),
        b"DiscountedUsage" => Some(Role::Reservation),
        b"SavingsPlanCoveredUsage" => Some(Role::SavingsPlan),
        _ => None,
    }
}

/// Whether a CUR row of this amortized rule feeds utilization (reads the
/// commitment's ARN and numbers): `SavingsPlanRecurringFee`, `DiscountedUsage`, `RIFee`.
pub fn feeds_utilization(rule: AmortizedInput) -> bool {
    matches!(
        rule,
        AmortizedInput::SpCommitment | AmortizedInput::RiEffective | AmortizedInput::RiUnused
    )
}

/// One row's share of a commitment's utilization.
#[derive(Debug)]
pub struct UtilRow<'r> {
    pub id: &'r [u8],
    pub payer: &'r [u8],
    pub kind: Kind,
    pub used_quantity: Option<Money>,
    pub unused_quantity: Option<Money>,
    pub used_cost: Money,
    pub unused_cost: Money,
    pub commitment_cost: Money,
}

fn num<R: RowAccess>(r: &R, f: Field) -> Result<Option<Money>, BadField> {
    r.number(f).map_err(|e| BadField {
        field: f,
        problem: e.to_string(),
    })
}

/// A CUR row's share of utilization, for a row whose rule
/// [`feeds_utilization`]; `None` without an ARN.
pub fn cur_util_row<R: RowAccess>(
    r: &R,
    rule: AmortizedInput,
) -> Result<Option<UtilRow<'_>>, BadField> {
    let z = Money::ZERO;
    let payer = r.text(Field::PayerAccount);
    Ok(match rule {
        AmortizedInput::SpCommitment => {
            let id = r.text(Field::SavingsPlanArn);
            if id.is_empty() {
                return Ok(None);
            }
            let total = num(r, Field::SpTotalCommitment)?.unwrap_or(z);
            let used = num(r, Field::SpUsedCommitment)?.unwrap_or(z);
            Some(UtilRow {
                id,
                payer,
                kind: Kind::SavingsPlan,
                used_quantity: None,
                unused_quantity: None,
                used_cost: used,
                unused_cost: total - used,
                commitment_cost: total,
            })
        }
        AmortizedInput::RiEffective | AmortizedInput::RiUnused => {
            let id = r.text(Field::ReservationArn);
            if id.is_empty() {
                return Ok(None);
            }
            let used = rule == AmortizedInput::RiEffective;
            let (quantity, cost) = if used {
                (
                    num(r, Field::UsageAmount)?.unwrap_or(z),
                    num(r, Field::RiEffectiveCost)?.unwrap_or(z),
                )
            } else {
                let upfront = num(r, Field::RiUnusedAmortizedUpfront)?.unwrap_or(z);
                let recurring = num(r, Field::RiUnusedRecurring)?.unwrap_or(z);
                (
                    num(r, Field::RiUnusedQuantity)?.unwrap_or(z),
                    upfront + recurring,
                )
            };
            Some(UtilRow {
                id,
                payer,
                kind: Kind::Reservation,
                used_quantity: Some(if used { quantity } else { z }),
                unused_quantity: Some(if used { z } else { quantity }),
                used_cost: if used { cost } else { z },
                unused_cost: if used { z } else { cost },
                commitment_cost: cost,
            })
        }
        _ => None,
    })
}

/// A FOCUS row's commitment status: `Used`, `Unused`, or neither.
fn focus_status(r: &impl RowAccess) -> Option<bool> {
    match nullish(r.text(Field::CommitmentDiscountStatus)) {
        b"Used" => Some(true),
        b"Unused" => Some(false),
        _ => None,
    }
}

/// A FOCUS row's share of utilization (a CommitmentDiscountId and a status).
pub fn focus_util_row<R: RowAccess>(r: &R) -> Result<Option<UtilRow<'_>>, BadField> {
    let id = nullish(r.text(Field::CommitmentDiscountId));
    let Some(used) = focus_status(r).filter(|_| !id.is_empty()) else {
        return Ok(None);
    };
    let z = Money::ZERO;
    let quantity = num(r, Field::CommitmentDiscountQuantity)?;
    let cost = num(r, Field::EffectiveCost)?.unwrap_or(z);
    let q = |mine: bool| quantity.map(|q| if mine { q } else { z });
    Ok(Some(UtilRow {
        id,
        payer: nullish(r.text(Field::BillingAccountId)),
        kind: Kind::of_focus_type(nullish(r.text(Field::CommitmentDiscountType))),
        used_quantity: q(used),
        unused_quantity: q(!used),
        used_cost: if used { cost } else { z },
        unused_cost: if used { z } else { cost },
        commitment_cost: cost,
    }))
}

/// A FOCUS row's coverage role: ChargeCategory `Usage` and not an unused
/// commitment; covered when `Used`, by its CommitmentDiscountType.
pub fn focus_role<R: RowAccess>(r: &R, charge_category: &[u8]) -> Option<Role> {
    if charge_category != b"Usage" {
        return None;
    }
    match focus_status(r) {
        Some(false) => None,
        Some(true) => Some(
            match Kind::of_focus_type(nullish(r.text(Field::CommitmentDiscountType))) {
                Kind::SavingsPlan => Role::SavingsPlan,
                Kind::Reservation => Role::Reservation,
            },
        ),
        None => Some(Role::OnDemand),
    }
}

/// Where a row's on-demand equivalent goes: an account's coverage sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverageSlot {
    index: u32,
    role: Role,
}

/// Per account: on-demand-equivalent accumulators [eligible, reservation, savings plan].
struct AccountCoverage {
    account: Vec<u8>,
    payer: Vec<u8>,
    rows: u64,
    sums: [Accumulator; 3],
}

/// One period's commitments as rows arrive (inside `RollupBuilder`): the fast
/// path adds coverage in fixed point through a [`CoverageSlot`], utilization
/// row by row (commitment rows are few).
#[derive(Default)]
pub struct CommitmentsBuilder {
    utilization: hashbrown::HashMap<Vec<u8>, Utilization>,
    coverage: Vec<AccountCoverage>,
    coverage_index: hashbrown::HashMap<Vec<u8>, u32>,
}

impl CommitmentsBuilder {
    pub fn add_utilization(&mut self, row: &UtilRow<'_>) {
        if !self.utilization.contains_key(row.id) {
            let u = Utilization::new(row.kind, row.payer);
            self.utilization.insert(row.id.to_vec(), u);
        }
        let u = self.utilization.get_mut(row.id).expect("inserted");
        u.rows += 1;
        add_opt(&mut u.used_quantity, row.used_quantity);
        add_opt(&mut u.unused_quantity, row.unused_quantity);
        u.used_cost += row.used_cost;
        u.unused_cost += row.unused_cost;
        u.commitment_cost += row.commitment_cost;
    }

    /// The slot of `account`'s coverage for rows of `role`.
    pub fn coverage_slot(&mut self, payer: &[u8], account: &[u8], role: Role) -> CoverageSlot {
        let index = match self.coverage_index.get(account) {
            Some(i) => *i,
            None => {
                let i = self.coverage.len() as u32;
                self.coverage.push(AccountCoverage {
                    account: account.to_vec(),
                    payer: payer.to_vec(),
                    rows: 0,
                    sums: Default::default(),
                });
                self.coverage_index.insert(account.to_vec(), i);
                i
            }
        };
        CoverageSlot { index, role }
    }

    fn covered(&mut self, s: CoverageSlot, rows: u64, add: impl Fn(&mut Accumulator)) {
        let c = &mut self.coverage[s.index as usize];
        c.rows += rows;
        add(&mut c.sums[0]);
        match s.role {
            Role::OnDemand => {}
            Role::Reservation => add(&mut c.sums[1]),
            Role::SavingsPlan => add(&mut c.sums[2]),
        }
    }

    /// Add a row's on-demand equivalent.
    #[inline]
    pub fn add_coverage(&mut self, s: CoverageSlot, on_demand: Money) {
        self.covered(s, 1, |a| a.add(on_demand));
    }

    /// Add the on-demand equivalent of `rows` rows at once (a rollup group's).
    pub fn add_coverage_rows(&mut self, s: CoverageSlot, rows: u64, on_demand: Money) {
        self.covered(s, rows, |a| a.add(on_demand));
    }

    pub fn finish(self) -> CommitmentSums {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        CommitmentSums {
            utilization: self
                .utilization
                .into_iter()
                .map(|(id, u)| (text(&id), u))
                .collect(),
            coverage: self
                .coverage
                .into_iter()
                .map(|c| {
                    let v = |i: usize| c.sums[i].value().normalize();
                    (
                        text(&c.account),
                        Coverage {
                            payer: text(&c.payer),
                            rows: c.rows,
                            eligible_cost: v(0),
                            reservation_cost: v(1),
                            savings_plan_cost: v(2),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// A committed period's commitments, as `curlew commitments` and the HTML
/// report read them (every source of the tenant's period).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commitments {
    pub period: String,
    /// Per commitment id, sorted by kind then id.
    pub utilization: Vec<(String, Utilization)>,
    /// Per usage account, sorted.
    pub coverage: Vec<(String, Coverage)>,
}

impl Commitments {
    pub fn from_sums(period: &str, s: &CommitmentSums) -> Commitments {
        let mut utilization: Vec<(String, Utilization)> = s
            .utilization
            .iter()
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect();
        utilization.sort_by(|a, b| (a.1.kind, &a.0).cmp(&(b.1.kind, &b.0)));
        Commitments {
            period: period.to_owned(),
            utilization,
            coverage: s
                .coverage
                .iter()
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect(),
        }
    }

    /// Totals per kind: (used cost, commitment cost) summed over commitments.
    pub fn totals(&self, kind: Kind) -> Option<Utilization> {
        let mut t: Option<Utilization> = None;
        for (_, u) in self.utilization.iter().filter(|(_, u)| u.kind == kind) {
            match &mut t {
                Some(t) => t.merge(u),
                None => t = Some(u.clone()),
            }
        }
        t
    }

    /// Coverage over every account.
    pub fn coverage_total(&self) -> Coverage {
        let mut t = Coverage::default();
        for (_, c) in &self.coverage {
            t.merge(c);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn ratios_are_decimals_of_18_places() {
        assert_eq!(ratio(dec("1"), dec("3")), Some(dec("0.333333333333333333")));
        assert_eq!(ratio(dec("2"), dec("3")), Some(dec("0.666666666666666667")));
        assert_eq!(ratio(dec("1"), dec("0")), None);
    }

    #[test]
    fn merging_adds_every_sum() {
        let mut b = CommitmentsBuilder::default();
        let s = b.coverage_slot(b"9", b"1", Role::Reservation);
        b.add_coverage(s, dec("2.5"));
        let s = b.coverage_slot(b"9", b"1", Role::OnDemand);
        b.add_coverage_rows(s, 1, dec("1.5"));
        let one = b.finish();
        let c = &one.coverage["1"];
        assert_eq!(c.eligible_cost, dec("4"));
        assert_eq!(c.reservation_cost, dec("2.5"));
        assert_eq!(c.coverage(), Some(dec("0.625")));
        let mut two = one.clone();
        two.merge(&one);
        assert_eq!(two.coverage["1"].eligible_cost, dec("8"));
        assert_eq!(two.coverage["1"].rows, 4);
    }
}
