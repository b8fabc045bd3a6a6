//! Exact rollups at the grain of DESIGN.md: billing period, day, payer, usage
//! account, service, region, charge category / line item type, usage type
//! (plus currency, which money must never be summed across).

mod groups;
mod key_index;

pub use groups::{Group, GroupSums, GroupValues, Groups, KEY_LEN};

use crate::charge::{Measures, MeasuresOf};
use crate::commitments::{CommitmentSums, CommitmentsBuilder, CoverageSlot, Role, UtilRow};
use crate::dimensions::Dimensions;
use crate::money::{Accumulator, Fixed, Money};
use groups::GroupTable;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One normalised line item, borrowed from the parser's buffers.
#[derive(Debug, Clone, Copy)]
pub struct LineItem<'a> {
    pub group: GroupKey<'a>,
    pub measures: Measures,
}

/// What a line item is grouped by (before attribution), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupKey<'a> {
    /// `YYYY-MM`.
    pub period: &'a [u8],
    /// `YYYY-MM-DD` (UTC day of the usage start).
    pub day: &'a [u8],
    pub payer: &'a [u8],
    pub account: &'a [u8],
    pub service_code: &'a [u8],
    pub service_name: &'a [u8],
    pub region: &'a [u8],
    pub charge_category: &'a [u8],
    pub line_item_type: &'a [u8],
    pub usage_type: &'a [u8],
    pub currency: &'a [u8],
    /// FOCUS `Tags` of the tenant's tag dimensions: a JSON object, empty when
    /// the row has none of them (or none are named).
    pub tags: &'a [u8],
    /// `x_CostCategories`, the same for cost category dimensions.
    pub cost_categories: &'a [u8],
}

/// The grouping columns of a rollup row, in output order.
pub const KEY_COLUMNS: [&str; KEY_LEN] = [
    "ChargePeriodStart",
    "BillingAccountId",
    "SubAccountId",
    "x_ServiceCode",
    "ServiceName",
    "RegionId",
    "ChargeCategory",
    "x_LineItemType",
    "x_UsageType",
    "BillingCurrency",
    "Tags",
    "x_CostCategories",
];

/// Running sums of one group. Optional measures stay `None` until a row has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sums {
    pub rows: u64,
    pub billed_cost: Money,
    pub effective_cost: Money,
    pub list_cost: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contracted_cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unblended_cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_unblended_cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blended_cost: Option<Money>,
    pub usage_amount: Money,
}

fn add_opt(acc: &mut Option<Money>, v: Option<Money>) {
    if let Some(v) = v {
        *acc = Some(acc.unwrap_or(Money::ZERO) + v);
    }
}

impl Sums {
    /// `rows` rows whose measures are `value(m)` (`None`: no row had it; the
    /// always-present measures are then zero).
    pub fn from_measures(rows: u64, value: impl Fn(Measure) -> Option<Money>) -> Sums {
        Sums {
            rows,
            billed_cost: value(Measure::Billed).unwrap_or_default(),
            effective_cost: value(Measure::Effective).unwrap_or_default(),
            list_cost: value(Measure::List).unwrap_or_default(),
            contracted_cost: value(Measure::Contracted),
            unblended_cost: value(Measure::Unblended),
            net_unblended_cost: value(Measure::NetUnblended),
            blended_cost: value(Measure::Blended),
            usage_amount: value(Measure::Usage).unwrap_or_default(),
        }
    }

    pub fn add(&mut self, m: &Measures) {
        self.rows += 1;
        self.billed_cost += m.billed;
        self.effective_cost += m.effective;
        self.list_cost += m.list;
        add_opt(&mut self.contracted_cost, m.contracted);
        add_opt(&mut self.unblended_cost, m.unblended);
        add_opt(&mut self.net_unblended_cost, m.net_unblended);
        add_opt(&mut self.blended_cost, m.blended);
        self.usage_amount += m.usage_amount;
    }

    pub fn merge(&mut self, o: &Sums) {
        self.rows += o.rows;
        self.billed_cost += o.billed_cost;
        self.effective_cost += o.effective_cost;
        self.list_cost += o.list_cost;
        add_opt(&mut self.contracted_cost, o.contracted_cost);
        add_opt(&mut self.unblended_cost, o.unblended_cost);
        add_opt(&mut self.net_unblended_cost, o.net_unblended_cost);
        add_opt(&mut self.blended_cost, o.blended_cost);
        self.usage_amount += o.usage_amount;
    }

