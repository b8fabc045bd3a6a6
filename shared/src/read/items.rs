//! Turning one row of any dialect into a [`LineItem`]: the only place that
//! knows CUR and FOCUS semantics row by row. Parsing does no I/O.

use crate::charge::{
    amortized_input, charge_category, cur_measures, AmortizedInput, CurValues, CurValuesOf,
    Measures,
};
use crate::commitments;
use crate::dimensions::{render_json, Dimensions, Kind, MAX_DIMENSIONS, NO_DIMENSIONS};
use crate::fields::{map_of, ColumnMap, Dialect, Field, DIMS};
use crate::money::{BadNumber, Fixed, Money};
use crate::read::quoted;
use crate::rollup::{GroupKey, LineItem, RollupBuilder, Slot};

/// Access to the fields of the current row, whatever the file format.
pub trait RowAccess {
    /// The text of a field, `b""` if the file lacks it or it is null.
    fn text(&self, f: Field) -> &[u8];
    /// The value of a money/quantity field, `None` if absent or null.
    fn number(&self, f: Field) -> Result<Option<Money>, BadNumber>;
    /// The value of a number field in [`Fixed`] units when the row's text is
    /// in [`parse_fixed`]'s plain form (`Some(None)`: absent or null);
    /// `None` when only [`RowAccess::number`] can read it. By default, never.
    #[inline]
    fn fixed(&self, f: Field) -> Option<Option<Fixed>> {
        let _ = f;
        None
    }
    /// Legacy CUR's tag columns (`resourceTags/user:team`,
    /// `resource_tags_user_team`): `each(column name, value)` for every
    /// non-empty one. Only the export reads them; readers not in export mode
    /// have none.
    fn legacy_tags(&self, each: &mut dyn FnMut(&str, &[u8])) {
        let _ = each;
    }
}

/// Where a reader hands each row: a [`RollupBuilder`] (through
/// [`Normaliser::add_row`]) or the line-level export.
pub trait RowSink {
    /// Take the current row.
    fn row<R: RowAccess>(&mut self, norm: &mut Normaliser, r: &R) -> Result<(), BadField>;
    /// The rollup under construction, for the Parquet fast path that groups
    /// rows without visiting each; `None` (rows one by one) by default.
    fn rollup(&mut self) -> Option<&mut RollupBuilder> {
        None
    }
    /// Whether the reader must provide the export's fields
    /// ([`Field::is_export_only`], legacy tag columns, whole timestamps).
    fn export(&self) -> bool {
        false
    }
    /// The tag and cost category dimensions rows are grouped by (none by default).
    fn dimensions(&self) -> &Dimensions {
        &NO_DIMENSIONS
    }
}

impl RowSink for RollupBuilder {
    fn row<R: RowAccess>(&mut self, norm: &mut Normaliser, r: &R) -> Result<(), BadField> {
        norm.add_row(r, self)
    }
    fn rollup(&mut self) -> Option<&mut RollupBuilder> {
        Some(self)
    }
    fn dimensions(&self) -> &Dimensions {
        RollupBuilder::dimensions(self)
    }
}

/// What one row is, by the rules of [`Normaliser`]: a line item of AWS spend
/// (its group key and measures), or a FOCUS row of another provider (counted,
/// never ingested).
// Built per row and consumed at once, on the stack: boxing the large variant
// would allocate per row.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub enum Line<'r> {
    Item {
        item: LineItem<'r>,
        /// Whether curlew knows the line item type (an unknown one is Usage).
        known_type: bool,
        /// The CUR amortized rule that gave the measures (`None` for FOCUS).
        rule: Option<AmortizedInput>,
    },
    OtherProvider {
        period: &'r [u8],
        provider: &'r [u8],
        billed: Money,
    },
}

/// A value that failed to parse: which field, and why.
#[derive(Debug)]
pub struct BadField {
    pub field: Field,
    pub problem: String,
}

impl BadField {
    fn number(field: Field, e: BadNumber) -> Self {
        BadField {
            field,
            problem: e.to_string(),
        }
    }
}

