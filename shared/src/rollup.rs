//! Exact rollups at the grain of DESIGN.md: billing period, day, payer, usage
//! account, service, region, charge category / line item type, usage type
//! (plus currency, which money must never be summed across).

use crate::charge::{Measures, MeasuresOf};
use crate::money::{Accumulator, Fixed, Money};
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
}

/// A [`GroupKey`] that owns its bytes (one buffer).
#[derive(Debug, Clone)]
pub struct GroupKeyBuf {
    bytes: Vec<u8>,
    ends: [u32; 11],
}

impl GroupKey<'_> {
    fn parts(&self) -> [&[u8]; 11] {
        [
            self.period,
            self.day,
            self.payer,
            self.account,
            self.service_code,
            self.service_name,
            self.region,
            self.charge_category,
            self.line_item_type,
            self.usage_type,
            self.currency,
        ]
    }

    pub fn to_buf(&self) -> GroupKeyBuf {
        let parts = self.parts();
        let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; 11];
        for (e, p) in ends.iter_mut().zip(parts) {
            bytes.extend_from_slice(p);
            *e = bytes.len() as u32;
        }
        GroupKeyBuf { bytes, ends }
    }
}

impl GroupKeyBuf {
    pub fn key(&self) -> GroupKey<'_> {
        let mut start = 0usize;
        let p: [&[u8]; 11] = std::array::from_fn(|i| {
            let end = self.ends[i] as usize;
            let s = &self.bytes[start..end];
            start = end;
            s
        });
        GroupKey {
            period: p[0],
            day: p[1],
            payer: p[2],
            account: p[3],
            service_code: p[4],
            service_name: p[5],
            region: p[6],
            charge_category: p[7],
            line_item_type: p[8],
            usage_type: p[9],
            currency: p[10],
        }
    }
}

/// The grouping columns of a rollup row, in output order.
pub const KEY_COLUMNS: [&str; 10] = [
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
];

const SEP: u8 = 0x1f;

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
    /// Group key (the [`KEY_COLUMNS`] joined by 0x1F) to sums, attributed spend only.
    #[serde(with = "group_map")]
    pub groups: BTreeMap<Vec<u8>, Sums>,
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
}

/// Rows of another provider that a FOCUS file held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSkip {
    pub rows: u64,
    pub billed_cost: Money,
}