    /// The same sums without trailing zeros (for display and summaries).
    pub fn normalized(&self) -> Sums {
        let n = |m: Money| m.normalize();
        Sums {
            rows: self.rows,
            billed_cost: n(self.billed_cost),
            effective_cost: n(self.effective_cost),
            list_cost: n(self.list_cost),
            contracted_cost: self.contracted_cost.map(n),
            unblended_cost: self.unblended_cost.map(n),
            net_unblended_cost: self.net_unblended_cost.map(n),
            blended_cost: self.blended_cost.map(n),
            usage_amount: n(self.usage_amount),
        }
    }

    /// The value of a named measure (`billed`, `unblended`, `amortized`, ...).
    pub fn measure(&self, m: Measure) -> Option<Money> {
        match m {
            Measure::Billed => Some(self.billed_cost),
            Measure::Effective => Some(self.effective_cost),
            Measure::List => Some(self.list_cost),
            Measure::Contracted => self.contracted_cost,
            Measure::Unblended => self.unblended_cost,
            Measure::NetUnblended => self.net_unblended_cost,
            Measure::Blended => self.blended_cost,
            Measure::Usage => Some(self.usage_amount),
        }
    }
}

/// A measure a report can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Billed,
    Effective,
    List,
    Contracted,
    Unblended,
    NetUnblended,
    Blended,
    Usage,
}

impl Measure {
    pub const ALL: [Measure; 8] = [
        Measure::Billed,
        Measure::Effective,
        Measure::List,
        Measure::Contracted,
        Measure::Unblended,
        Measure::NetUnblended,
        Measure::Blended,
        Measure::Usage,
    ];

    /// Accepts `billed`, `amortized` (= effective), `unblended`, `net-unblended`, ...
    pub fn parse(s: &str) -> Option<Measure> {
        Some(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "billed" | "billedcost" => Measure::Billed,
            "effective" | "amortized" | "effectivecost" => Measure::Effective,
            "list" | "listcost" => Measure::List,
            "contracted" => Measure::Contracted,
            "unblended" => Measure::Unblended,
            "net-unblended" | "netunblended" => Measure::NetUnblended,
            "blended" => Measure::Blended,
            "usage" | "usage-amount" => Measure::Usage,
            _ => return None,
        })
    }

    /// The output column (FOCUS name, `x_` for AWS-only measures).
    pub fn column(self) -> &'static str {
        match self {
            Measure::Billed => "BilledCost",
            Measure::Effective => "EffectiveCost",
            Measure::List => "ListCost",
            Measure::Contracted => "ContractedCost",
            Measure::Unblended => "x_UnblendedCost",
            Measure::NetUnblended => "x_NetUnblendedCost",
            Measure::Blended => "x_BlendedCost",
            Measure::Usage => "ConsumedQuantity",
        }
    }
}

/// Everything one billing period of one revision (or one part of it) adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRollup {
    /// Attributed spend per group of [`KEY_COLUMNS`], in key order.
    pub groups: Groups,
    /// Every row read for this period, attributed or not.
    pub totals: Sums,
    /// Rows per line item type (CUR) or charge category (FOCUS).
    pub rows_per_type: BTreeMap<String, u64>,
    /// Spend of usage accounts that are not connected, per account id.
    pub unattributed: BTreeMap<String, Sums>,
    /// Line item types curlew has no charge category for (still ingested).
    pub unknown_types: BTreeSet<String>,
    /// FOCUS rows of other cloud providers: not ingested, counted (rows, BilledCost).
    #[serde(default)]
    pub other_providers: BTreeMap<String, ProviderSkip>,
    /// Invoice ids on the rows (`bill/InvoiceId`, CUR 2.0 `bill_invoice_id`,
    /// FOCUS `InvoiceId`): AWS fills them once it has issued the invoice.
    #[serde(default)]
    pub invoice_ids: BTreeSet<String>,
    /// Rows without an invoice id (all of them while the month is estimated).
    #[serde(default)]
    pub rows_without_invoice: u64,
    /// RI and Savings Plans utilization and coverage (`crate::commitments`).
    #[serde(default, skip_serializing_if = "CommitmentSums::is_empty")]
    pub commitments: CommitmentSums,
}