/// The text fields [`Normaliser::cur_group`] reads: a CUR row's group and
/// amortized rule follow from these alone. Of `ReservationArn` only whether it
/// is empty matters.
pub const CUR_GROUP_FIELDS: [Field; 12] = [
    Field::LineItemType,
    Field::ProductCode,
    Field::UsageStart,
    Field::BillingPeriodStart,
    Field::ReservationArn,
    Field::Region,
    Field::AvailabilityZone,
    Field::ProductName,
    Field::PayerAccount,
    Field::UsageAccount,
    Field::UsageType,
    Field::Currency,
];

/// What groups a CUR row: its [`GroupKey`], its amortized rule, and whether its
/// line item type is one curlew knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurGroup<'a> {
    pub key: GroupKey<'a>,
    pub rule: AmortizedInput,
    pub known_type: bool,
}

/// Per-file normaliser: knows the dialect and which optional columns exist.
pub struct Normaliser {
    pub dialect: Dialect,
    has_net: bool,
    /// The file is FOCUS with several providers; non-AWS rows are skipped.
    pub other_provider_rows: u64,
    dims: DimValues,
}

/// Where each dimension of a file is, and the row's rendered JSON columns.
#[derive(Default)]
struct DimValues {
    dims: Dimensions,
    /// Per dimension: its own column ([`DIMS`]`[i]`, a flat column or a map
    /// read out per row by the Parquet reader), or a JSON text column.
    from: Vec<DimFrom>,
    /// The last JSON text parsed per map field, and its entries.
    parsed: [ParsedJson; 2],
    values: Vec<Vec<u8>>,
    tags: Vec<u8>,
    cost_categories: Vec<u8>,
}

/// A JSON text column's last value and its (key, value) entries.
type ParsedJson = (Vec<u8>, Vec<(String, String)>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum DimFrom {
    Column(Field),
    Json(Field),
    Nowhere,
}

impl DimValues {
    fn new(columns: &ColumnMap, dims: &Dimensions) -> Self {
        let from = dims
            .iter()
            .zip(DIMS)
            .map(|(d, field)| {
                if columns.get(field).is_some() {
                    DimFrom::Column(field)
                } else if let Some(map) = map_of(d.kind, columns) {
                    DimFrom::Json(map)
                } else {
                    DimFrom::Nowhere
                }
            })
            .collect();
        DimValues {
            dims: dims.clone(),
            from,
            values: vec![Vec::new(); dims.len()],
            ..Default::default()
        }
    }

    /// Render the row's `Tags` and `x_CostCategories` (empty: null).
    fn fill<R: RowAccess>(&mut self, r: &R) -> Result<(), BadField> {
        self.tags.clear();
        self.cost_categories.clear();
        if self.dims.is_empty() {
            return Ok(());
        }
        for i in 0..self.dims.len() {
            let mut v = std::mem::take(&mut self.values[i]);
            v.clear();
            match self.from[i] {
                DimFrom::Column(f) => v.extend_from_slice(nullish(r.text(f))),
                DimFrom::Json(f) => {
                    let slot = usize::from(f == Field::CostCategoriesMap);
                    let text = nullish(r.text(f));
                    if self.parsed[slot].0 != text {
                        self.parsed[slot] = (text.to_vec(), json_entries(f, text)?);
                    }
                    // The best-matching key's non-empty value; between
                    // equals the first, as in a Parquet map (parquet_file).
                    let d = self.dims.get(i).expect("dimension");
                    let mut best: Option<(u8, &str)> = None;
                    for (k, val) in &self.parsed[slot].1 {
                        let m = d.map_key_match(k);
                        if m > 0 && !val.is_empty() && best.is_none_or(|(b, _)| m > b) {
                            best = Some((m, val));
                        }
                    }
                    if let Some((_, val)) = best {
                        v.extend_from_slice(val.as_bytes());
                    }
                }
                DimFrom::Nowhere => {}
            }
            self.values[i] = v;
        }
        let mut values: [&[u8]; MAX_DIMENSIONS] = [&[]; MAX_DIMENSIONS];
        for (slot, v) in values.iter_mut().zip(&self.values) {
            *slot = v;
        }
        let values = &values[..self.dims.len()];
        render_json(&self.dims, Kind::Tag, values, &mut self.tags);
        render_json(
            &self.dims,
            Kind::CostCategory,
            values,
            &mut self.cost_categories,
        );
        Ok(())
    }
}

/// The string entries of a JSON object column (CUR 2.0 CSV `resource_tags`,
/// FOCUS `Tags`), in the order written; empty text is no entries.
fn json_entries(field: Field, text: &[u8]) -> Result<Vec<(String, String)>, BadField> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(text).map_err(|e| BadField {
            field,
            problem: format!("{} is not a JSON object of tags ({e})", quoted(text)),
        })?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect())
}