impl PeriodRollup {
    pub fn merge(&mut self, o: &PeriodRollup) {
        for (k, s) in &o.groups {
            self.groups.entry(k.clone()).or_default().merge(s);
        }
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

/// Split a group key back into its [`KEY_COLUMNS`] values.
pub fn split_key(key: &[u8]) -> Vec<&str> {
    key.split(|b| *b == SEP)
        .map(|f| std::str::from_utf8(f).unwrap_or(""))
        .collect()
}

mod group_map {
    //! Serialise group keys as their column values (readable staging files).
    use super::{split_key, Sums, SEP};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    struct Group {
        key: Vec<String>,
        sums: Sums,
    }

    pub fn serialize<S: Serializer>(m: &BTreeMap<Vec<u8>, Sums>, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<Group> = m
            .iter()
            .map(|(k, sums)| Group {
                key: split_key(k).into_iter().map(str::to_owned).collect(),
                sums: sums.clone(),
            })
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Vec<u8>, Sums>, D::Error> {
        let v = Vec::<Group>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|g| (g.key.join(&(SEP as char).to_string()).into_bytes(), g.sums))
            .collect())
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

fn type_label_str<'a>(line_item_type: &'a str, category: &'a str) -> &'a str {
    if line_item_type.is_empty() {
        category
    } else {
        line_item_type
    }
}

/// Builds [`PeriodRollup`]s from line items, fast: one hash lookup per row, an
/// allocation only for a new group.
pub struct RollupBuilder {
    accounts: Option<BTreeSet<Vec<u8>>>,
    periods: BTreeMap<Vec<u8>, PeriodBuilder>,
    key: Vec<u8>,
}

#[derive(Default)]
struct PeriodBuilder {
    groups: hashbrown::HashMap<Box<[u8]>, FastSums>,
    rest: PeriodRollup,
    /// Spend of unconnected usage accounts, per account id.
    unattributed: BTreeMap<Vec<u8>, FastSums>,
    /// Rows per type of unattributed rows (attributed ones are counted from the group keys).
    unattributed_types: BTreeMap<Vec<u8>, u64>,
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

/// Sums in [`Fixed`] point only, for a hot loop: 64 bytes, and exact because
/// a row that would overflow them is refused. No contracted cost (CUR has
/// none): a row with one is refused too.
#[derive(Debug, Default, Clone, Copy)]
pub struct FixedSums {
    /// billed, effective, list, unblended, net unblended, blended, usage.
    sums: [Fixed; 7],
    rows: u32,
    /// Which of the optional measures (unblended, net unblended, blended: bits 0..3) a row had.
    present: u8,
}

impl FixedSums {
    /// Add one row's measures; `false` (and nothing added) if it has a
    /// contracted cost or a sum would overflow.
    #[inline]
    pub fn try_add(&mut self, m: &MeasuresOf<Fixed>) -> bool {
        let v = [
            m.billed,
            m.effective,
            m.list,
            m.unblended.unwrap_or(0),
            m.net_unblended.unwrap_or(0),
            m.blended.unwrap_or(0),
            m.usage_amount,
        ];
        let mut out = [0; 7];
        let mut refused = self.rows == u32::MAX || m.contracted.is_some();
        for i in 0..7 {
            let (s, o) = self.sums[i].overflowing_add(v[i]);
            out[i] = s;
            refused |= o;
        }
        if refused {
            return false;
        }
        self.sums = out;
        self.rows += 1;
        self.present |= u8::from(m.unblended.is_some())
            | u8::from(m.net_unblended.is_some()) << 1
            | u8::from(m.blended.is_some()) << 2;
        true
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

    /// Add the rows a [`FixedSums`] holds.
    pub fn merge_fixed(&mut self, f: &FixedSums) {
        let opt = |acc: &mut Option<Accumulator>, bit: u8, v: Fixed| {
            if f.present & (1 << bit) != 0 {
                acc.get_or_insert_with(Accumulator::default).add_fixed(v);
            }
        };
        self.rows += u64::from(f.rows);
        self.billed.add_fixed(f.sums[0]);
        self.effective.add_fixed(f.sums[1]);
        self.list.add_fixed(f.sums[2]);
        opt(&mut self.unblended, 0, f.sums[3]);
        opt(&mut self.net_unblended, 1, f.sums[4]);
        opt(&mut self.blended, 2, f.sums[5]);
        self.usage.add_fixed(f.sums[6]);
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
            periods: BTreeMap::new(),
            key: Vec::with_capacity(256),
        }
    }

    /// Add one line item.
    #[inline]
    pub fn add(&mut self, li: &LineItem<'_>) {
        self.with_sums(&li.group, 1, |s| s.add(&li.measures));
    }

    /// Add `sums`, rows that all have the group `g` (as if each was [`RollupBuilder::add`]ed).
    pub fn add_group(&mut self, g: &GroupKey<'_>, sums: &FastSums) {
        self.with_sums(g, sums.rows, |s| s.merge(sums));
    }

    /// Apply `f` to the sums `rows` rows of group `g` go to: the group's, or the
    /// unattributed account's.
    #[inline]
    fn with_sums(&mut self, g: &GroupKey<'_>, rows: u64, f: impl FnOnce(&mut FastSums)) {
        let p = match self.periods.get_mut(g.period) {
            Some(p) => p,
            None => self.periods.entry(g.period.to_vec()).or_default(),
        };
        let account = if g.account.is_empty() {
            g.payer
        } else {
            g.account
        };
        if let Some(acc) = &self.accounts {
            if !acc.contains(account) {
                match p.unattributed.get_mut(account) {
                    Some(s) => f(s),
                    None => f(p.unattributed.entry(account.to_vec()).or_default()),
                }
                let label = type_label(g.line_item_type, g.charge_category);
                *p.unattributed_types.entry(label.to_vec()).or_default() += rows;
                return;
            }
        }
        let k = &mut self.key;
        k.clear();
        for (i, f) in [
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
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                k.push(SEP);
            }
            k.extend_from_slice(f);
        }
        match p.groups.get_mut(k.as_slice()) {
            Some(s) => f(s),
            None => {
                let mut s = FastSums::default();
                f(&mut s);
                p.groups.insert(k.as_slice().into(), s);
            }
        }
    }

    /// Count a FOCUS row of another provider (not ingested).
    pub fn note_other_provider(&mut self, period: &[u8], provider: &[u8], billed: Money) {
        let p = self.periods.entry(period.to_vec()).or_default();
        let e = p
            .rest
            .other_providers
            .entry(String::from_utf8_lossy(provider).into_owned())
            .or_default();
        e.rows += 1;
        e.billed_cost += billed;
    }

    /// Record a line item type that has no known charge category.
    pub fn note_unknown_type(&mut self, period: &[u8], t: &[u8]) {
        if let Some(p) = self.periods.get_mut(period) {
            p.rest
                .unknown_types
                .insert(String::from_utf8_lossy(t).into_owned());
        }
    }

    /// The finished rollups, per billing period (`YYYY-MM`).
    pub fn finish(self) -> BTreeMap<String, PeriodRollup> {
        self.periods
            .into_iter()
            .map(|(period, b)| {
                let mut r = b.rest;
                // Totals and rows per type follow from the groups plus the unattributed rows.
                let mut totals = FastSums::default();
                let mut types: BTreeMap<String, u64> = BTreeMap::new();
                let mut count = |label: &str, n: u64| match types.get_mut(label) {
                    Some(t) => *t += n,
                    None => {
                        types.insert(label.to_owned(), n);
                    }
                };
                for (k, s) in &b.unattributed {
                    totals.merge(s);
                    r.unattributed
                        .entry(String::from_utf8_lossy(k).into_owned())
                        .or_default()
                        .merge(&s.sums());
                }
                for (k, n) in &b.unattributed_types {
                    count(&String::from_utf8_lossy(k), *n);
                }
                // Sorted by key through an index: the sums stay where they are.
                let mut keys = Vec::with_capacity(b.groups.len());
                let mut sums = Vec::with_capacity(b.groups.len());
                for (k, s) in b.groups {
                    keys.push((k, sums.len()));
                    sums.push(s);
                }
                keys.sort_unstable_by(|x, y| x.0.cmp(&y.0));
                r.groups = keys
                    .into_iter()
                    .map(|(k, i)| {
                        let s: &FastSums = &sums[i];
                        totals.merge(s);
                        let mut parts = k
                            .split(|b| *b == SEP)
                            .map(|p| std::str::from_utf8(p).unwrap_or(""));
                        let category = parts.nth(6).unwrap_or("");
                        count(type_label_str(parts.next().unwrap_or(""), category), s.rows);
                        (k.into_vec(), s.sums())
                    })
                    .collect();
                r.totals = totals.sums();
                r.rows_per_type = types;
                (String::from_utf8_lossy(&period).into_owned(), r)
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
        assert_eq!(p.groups.values().next().unwrap().billed_cost, dec("3.30"));
        assert_eq!(p.totals.billed_cost, dec("8.30"));
        assert_eq!(p.totals.rows, 3);
        assert_eq!(p.unattributed["333333333333"].billed_cost, dec("5.00"));
        assert_eq!(p.rows_per_type["Usage"], 3);
        // Staged parts round-trip through JSON exactly.
        let json = serde_json::to_string(p).unwrap();
        let back: PeriodRollup = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, p);
    }

    #[test]
    fn a_group_added_at_once_is_its_rows_added_one_by_one() {
        let connected: BTreeSet<String> = ["222222222222".to_string()].into();
        for accounts in [None, Some(&connected)] {
            let mut by_row = RollupBuilder::new(accounts);
            let mut at_once = RollupBuilder::new(accounts);
            for account in [&b"222222222222"[..], b"333333333333"] {
                let mut sums = FastSums::default();
                for cost in ["1.10", "2.25", "-0.000000000001"] {
                    let li = item(account, cost);
                    by_row.add(&li);
                    sums.add(&li.measures);
                }
                let key = item(account, "0").group.to_buf();
                assert_eq!(key.key(), item(account, "0").group);
                at_once.add_group(&key.key(), &sums);
            }
            assert_eq!(by_row.finish(), at_once.finish());
        }
    }

    #[test]
    fn merge_is_exact() {
        let mut a = RollupBuilder::new(None);
        a.add(&item(b"2", "0.1"));
        let mut b = RollupBuilder::new(None);
        b.add(&item(b"2", "0.2"));
        let mut pa = a.finish().remove("2024-01").unwrap();
        pa.merge(&b.finish()["2024-01"]);
        assert_eq!(pa.totals.billed_cost, dec("0.3"));
        assert_eq!(pa.groups.len(), 1);
    }
}