/// Rows of another provider that a FOCUS file held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSkip {
    pub rows: u64,
    pub billed_cost: Money,
}

impl PeriodRollup {
    pub fn merge(&mut self, o: &PeriodRollup) {
        self.groups.merge(&o.groups);
        self.totals.merge(&o.totals);
        for (k, n) in &o.rows_per_type {
            *self.rows_per_type.entry(k.clone()).or_default() += n;
        }
        for (k, s) in &o.unattributed {
            self.unattributed.entry(k.clone()).or_default().merge(s);
        }
        self.unknown_types.extend(o.unknown_types.iter().cloned());
        for (k, s) in &o.other_providers {
            let e = self.other_providers.entry(k.clone()).or_default();
            e.rows += s.rows;
            e.billed_cost += s.billed_cost;
        }
        self.invoice_ids.extend(o.invoice_ids.iter().cloned());
        self.rows_without_invoice += o.rows_without_invoice;
        self.commitments.merge(&o.commitments);
    }

    /// Sum of the unattributed spend over all accounts.
    pub fn unattributed_total(&self) -> Sums {
        let mut t = Sums::default();
        for s in self.unattributed.values() {
            t.merge(s);
        }
        t
    }
}

/// What rows are counted by: the line item type (CUR) or the charge category (FOCUS).
fn type_label<'a>(line_item_type: &'a [u8], category: &'a [u8]) -> &'a [u8] {
    if line_item_type.is_empty() {
        category
    } else {
        line_item_type
    }
}

/// The usage account a row's coverage counts for (the payer's own usage
/// when the row names no usage account).
fn coverage_account<'a>(payer: &'a [u8], account: &'a [u8]) -> &'a [u8] {
    if account.is_empty() {
        payer
    } else {
        account
    }
}

/// CUR coverage from a period's finished groups and unattributed spend: each
/// group's ListCost (the on-demand equivalent) by its usage account and line
/// item type's role, exactly what adding it row by row gives.
fn cur_coverage(
    c: &mut CommitmentsBuilder,
    groups: &Groups,
    unattributed: &[(Vec<u8>, Vec<u8>, FastSums)],
    payer: &[u8],
) {
    for g in groups.iter() {
        // KEY_COLUMNS: 1 BillingAccountId, 2 SubAccountId, 7 x_LineItemType.
        let Some(role) = crate::commitments::cur_role(g.key[7].as_bytes()) else {
            continue;
        };
        let (payer, account) = (g.key[1].as_bytes(), g.key[2].as_bytes());
        let slot = c.coverage_slot(payer, coverage_account(payer, account), role);
        c.add_coverage_rows(slot, g.rows(), g.value(Measure::List).unwrap_or_default());
    }
    for (account, label, s) in unattributed {
        if let Some(role) = crate::commitments::cur_role(label) {
            let slot = c.coverage_slot(payer, coverage_account(payer, account), role);
            c.add_coverage_rows(slot, s.rows, s.sums().list_cost);
        }
    }
}

/// Merges finished rollups (the commit's parts, one at a time) without
/// re-sorting after each: the first part of a period is kept as it is.
#[derive(Default)]
pub struct RollupMerge {
    periods: BTreeMap<String, (PeriodRollup, Option<GroupTable>)>,
}

impl RollupMerge {
    /// Add one part's rollup of `period`.
    pub fn add(&mut self, period: &str, mut r: PeriodRollup) {
        let Some((acc, table)) = self.periods.get_mut(period) else {
            self.periods.insert(period.to_owned(), (r, None));
            return;
        };
        let t = table.get_or_insert_with(|| GroupTable::from(std::mem::take(&mut acc.groups)));
        t.merge(&r.groups);
        r.groups = Groups::default();
        acc.merge(&r);
    }

    /// Make sure `period` has a rollup (an empty one if no part had rows).
    pub fn touch(&mut self, period: &str) {
        self.periods.entry(period.to_owned()).or_default();
    }

    pub fn finish(self) -> BTreeMap<String, PeriodRollup> {
        self.periods
            .into_iter()
            .map(|(p, (mut r, t))| {
                if let Some(t) = t {
                    r.groups = t.finish();
                }
                (p, r)
            })
            .collect()
    }
}

/// Where [`RollupBuilder::add_to`] adds: a group, or an unconnected account's spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Group { period: u32, group: u32 },
    Unattributed { period: u32, index: u32 },
}