/// A text field's value with FOCUS's literal `NULL` read as empty (the one
/// rule for text; numbers have `money::parse_money`'s).
pub(crate) fn nullish(b: &[u8]) -> &[u8] {
    if b == b"NULL" {
        b""
    } else {
        b
    }
}

/// `YYYY-MM-DD...` -> `YYYY-MM-DD`, checked.
fn day_of(ts: &[u8]) -> Option<&[u8]> {
    (ts.len() >= 10 && ts[4] == b'-' && ts[7] == b'-' && ts[..4].iter().all(u8::is_ascii_digit))
        .then(|| &ts[..10])
}

/// Region code from an availability zone (`us-east-1a` -> `us-east-1`).
fn region_of_az(az: &[u8]) -> &[u8] {
    match az.last() {
        Some(c) if c.is_ascii_lowercase() && az.len() > 1 && az[az.len() - 2].is_ascii_digit() => {
            &az[..az.len() - 1]
        }
        _ => b"",
    }
}

impl Normaliser {
    pub fn new(dialect: Dialect, columns: &ColumnMap, dims: &Dimensions) -> Self {
        Normaliser {
            dialect,
            has_net: columns.get(Field::NetUnblendedCost).is_some(),
            other_provider_rows: 0,
            dims: DimValues::new(columns, dims),
        }
    }

    /// Normalise the current row and add it to `builder`.
    pub fn add_row<R: RowAccess>(
        &mut self,
        r: &R,
        builder: &mut RollupBuilder,
    ) -> Result<(), BadField> {
        if !self.dialect.is_focus() {
            return self.add_cur_row(r, builder);
        }
        match self.focus_line(r)? {
            Line::Item {
                mut item,
                known_type,
                rule: _,
            } => {
                self.dims.fill(r)?;
                item.group.tags = &self.dims.tags;
                item.group.cost_categories = &self.dims.cost_categories;
                let slot = builder.add(&item);
                builder.note_invoice(slot.period(), nullish(r.text(Field::InvoiceId)));
                if !known_type {
                    builder.note_unknown_type(item.group.period, item.group.line_item_type);
                }
                focus_commitments(r, builder, slot, &item)?;
            }
            Line::OtherProvider {
                period,
                provider,
                billed,
            } => builder.note_other_provider(period, provider, billed),
        }
        Ok(())
    }

    /// [`Normaliser::add_row`] of a CUR row: what [`Normaliser::line`] makes
    /// of it, with its numbers summed in [`Fixed`] point when all of them are
    /// plain (the sums are the same; any other form, and every error, goes
    /// through [`Normaliser::cur_values`]).
    #[inline]
    fn add_cur_row<R: RowAccess>(
        &mut self,
        r: &R,
        builder: &mut RollupBuilder,
    ) -> Result<(), BadField> {
        let g = self.cur_group(r)?;
        let numbers = match self.cur_values_fixed(r, g.rule) {
            Some(v) => CurNumbers::Fixed(v),
            None => CurNumbers::Exact(self.cur_values(r, g.rule)?),
        };
        let key = self.cur_key(r, &g)?;
        let period = match numbers {
            CurNumbers::Fixed(v) => builder.add_fixed_row(&key, &cur_measures(g.rule, &v)),
            CurNumbers::Exact(v) => {
                let slot = builder.slot(&key);
                builder.add_to(slot, &cur_measures(g.rule, &v));
                slot.period()
            }
        };
        cur_notes(builder, period, &g);
        builder.note_invoice(period, nullish(r.text(Field::InvoiceId)));
        if commitments::feeds_utilization(g.rule) {
            if let Some(u) = commitments::cur_util_row(r, g.rule)? {
                builder.add_utilization(period, &u);
            }
        }
        Ok(())
    }

    /// What the current row is: the one place a row of any dialect gets its
    /// key and measures (the rollup and the line-level export alike).
    #[inline]
    pub fn line<'r, R: RowAccess>(&mut self, r: &'r R) -> Result<Line<'r>, BadField> {
        if self.dialect.is_focus() {
            self.focus_line(r)
        } else {
            let g = self.cur_group(r)?;
            let v = self.cur_values(r, g.rule)?;
            Ok(Line::Item {
                item: LineItem {
                    group: g.key,
                    measures: cur_measures(g.rule, &v),
                },
                known_type: g.known_type,
                rule: Some(g.rule),
            })
        }
    }

    /// The slot of a CUR row's group `g` with the row's dimensions
    /// (`Tags`, `x_CostCategories`), with its period-wide notes
    /// ([`cur_notes`]): the Parquet fast path's first row of a combination.
    pub fn cur_slot<R: RowAccess>(
        &mut self,
        r: &R,
        g: &CurGroup<'_>,
        builder: &mut RollupBuilder,
    ) -> Result<Slot, BadField> {
        let key = self.cur_key(r, g)?;
        let slot = builder.slot(&key);
        cur_notes(builder, slot.period(), g);
        Ok(slot)
    }

    /// The key of a CUR row's group `g` with the row's dimensions.
    #[inline]
    fn cur_key<'k, R: RowAccess>(
        &'k mut self,
        r: &R,
        g: &CurGroup<'k>,
    ) -> Result<GroupKey<'k>, BadField> {
        self.dims.fill(r)?;
        let mut key = g.key;
        key.tags = &self.dims.tags;
        key.cost_categories = &self.dims.cost_categories;
        Ok(key)
    }

    /// The grouping part of a CUR row: everything but its numbers. Reads only the
    /// text of [`CUR_GROUP_FIELDS`]; fails only on a bad usage start.
    pub fn cur_group<'r, R: RowAccess>(&self, r: &'r R) -> Result<CurGroup<'r>, BadField> {
        let lit = r.text(Field::LineItemType);
        let code = r.text(Field::ProductCode);
        let start = r.text(Field::UsageStart);
        let day = day_of(start).ok_or_else(|| BadField {
            field: Field::UsageStart,
            problem: format!("{} is not a timestamp", quoted(start)),
        })?;
        let bp = r.text(Field::BillingPeriodStart);
        let period = day_of(bp).map_or(&day[..7], |d| &d[..7]);
        let rule = amortized_input(lit, code, !r.text(Field::ReservationArn).is_empty());
        let mut region = r.text(Field::Region);
        if region.is_empty() {
            region = region_of_az(r.text(Field::AvailabilityZone));
        }
        let name = r.text(Field::ProductName);
        let category = charge_category(lit);
        Ok(CurGroup {
            key: GroupKey {
                period,
                day,
                payer: r.text(Field::PayerAccount),
                account: r.text(Field::UsageAccount),
                service_code: code,
                service_name: if name.is_empty() { code } else { name },
                region,
                charge_category: category.unwrap_or("Usage").as_bytes(),
                line_item_type: lit,
                usage_type: r.text(Field::UsageType),
                currency: r.text(Field::Currency),
                tags: b"",
                cost_categories: b"",
            },
            rule,
            known_type: category.is_some(),
        })
    }

    /// The numbers of a CUR row that `rule` needs, in the order a bad one is reported.
    pub fn cur_values<R: RowAccess>(
        &self,
        r: &R,
        rule: AmortizedInput,
    ) -> Result<CurValues, BadField> {
        self.cur_values_with(rule, |f| r.number(f).map_err(|e| BadField::number(f, e)))
    }

    /// [`Normaliser::cur_values`] in [`Fixed`] units, when every number the
    /// rule needs is in plain form (`None`: take `cur_values`).
    #[inline]
    pub fn cur_values_fixed<R: RowAccess>(
        &self,
        r: &R,
        rule: AmortizedInput,
    ) -> Option<CurValuesOf<Fixed>> {
        self.cur_values_with(rule, |f| r.fixed(f).ok_or(())).ok()
    }

    /// The one list of the numbers a CUR row's `rule` needs, read by `num`.
    #[inline]
    fn cur_values_with<T: Copy + Default, E>(
        &self,
        rule: AmortizedInput,
        mut num: impl FnMut(Field) -> Result<Option<T>, E>,
    ) -> Result<CurValuesOf<T>, E> {
        let mut v = CurValuesOf {
            unblended: num(Field::UnblendedCost)?,
            blended: num(Field::BlendedCost)?,
            public_on_demand: num(Field::PublicOnDemandCost)?,
            usage_amount: num(Field::UsageAmount)?,
            ..CurValuesOf::default()
        };
        if self.has_net {
            v.net_unblended = num(Field::NetUnblendedCost)?;
        }
        match rule {
            AmortizedInput::SpEffective => v.sp_effective = num(Field::SpEffectiveCost)?,
            AmortizedInput::SpCommitment => {
                v.sp_total_commitment = num(Field::SpTotalCommitment)?;
                v.sp_used_commitment = num(Field::SpUsedCommitment)?;
            }
            AmortizedInput::RiEffective => v.ri_effective = num(Field::RiEffectiveCost)?,
            AmortizedInput::RiUnused => {
                v.ri_unused_amortized_upfront = num(Field::RiUnusedAmortizedUpfront)?;
                v.ri_unused_recurring = num(Field::RiUnusedRecurring)?;
            }
            AmortizedInput::Unblended | AmortizedInput::Zero => {}
        }
        Ok(v)
    }

    fn focus_line<'r, R: RowAccess>(&mut self, r: &'r R) -> Result<Line<'r>, BadField> {
        let num = |f: Field| r.number(f).map_err(|e| BadField::number(f, e));
        let start = r.text(Field::ChargePeriodStart);
        let day = day_of(start).ok_or_else(|| BadField {
            field: Field::ChargePeriodStart,
            problem: format!("{} is not a timestamp", quoted(start)),
        })?;
        let bp = r.text(Field::BillingPeriodStart);
        let period = day_of(bp).map_or(&day[..7], |d| &d[..7]);
        let provider = nullish(r.text(Field::ProviderName));
        if !provider.is_empty() && !is_aws(provider) {
            self.other_provider_rows += 1;
            let billed = num(Field::BilledCost)?.unwrap_or_default();
            return Ok(Line::OtherProvider {
                period,
                provider,
                billed,
            });
        }
        let billed = num(Field::BilledCost)?.unwrap_or_default();
        let measures = Measures {
            billed,
            effective: num(Field::EffectiveCost)?.unwrap_or_default(),
            list: num(Field::ListCost)?.unwrap_or_default(),
            // FOCUS: never null; where a file leaves it null (as some
            // providers' samples do), the cost without a contracted price is
            // what was billed.
            contracted: Some(num(Field::ContractedCost)?.unwrap_or(billed)),
            unblended: None,
            net_unblended: None,
            blended: None,
            usage_amount: num(Field::ConsumedQuantity)?.unwrap_or_default(),
        };
        let item = LineItem {
            group: GroupKey {
                period,
                day,
                payer: nullish(r.text(Field::BillingAccountId)),
                account: nullish(r.text(Field::SubAccountId)),
                service_code: nullish(r.text(Field::XServiceCode)),
                service_name: nullish(r.text(Field::ServiceName)),
                region: nullish(r.text(Field::RegionId)),
                charge_category: nullish(r.text(Field::ChargeCategory)),
                line_item_type: b"",
                usage_type: nullish(r.text(Field::XUsageType)),
                currency: nullish(r.text(Field::Currency)),
                // The tenant's dimensions are the rollup's: `add_row` fills them.
                tags: b"",
                cost_categories: b"",
            },
            measures,
        };
        Ok(Line::Item {
            item,
            known_type: true,
            rule: None,
        })
    }
}