impl Slot {
    /// The billing period's index in its builder (what the period-wide
    /// notes take: [`RollupBuilder::note_invoice`] and the like).
    pub fn period(self) -> u32 {
        let (Slot::Group { period, .. } | Slot::Unattributed { period, .. }) = self;
        period
    }
}

/// What [`RollupBuilder::attribute`] makes of a key.
enum Attributed<'k> {
    /// Not to a group: an unconnected account's spend.
    Elsewhere(Slot),
    /// To the group of these key columns ([`KEY_COLUMNS`] order).
    Group {
        period: u32,
        parts: [&'k [u8]; KEY_LEN],
    },
}

/// Builds [`PeriodRollup`]s from line items: each key column interned once,
/// one hash lookup of twelve ids per row, no allocation but for new strings and groups.
pub struct RollupBuilder {
    accounts: Option<BTreeSet<Vec<u8>>>,
    periods: Vec<PeriodBuilder>,
    /// The tag and cost category dimensions the readers fill in.
    dims: Dimensions,
}

struct PeriodBuilder {
    period: Vec<u8>,
    table: GroupTable,
    /// Per account string id: 0 not looked up yet, 1 connected, 2 not connected.
    connected: Vec<u8>,
    rest: PeriodRollup,
    /// Spend of unconnected usage accounts, per (account, line item type or category).
    unattributed: Vec<(Vec<u8>, Vec<u8>, FastSums)>,
    unattributed_index: hashbrown::HashMap<(Vec<u8>, Vec<u8>), u32>,
    /// The invoice id last noted (rows come in runs of one).
    last_invoice: Vec<u8>,
    commitments: CommitmentsBuilder,
    /// Set by CUR rows (with their payer): their coverage follows from the
    /// groups at finish (a CUR row's coverage role is its line item type, a
    /// key column), so the hot paths add nothing per row for it.
    cur_coverage_payer: Option<Vec<u8>>,
}

/// [`Sums`] with fixed-point accumulators: the per-row hot path. Exact.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastSums {
    rows: u64,
    billed: Accumulator,
    effective: Accumulator,
    list: Accumulator,
    contracted: Option<Accumulator>,
    unblended: Option<Accumulator>,
    net_unblended: Option<Accumulator>,
    blended: Option<Accumulator>,
    usage: Accumulator,
}

#[inline]
fn acc_opt(acc: &mut Option<Accumulator>, v: Option<Money>) {
    if let Some(v) = v {
        acc.get_or_insert_with(Accumulator::default).add(v);
    }
}

#[inline]
fn acc_opt_fixed(acc: &mut Option<Accumulator>, v: Option<Fixed>) {
    if let Some(v) = v {
        acc.get_or_insert_with(Accumulator::default).add_fixed(v);
    }
}

fn acc_opt_merge(acc: &mut Option<Accumulator>, o: &Option<Accumulator>) {
    if let Some(o) = o {
        acc.get_or_insert_with(Accumulator::default).merge(o);
    }
}

impl FastSums {
    /// Add one row's measures.
    #[inline]
    pub fn add(&mut self, m: &Measures) {
        self.rows += 1;
        self.billed.add(m.billed);
        self.effective.add(m.effective);
        self.list.add(m.list);
        acc_opt(&mut self.contracted, m.contracted);
        acc_opt(&mut self.unblended, m.unblended);
        acc_opt(&mut self.net_unblended, m.net_unblended);
        acc_opt(&mut self.blended, m.blended);
        self.usage.add(m.usage_amount);
    }

    /// Add one row's measures in fixed point (the same as [`FastSums::add`] of their decimals).
    #[inline]
    pub fn add_fixed(&mut self, m: &MeasuresOf<Fixed>) {
        self.rows += 1;
        self.billed.add_fixed(m.billed);
        self.effective.add_fixed(m.effective);
        self.list.add_fixed(m.list);
        acc_opt_fixed(&mut self.contracted, m.contracted);
        acc_opt_fixed(&mut self.unblended, m.unblended);
        acc_opt_fixed(&mut self.net_unblended, m.net_unblended);
        acc_opt_fixed(&mut self.blended, m.blended);
        self.usage.add_fixed(m.usage_amount);
    }