/// A CUR row's numbers: in [`Fixed`] units when all are plain, else exact decimals.
enum CurNumbers {
    Fixed(CurValuesOf<Fixed>),
    Exact(CurValues),
}

/// What every CUR row of group `g` notes for its period: its payer for
/// coverage (derived from the groups at finish) and, for a line item type
/// curlew does not know, the type. The row path and the Parquet fast path's
/// first row of a combination alike.
fn cur_notes(builder: &mut RollupBuilder, period: u32, g: &CurGroup<'_>) {
    builder.note_cur_coverage(period, g.key.payer);
    if !g.known_type {
        builder.note_unknown_type(g.key.period, g.key.line_item_type);
    }
}

/// A FOCUS row's share of commitment utilization and coverage
/// ([`crate::commitments`]; a CUR row's is in [`Normaliser::add_cur_row`]).
fn focus_commitments<R: RowAccess>(
    r: &R,
    builder: &mut RollupBuilder,
    slot: Slot,
    item: &LineItem<'_>,
) -> Result<(), BadField> {
    if let Some(role) = commitments::focus_role(r, item.group.charge_category) {
        let c = builder.coverage_slot(slot, &item.group, role);
        builder.add_coverage(slot, c, item.measures.list);
    }
    if let Some(u) = commitments::focus_util_row(r)? {
        builder.add_utilization(slot.period(), &u);
    }
    Ok(())
}

fn is_aws(provider: &[u8]) -> bool {
    provider == b"AWS"
        || provider == b"Amazon Web Services"
        || provider.starts_with(b"Amazon Web Services")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_and_region_helpers() {
        assert_eq!(day_of(b"2023-11-01T00:00:00Z"), Some(&b"2023-11-01"[..]));
        assert_eq!(day_of(b"2024-09-18 22:00:00"), Some(&b"2024-09-18"[..]));
        assert_eq!(day_of(b"11/01/2023"), None);
        assert_eq!(region_of_az(b"us-east-1a"), b"us-east-1");
        assert_eq!(region_of_az(b""), b"");
        assert_eq!(nullish(b"NULL"), b"");
    }

    /// Records which text fields a row access reads.
    struct Recording {
        read: std::cell::RefCell<Vec<Field>>,
    }

    impl RowAccess for Recording {
        fn text(&self, f: Field) -> &[u8] {
            self.read.borrow_mut().push(f);
            match f {
                Field::UsageStart => b"2024-01-05T00:00:00Z",
                Field::ReservationArn => b"arn:aws:ec2:reserved",
                _ => b"",
            }
        }
        fn number(&self, _: Field) -> Result<Option<Money>, BadNumber> {
            Ok(None)
        }
    }

    #[test]
    fn cur_group_reads_only_the_group_fields() {
        let columns = ColumnMap::resolve(["lineItem/UnblendedCost"]);
        let norm = Normaliser::new(Dialect::Cur1Slash, &columns, &Dimensions::default());
        let r = Recording {
            read: Default::default(),
        };
        let g = norm.cur_group(&r).unwrap();
        assert_eq!(g.key.day, b"2024-01-05");
        for f in r.read.borrow().iter() {
            assert!(
                CUR_GROUP_FIELDS.contains(f),
                "{f:?} is not in CUR_GROUP_FIELDS"
            );
        }
    }
}