    /// Add the rows another sum holds.
    pub fn merge(&mut self, o: &FastSums) {
        self.rows += o.rows;
        self.billed.merge(&o.billed);
        self.effective.merge(&o.effective);
        self.list.merge(&o.list);
        acc_opt_merge(&mut self.contracted, &o.contracted);
        acc_opt_merge(&mut self.unblended, &o.unblended);
        acc_opt_merge(&mut self.net_unblended, &o.net_unblended);
        acc_opt_merge(&mut self.blended, &o.blended);
        self.usage.merge(&o.usage);
    }

    pub fn sums(&self) -> Sums {
        Sums {
            rows: self.rows,
            billed_cost: self.billed.value(),
            effective_cost: self.effective.value(),
            list_cost: self.list.value(),
            contracted_cost: self.contracted.map(|a| a.value()),
            unblended_cost: self.unblended.map(|a| a.value()),
            net_unblended_cost: self.net_unblended.map(|a| a.value()),
            blended_cost: self.blended.map(|a| a.value()),
            usage_amount: self.usage.value(),
        }
    }
}

impl RollupBuilder {
    /// `accounts`: the connected usage accounts; `None` attributes every account.
    pub fn new(accounts: Option<&BTreeSet<String>>) -> Self {
        RollupBuilder {
            accounts: accounts.map(|a| a.iter().map(|s| s.as_bytes().to_vec()).collect()),
            periods: Vec::new(),
            dims: Dimensions::default(),
        }
    }

    /// Group by these tag and cost category dimensions too.
    pub fn with_dimensions(mut self, dims: Dimensions) -> Self {
        self.dims = dims;
        self
    }

    /// The dimensions rows are grouped by, besides the fixed key.
    pub fn dimensions(&self) -> &Dimensions {
        &self.dims
    }

    fn period(&mut self, period: &[u8]) -> u32 {
        if let Some(i) = self.periods.iter().position(|p| p.period == period) {
            return i as u32;
        }
        self.periods.push(PeriodBuilder {
            period: period.to_vec(),
            table: GroupTable::default(),
            connected: Vec::new(),
            rest: PeriodRollup::default(),
            unattributed: Vec::new(),
            unattributed_index: Default::default(),
            last_invoice: Vec::new(),
            commitments: CommitmentsBuilder::default(),
            cur_coverage_payer: None,
        });
        self.periods.len() as u32 - 1
    }

    /// Add one line item; where it went.
    #[inline]
    pub fn add(&mut self, li: &LineItem<'_>) -> Slot {
        let s = self.slot(&li.group);
        self.add_to(s, &li.measures);
        s
    }

    /// The invoice id of a row of billing period `period` (a [`Slot::period`]; empty: none yet).
    #[inline]
    pub fn note_invoice(&mut self, period: u32, id: &[u8]) {
        let p = &mut self.periods[period as usize];
        if id.is_empty() {
            p.rest.rows_without_invoice += 1;
        } else if p.last_invoice != id {
            p.last_invoice = id.to_vec();
            p.rest
                .invoice_ids
                .insert(String::from_utf8_lossy(id).into_owned());
        }
    }

    /// Where rows of group `g` go (the same slot for every row of the same key).
    pub fn slot(&mut self, g: &GroupKey<'_>) -> Slot {
        match self.attribute(g) {
            Attributed::Elsewhere(slot) => slot,
            Attributed::Group { period, parts } => {
                let group = self.periods[period as usize].table.group(parts);
                Slot::Group { period, group }
            }
        }
    }

    /// [`RollupBuilder::slot`] then [`RollupBuilder::add_fixed_to`], but the
    /// group's lookup waits for other rows' ([`GroupTable::add_fixed_later`]:
    /// the same sums, in a fraction of the time at hundreds of thousands of
    /// groups). The row's billing period (for the period-wide notes).
    #[inline]
    pub fn add_fixed_row(&mut self, g: &GroupKey<'_>, m: &MeasuresOf<Fixed>) -> u32 {
        match self.attribute(g) {
            Attributed::Elsewhere(slot) => {
                self.add_fixed_to(slot, m);
                slot.period()
            }
            Attributed::Group { period, parts } => {
                let table = &mut self.periods[period as usize].table;
                let ids = table.ids(parts);
                table.add_fixed_later(ids, m);
                period
            }
        }
    }

    /// Whether `g` goes to a group (attributed: its key columns) or, its
    /// usage account not being connected, to that account's unattributed spend.
    #[inline]
    fn attribute<'k>(&mut self, g: &GroupKey<'k>) -> Attributed<'k> {
        let period = self.period(g.period);
        let p = &mut self.periods[period as usize];
        let account = if g.account.is_empty() {
            g.payer
        } else {
            g.account
        };
        let account_id = p.table.string_id(2, account);
        if let Some(acc) = &self.accounts {
            let i = account_id as usize;
            if p.connected.len() <= i {
                p.connected.resize(i + 1, 0);
            }
            if p.connected[i] == 0 {
                p.connected[i] = if acc.contains(account) { 1 } else { 2 };
            }
            if p.connected[i] == 2 {
                let label = type_label(g.line_item_type, g.charge_category);
                let k = (account.to_vec(), label.to_vec());
                let index = match p.unattributed_index.get(&k) {
                    Some(i) => *i,
                    None => {
                        let i = p.unattributed.len() as u32;
                        p.unattributed
                            .push((k.0.clone(), k.1.clone(), FastSums::default()));
                        p.unattributed_index.insert(k, i);
                        i
                    }
                };
                return Attributed::Elsewhere(Slot::Unattributed { period, index });
            }
        }
        Attributed::Group {
            period,
            parts: [
                g.day,
                g.payer,
                account,
                g.service_code,
                g.service_name,
                g.region,
                g.charge_category,
                g.line_item_type,
                g.usage_type,
                g.currency,
                g.tags,
                g.cost_categories,
            ],
        }
    }

    /// Add one row's measures to a slot.
    #[inline]
    pub fn add_to(&mut self, s: Slot, m: &Measures) {
        match s {
            Slot::Group { period, group } => self.periods[period as usize].table.add(group, m),
            Slot::Unattributed { period, index } => self.periods[period as usize].unattributed
                [index as usize]
                .2
                .add(m),
        }
    }

    /// Add one row's measures in [`Fixed`] point (the same as [`RollupBuilder::add_to`] of their decimals).
    #[inline]
    pub fn add_fixed_to(&mut self, s: Slot, m: &MeasuresOf<Fixed>) {
        match s {
            Slot::Group { period, group } => {
                self.periods[period as usize].table.add_fixed(group, m)
            }
            Slot::Unattributed { period, index } => self.periods[period as usize].unattributed
                [index as usize]
                .2
                .add_fixed(m),
        }
    }

    /// Load the sums of these slots' groups into the cache ahead of adding
    /// to them: the loads do not depend on each other, so their cache misses
    /// overlap (added one by one, each row would wait for its own).
    #[inline]
    pub fn load_ahead(&self, slots: impl Iterator<Item = Slot>) {
        let mut loaded = 0;
        for s in slots {
            if let Slot::Group { period, group } = s {
                loaded ^= self.periods[period as usize].table.load(group);
            }
        }
        std::hint::black_box(loaded);
    }

    /// A commitment row's share of utilization; `period`: the row's billing period ([`Slot::period`]).
    pub fn add_utilization(&mut self, period: u32, row: &UtilRow<'_>) {
        self.periods[period as usize]
            .commitments
            .add_utilization(row);
    }

    /// Where the on-demand equivalent of rows of group `g` (in slot `s`) goes
    /// for coverage: its usage account's, whether connected or not.
    pub fn coverage_slot(&mut self, s: Slot, g: &GroupKey<'_>, role: Role) -> CoverageSlot {
        self.periods[s.period() as usize].commitments.coverage_slot(
            g.payer,
            coverage_account(g.payer, g.account),
            role,
        )
    }

    /// Add a row's on-demand equivalent to its coverage slot (FOCUS rows,
    /// whose role comes from columns outside the group key).
    #[inline]
    pub fn add_coverage(&mut self, s: Slot, c: CoverageSlot, on_demand: Money) {
        self.periods[s.period() as usize]
            .commitments
            .add_coverage(c, on_demand);
    }

    /// A CUR row of billing period `period` ([`Slot::period`]): the period's
    /// coverage is derived from the groups (and unattributed spend) at finish.
    #[inline]
    pub fn note_cur_coverage(&mut self, period: u32, payer: &[u8]) {
        let p = &mut self.periods[period as usize];
        if p.cur_coverage_payer.is_none() {
            p.cur_coverage_payer = Some(payer.to_vec());
        }
    }

    /// Count a FOCUS row of another provider (not ingested).
    pub fn note_other_provider(&mut self, period: &[u8], provider: &[u8], billed: Money) {
        let i = self.period(period);
        let e = self.periods[i as usize]
            .rest
            .other_providers
            .entry(String::from_utf8_lossy(provider).into_owned())
            .or_default();
        e.rows += 1;
        e.billed_cost += billed;
    }

    /// Record a line item type that has no known charge category.
    pub fn note_unknown_type(&mut self, period: &[u8], t: &[u8]) {
        if let Some(p) = self.periods.iter_mut().find(|p| p.period == period) {
            p.rest
                .unknown_types
                .insert(String::from_utf8_lossy(t).into_owned());
        }
    }

    /// The finished rollups, per billing period (`YYYY-MM`).
    pub fn finish(self) -> BTreeMap<String, PeriodRollup> {
        self.periods
            .into_iter()
            .map(|mut b| {
                let mut r = b.rest;
                // Totals and rows per type follow from the groups plus the unattributed rows.
                let mut types: BTreeMap<String, u64> = BTreeMap::new();
                let mut unattributed = FastSums::default();
                let mut per_account: BTreeMap<Vec<u8>, FastSums> = BTreeMap::new();
                for (account, label, s) in &b.unattributed {
                    unattributed.merge(s);
                    per_account.entry(account.clone()).or_default().merge(s);
                    *types
                        .entry(String::from_utf8_lossy(label).into_owned())
                        .or_default() += s.rows;
                }
                for (k, s) in per_account {
                    r.unattributed
                        .insert(String::from_utf8_lossy(&k).into_owned(), s.sums());
                }
                for (label, n) in b.table.rows_per_label() {
                    *types
                        .entry(String::from_utf8_lossy(label).into_owned())
                        .or_default() += n;
                }
                r.groups = b.table.finish();
                let mut totals = r.groups.total();
                totals.merge(&unattributed.sums());
                r.totals = totals.normalized();
                r.rows_per_type = types;
                let mut commitments = b.commitments;
                if let Some(payer) = &b.cur_coverage_payer {
                    cur_coverage(&mut commitments, &r.groups, &b.unattributed, payer);
                }
                r.commitments = commitments.finish();
                (String::from_utf8_lossy(&b.period).into_owned(), r)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    fn item<'a>(account: &'a [u8], cost: &str) -> LineItem<'a> {
        LineItem {
            group: GroupKey {
                period: b"2024-01",
                day: b"2024-01-02",
                payer: b"111111111111",
                account,
                service_code: b"AmazonEC2",
                service_name: b"Amazon Elastic Compute Cloud",
                region: b"us-east-1",
                charge_category: b"Usage",
                line_item_type: b"Usage",
                usage_type: b"BoxUsage:t3.micro",
                currency: b"USD",
                tags: b"",
                cost_categories: b"",
            },
            measures: Measures {
                billed: dec(cost),
                effective: dec(cost),
                unblended: Some(dec(cost)),
                ..Measures::default()
            },
        }
    }

    #[test]
    fn groups_and_unattributed_spend() {
        let connected: BTreeSet<String> = ["222222222222".to_string()].into();
        let mut b = RollupBuilder::new(Some(&connected));
        b.add(&item(b"222222222222", "1.10"));
        b.add(&item(b"222222222222", "2.20"));
        b.add(&item(b"333333333333", "5.00"));
        let out = b.finish();
        let p = &out["2024-01"];
        assert_eq!(p.groups.len(), 1);
        let g = p.groups.iter().next().unwrap();
        assert_eq!(g.sums().billed_cost, dec("3.30"));
        assert_eq!(g.key[2], "222222222222");
        assert_eq!(g.sums().contracted_cost, None);
        assert_eq!(p.totals.billed_cost, dec("8.30"));
        assert_eq!(p.totals.rows, 3);
        assert_eq!(p.unattributed["333333333333"].billed_cost, dec("5.00"));
        assert_eq!(p.rows_per_type["Usage"], 3);
        // Staged parts round-trip through JSON and MessagePack exactly.
        let json = serde_json::to_string(p).unwrap();
        let back: PeriodRollup = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, p);
        let mp = rmp_serde::to_vec_named(p).unwrap();
        let back: PeriodRollup = rmp_serde::from_slice(&mp).unwrap();
        assert_eq!(&back, p);
    }

    #[test]
    fn groups_come_out_sorted_and_values_beyond_the_units_stay_exact() {
        let mut b = RollupBuilder::new(None);
        // More than 18 decimals, and sums beyond i128 units of 1e-18: the spill.
        let cases: [(&[u8], [&str; 3], &str); 4] = [
            // Each fits the i64 units; their sum does not (the carry into the spill).
            (
                b"4",
                ["3000000", "3999999.999999999999", "3999999.999999999999"],
                "10999999.999999999998",
            ),
            (b"3", ["1.5", "2.25", "-0.75"], "3"),
            (
                b"1",
                ["0.0000000000000000000001", "1", "0.5"],
                "1.5000000000000000000001",
            ),
            (
                b"2",
                ["100000000000000000000", "100000000000000000000", "0.5"],
                "200000000000000000000.5",
            ),
        ];
        for (a, costs, _) in cases {
            for c in costs {
                b.add(&item(a, c));
            }
        }
        let r = b.finish().remove("2024-01").unwrap();
        let keys: Vec<&str> = r.groups.iter().map(|g| g.key[2]).collect();
        assert_eq!(keys, ["1", "2", "3", "4"]);
        for (g, (_, _, want)) in r
            .groups
            .iter()
            .zip([cases[2], cases[3], cases[1], cases[0]])
        {
            assert_eq!(g.sums().billed_cost, dec(want), "{:?}", g.key);
            assert_eq!(g.rows(), 3);
        }
        assert_eq!(r.totals.rows, 12);
        let mp = rmp_serde::to_vec_named(&r).unwrap();
        let back: PeriodRollup = rmp_serde::from_slice(&mp).unwrap();
        assert_eq!(back, r);
        // A merge of the same rollup doubles every sum, exactly.
        let mut m = RollupMerge::default();
        m.add("2024-01", r.clone());
        m.add("2024-01", back);
        let d = m.finish().remove("2024-01").unwrap();
        assert_eq!(d.groups.len(), 4);
        for (g, (_, _, want)) in d
            .groups
            .iter()
            .zip([cases[2], cases[3], cases[1], cases[0]])
        {
            assert_eq!(g.sums().billed_cost, dec(want) * dec("2"));
        }
        assert_eq!(d.totals.rows, 24);
        assert_eq!(d.totals.billed_cost, r.totals.billed_cost * dec("2"));
    }

    #[test]
    fn a_slot_added_in_fixed_point_is_its_rows_added_as_decimals() {
        let connected: BTreeSet<String> = ["222222222222".to_string()].into();
        for accounts in [None, Some(&connected)] {
            let mut by_row = RollupBuilder::new(accounts);
            let mut fixed = RollupBuilder::new(accounts);
            for account in [&b"222222222222"[..], b"333333333333"] {
                for cost in ["1.10", "2.25", "-0.000000000001"] {
                    let li = item(account, cost);
                    by_row.add(&li);
                    let f = |d: Money| crate::money::fixed_from_decimal(d).unwrap();
                    let m = MeasuresOf {
                        billed: f(li.measures.billed),
                        effective: f(li.measures.effective),
                        list: f(li.measures.list),
                        contracted: None,
                        unblended: li.measures.unblended.map(f),
                        net_unblended: None,
                        blended: None,
                        usage_amount: f(li.measures.usage_amount),
                    };
                    let s = fixed.slot(&li.group);
                    fixed.add_fixed_to(s, &m);
                }
            }
            assert_eq!(by_row.finish(), fixed.finish());
        }
    }

    #[test]
    fn merge_is_exact() {
        let mut a = RollupBuilder::new(None);
        a.add(&item(b"2", "0.1"));
        let mut b = RollupBuilder::new(None);
        b.add(&item(b"2", "0.2"));
        b.add(&item(b"4", "0.2"));
        let mut pa = a.finish().remove("2024-01").unwrap();
        pa.merge(&b.finish()["2024-01"]);
        assert_eq!(pa.totals.billed_cost, dec("0.5"));
        assert_eq!(pa.groups.len(), 2);
        assert_eq!(
            pa.groups.iter().next().unwrap().sums().billed_cost,
            dec("0.3")
        );
    }
}
