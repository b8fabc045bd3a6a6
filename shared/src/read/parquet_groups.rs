//! The Parquet fast path for CUR: rows are grouped by the ids of their group
//! columns before anything is normalised.
//!
//! Each text column of [`CUR_GROUP_FIELDS`] arrives as a dictionary (or as
//! per-batch distinct values: days, map values); its values are interned once
//! per dictionary into file-wide ids, packed into a `u128` key per row, and
//! the tenant's tag and cost category dimensions ([`DIMS`], flat columns or
//! map values) into a `u64` beside it. The
//! first row of each combination is normalised by
//! [`Normaliser::cur_group`] (the one place with CUR semantics) into a
//! [`Slot`] of the [`RollupBuilder`]; every row then only adds its numbers, in
//! [`Fixed`] point, to its combination's slot. A row
//! with a number that has no [`Fixed`] form is added through
//! [`Normaliser::cur_values`], so its value and any error are the row path's.

use super::items::{BadField, Normaliser, CUR_GROUP_FIELDS};
use super::parquet_file::{BatchRow, NumCol, TextCol, NO_VALUE};
use crate::charge::{cur_measures, AmortizedInput, CurValuesOf};
use crate::commitments;
use crate::fields::{Field, DIMS};
use crate::money::{fixed_from_decimal, fixed_from_f64, parse_money, Fixed, Money};
use crate::rollup::{RollupBuilder, Slot};
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{Array, PrimitiveArray, StringArray};
use std::hash::BuildHasher;

const KEYS: usize = CUR_GROUP_FIELDS.len();

/// The numbers of a CUR row, in [`CurValuesOf`] order.
const NUMS: [Field; 11] = [
    Field::UnblendedCost,
    Field::NetUnblendedCost,
    Field::BlendedCost,
    Field::PublicOnDemandCost,
    Field::UsageAmount,
    Field::SpEffectiveCost,
    Field::SpTotalCommitment,
    Field::SpUsedCommitment,
    Field::RiEffectiveCost,
    Field::RiUnusedAmortizedUpfront,
    Field::RiUnusedRecurring,
];

/// A null number in the per-batch fixed-point values.
const NULL: Fixed = Fixed::MIN;

/// Bits of each group column's id in a row's packed key ([`CUR_GROUP_FIELDS`]
/// order). From the batch where a column has more distinct values than its
/// bits hold, the file goes row by row.
const BITS: [u32; KEYS] = [6, 12, 12, 8, 1, 10, 10, 12, 10, 17, 22, 6];
const SHIFTS: [u32; KEYS] = {
    let mut s = [0; KEYS];
    let mut i = 1;
    while i < KEYS {
        s[i] = s[i - 1] + BITS[i - 1];
        i += 1;
    }
    s
};
const _: () = assert!(SHIFTS[KEYS - 1] + BITS[KEYS - 1] <= 128);
/// Bits of each dimension's id in the second part of the key (up to four
/// dimensions: 64 bits).
const DIM_BITS: u32 = 16;
const _: () = assert!(DIM_BITS * DIMS.len() as u32 <= 64);

/// A row's packed key: the group columns' ids, and the dimensions' beside them.
type Key = (u128, u64);

/// File-wide ids of one group column's values. Id 0 is `b""` (and null).
struct Interner {
    /// The column, and where its ids go in the packed key: `bits` from `shift`.
    field: Field,
    bits: u32,
    shift: u32,
    /// Only whether the value is empty matters (`ReservationArn`): ids 0 and 1.
    presence: bool,
    ids: hashbrown::HashMap<Box<[u8]>, u32>,
    /// Ids of the current batch's dictionary (or indexed) values, and the largest.
    table: Vec<u32>,
    max: u32,
    /// The dictionary `table` is for. Held, so its buffers cannot be reused by
    /// another dictionary while the pointers are compared.
    dict: Option<StringArray>,
}

impl Interner {
    fn new(field: Field, bits: u32, shift: u32) -> Self {
        let mut ids = hashbrown::HashMap::new();
        ids.insert(Box::from(&b""[..]), 0);
        Interner {
            field,
            bits,
            shift,
            presence: field == Field::ReservationArn,
            ids,
            table: Vec::new(),
            max: 0,
            dict: None,
        }
    }

    fn id(&mut self, v: &[u8]) -> u32 {
        if self.presence {
            return u32::from(!v.is_empty());
        }
        if let Some(id) = self.ids.get(v) {
            return *id;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(v.into(), id);
        id
    }

    fn intern_all<'v>(&mut self, values: impl Iterator<Item = &'v [u8]>) {
        let mut table = std::mem::take(&mut self.table);
        table.clear();
        table.extend(values.map(|v| self.id(v)));
        self.max = table.iter().copied().max().unwrap_or(0);
        self.table = table;
    }

    /// Intern a batch's values of this column (as [`BatchRow`] reads them: a
    /// dictionary's null values are whatever bytes they span). The largest id,
    /// or `None` if the column is not a dictionary, indexed or absent.
    fn prepare(&mut self, col: &TextCol) -> Option<u32> {
        match col {
            TextCol::None => {
                self.dict = None;
                self.max = 0;
            }
            TextCol::Dict(_, values) => {
                let same = self.dict.as_ref().is_some_and(|v| {
                    v.len() == values.len()
                        && v.value_offsets().as_ptr() == values.value_offsets().as_ptr()
                        && v.values().as_ptr() == values.values().as_ptr()
                });
                if !same {
                    self.intern_all((0..values.len()).map(|j| values.value(j).as_bytes()));
                    self.dict = Some(values.clone());
                }
            }
            TextCol::Indexed(_, values) => {
                self.intern_all(values.iter().map(|v| &v[..]));
                self.dict = None;
            }
            TextCol::Str(_) => return None,
        }
        Some(self.max)
    }
}

/// Rows whose groups' sums are loaded together before they are added
/// ([`RollupBuilder::load_ahead`]).
const LOAD_AHEAD: usize = 32;

/// One combination of group-column ids: its packed key, where its rows go,
/// and which amortized rule they follow.
#[derive(Clone, Copy)]
struct Combo<K> {
    key: K,
    slot: Slot,
    rule: AmortizedInput,
}

/// Every combination seen, by the hash of its packed key: what a row needs
/// of it is in the table's own bucket (one cache line, no second lookup;
/// growing rehashes only the table). Without dimensions the key is the
/// `u128` alone, so an entry stays 32 bytes.
enum Combos {
    Plain(hashbrown::HashTable<Combo<u128>>),
    WithDimensions(hashbrown::HashTable<Combo<Key>>),
}

/// The slot and rule of `key`'s combination; `first` makes them for a key not
/// seen before.
#[inline]
fn combo_of<K: Copy + Eq + std::hash::Hash>(
    table: &mut hashbrown::HashTable<Combo<K>>,
    hasher: &hashbrown::DefaultHashBuilder,
    key: K,
    first: impl FnOnce() -> Result<(Slot, AmortizedInput), BadField>,
) -> Result<(Slot, AmortizedInput), BadField> {
    let hash = hasher.hash_one(key);
    if let Some(c) = table.find(hash, |c| c.key == key) {
        return Ok((c.slot, c.rule));
    }
    let (slot, rule) = first()?;
    table.insert_unique(hash, Combo { key, slot, rule }, |c| hasher.hash_one(c.key));
    Ok((slot, rule))
}

/// Per-file state of the fast path. A slot is one combination of group-column
/// ids; per slot, dense arrays keep what every row touches small.
pub(super) struct CurGroups {
    interners: Vec<Interner>,
    /// One per dimension of the tenant ([`DIMS`] order).
    dim_interners: Vec<Interner>,
    /// A column had more distinct values than its bits in the key hold.
    full: bool,
    hasher: hashbrown::DefaultHashBuilder,
    combos: Combos,
    // Per-batch scratch, reused.
    row_keys: Vec<u128>,
    row_dim_keys: Vec<u64>,
    nums: Vec<[Fixed; NUMS.len()]>,
    /// Rows with a number that is not plain: added through the row path.
    odd: Vec<bool>,
    /// Each row's slot and rule (the first pass of [`CurGroups::add_batch`]).
    combo_of_row: Vec<(Slot, AmortizedInput)>,
}

impl CurGroups {
    /// The fast path of a file read with `dimensions` tag and cost category dimensions.
    pub(super) fn new(dimensions: usize) -> Self {
        CurGroups {
            interners: CUR_GROUP_FIELDS
                .iter()
                .enumerate()
                .map(|(k, f)| Interner::new(*f, BITS[k], SHIFTS[k]))
                .collect(),
            dim_interners: DIMS[..dimensions.min(DIMS.len())]
                .iter()
                .enumerate()
                .map(|(k, f)| Interner::new(*f, DIM_BITS, DIM_BITS * k as u32))
                .collect(),
            full: false,
            hasher: hashbrown::DefaultHashBuilder::default(),
            combos: if dimensions == 0 {
                Combos::Plain(hashbrown::HashTable::new())
            } else {
                Combos::WithDimensions(hashbrown::HashTable::new())
            },
            row_keys: Vec::new(),
            row_dim_keys: Vec::new(),
            nums: Vec::new(),
            odd: Vec::new(),
            combo_of_row: Vec::new(),
        }
    }

    /// Whether this path takes a batch: every group column is a dictionary,
    /// indexed or absent, and has room in the key. Interns the batch's group
    /// values for [`CurGroups::add_batch`].
    pub(super) fn takes(&mut self, text: &[TextCol]) -> bool {
        if self.full {
            return false;
        }
        for i in self.interners.iter_mut().chain(&mut self.dim_interners) {
            match i.prepare(&text[i.field as usize]) {
                Some(max) if max < 1 << i.bits => {}
                Some(_) => {
                    self.full = true;
                    return false;
                }
                None => return false,
            }
        }
        true
    }

    /// Add rows `0..n` of a batch that [`CurGroups::takes`]. On a bad value,
    /// its row and field, as [`Normaliser::add_row`] would report them.
    pub(super) fn add_batch(
        &mut self,
        norm: &mut Normaliser,
        builder: &mut RollupBuilder,
        text: &[TextCol],
        num: &[NumCol],
        n: usize,
    ) -> Result<(), (usize, BadField)> {
        pack_keys(&self.interners, text, n, &mut self.row_keys);
        pack_keys(&self.dim_interners, text, n, &mut self.row_dim_keys);
        if self.nums.len() < n {
            self.nums.resize(n, [NULL; NUMS.len()]);
        }
        self.odd.clear();
        self.odd.resize(n, false);
        for (j, f) in NUMS.iter().enumerate() {
            fill_fixed(&num[*f as usize], j, &mut self.nums[..n], &mut self.odd);
        }
        // Two passes: each row's combination first, then its numbers. Each
        // pass's body is small and independent from row to row, so the CPU
        // overlaps the cache misses of several rows (the combination table
        // and the groups' sums are tens of MB at 600k groups).
        self.combo_of_row.clear();
        let mut bad_group = None;
        for row in 0..n {
            let first = || new_combo(norm, builder, text, num, row);
            let c = match &mut self.combos {
                Combos::Plain(t) => combo_of(t, &self.hasher, self.row_keys[row], first),
                Combos::WithDimensions(t) => {
                    let key = (self.row_keys[row], self.row_dim_keys[row]);
                    combo_of(t, &self.hasher, key, first)
                }
            };
            match c {
                Ok(c) => self.combo_of_row.push(c),
                Err(e) => {
                    // Rows before it still count, and report their own errors first.
                    bad_group = Some((row, e));
                    break;
                }
            }
        }
        for row in 0..self.combo_of_row.len() {
            if row % LOAD_AHEAD == 0 {
                let next = &self.combo_of_row[row..(row + LOAD_AHEAD).min(self.combo_of_row.len())];
                builder.load_ahead(next.iter().map(|(slot, _)| *slot));
            }
            let (slot, rule) = self.combo_of_row[row];
            builder.note_invoice(slot.period(), text[Field::InvoiceId as usize].value(row));
            if self.odd[row] {
                let v = norm
                    .cur_values(&BatchRow { text, num, row }, rule)
                    .map_err(|e| (row, e))?;
                builder.add_to(slot, &cur_measures(rule, &v));
            } else {
                self.add_fixed(builder, slot, rule, row);
            }
            if commitments::feeds_utilization(rule) {
                // Commitment rows are few: read row by row, as the row path
                // does (after the row's own numbers, so a bad one is reported first).
                let r = BatchRow { text, num, row };
                if let Some(u) = commitments::cur_util_row(&r, rule).map_err(|e| (row, e))? {
                    builder.add_utilization(slot.period(), &u);
                }
            }
        }
        match bad_group {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Add row `row`'s numbers, all in fixed point, to `slot`.
    #[inline]
    fn add_fixed(&self, builder: &mut RollupBuilder, slot: Slot, rule: AmortizedInput, row: usize) {
        let x = &self.nums[row];
        let o = |j: usize| (x[j] != NULL).then_some(x[j]);
        let v = CurValuesOf {
            unblended: o(0),
            net_unblended: o(1),
            blended: o(2),
            public_on_demand: o(3),
            usage_amount: o(4),
            sp_effective: o(5),
            sp_total_commitment: o(6),
            sp_used_commitment: o(7),
            ri_effective: o(8),
            ri_unused_amortized_upfront: o(9),
            ri_unused_recurring: o(10),
        };
        builder.add_fixed_to(slot, &cur_measures(rule, &v));
    }
}

/// The first row of a combination: normalised by [`Normaliser::cur_group`]
/// into its slot ([`Normaliser::cur_slot`]) and rule.
fn new_combo(
    norm: &mut Normaliser,
    builder: &mut RollupBuilder,
    text: &[TextCol],
    num: &[NumCol],
    row: usize,
) -> Result<(Slot, AmortizedInput), BadField> {
    let r = BatchRow { text, num, row };
    let g = norm.cur_group(&r)?;
    Ok((norm.cur_slot(&r, &g, builder)?, g.rule))
}

/// Every row's packed key of `interners`' columns (rows `0..n`): each
/// interner's ids at its shift.
fn pack_keys<K>(interners: &[Interner], text: &[TextCol], n: usize, keys: &mut Vec<K>)
where
    K: Copy + Default + From<u32> + std::ops::Shl<u32, Output = K> + std::ops::BitOrAssign,
{
    keys.clear();
    keys.resize(n, K::default());
    for i in interners {
        fill_keys(&i.table, &text[i.field as usize], i.shift, keys);
    }
}

/// OR a group column's ids, shifted into place, into each row's packed key
/// (or its dimensions' part).
fn fill_keys<K>(ids: &[u32], col: &TextCol, shift: u32, keys: &mut [K])
where
    K: Copy + From<u32> + std::ops::Shl<u32, Output = K> + std::ops::BitOrAssign,
{
    let put = |key: &mut K, id: u32| *key |= K::from(id) << shift;
    match col {
        TextCol::Dict(dict_keys, _) => {
            let rows = keys.iter_mut().zip(dict_keys.values().iter());
            if dict_keys.null_count() == 0 {
                for (key, k) in rows {
                    put(key, ids.get(*k as usize).copied().unwrap_or(0));
                }
            } else {
                for (i, (key, k)) in rows.enumerate() {
                    if dict_keys.is_valid(i) {
                        put(key, ids.get(*k as usize).copied().unwrap_or(0));
                    }
                }
            }
        }
        TextCol::Indexed(idx, _) => {
            for (key, j) in keys.iter_mut().zip(idx) {
                if *j != NO_VALUE {
                    put(key, ids[*j as usize]);
                }
            }
        }
        // Absent: every row reads `b""`, id 0. Plain strings are not taken.
        TextCol::None | TextCol::Str(_) => {}
    }
}

/// Column `j` of `nums`: a number column in fixed point, [`NULL`] where null.
/// A value that has no plain fixed-point form marks its row in `odd`.
fn fill_fixed(col: &NumCol, j: usize, nums: &mut [[Fixed; NUMS.len()]], odd: &mut [bool]) {
    match col {
        NumCol::None => nums.iter_mut().for_each(|r| r[j] = NULL),
        NumCol::F64(a) => fill_primitive(a, j, nums, odd, fixed_from_f64),
        NumCol::F32(a) => fill_primitive(a, j, nums, odd, |v| fixed_from_f64(f64::from(v))),
        NumCol::Dec(a, scale) => fill_primitive(a, j, nums, odd, |v| {
            Money::try_from_i128_with_scale(v, *scale)
                .ok()
                .and_then(fixed_from_decimal)
        }),
        NumCol::I64(a) => fill_primitive(a, j, nums, odd, |v| fixed_from_decimal(Money::from(v))),
        NumCol::I32(a) => fill_primitive(a, j, nums, odd, |v| fixed_from_decimal(Money::from(v))),
        NumCol::Str(a) => {
            for (i, (r, o)) in nums.iter_mut().zip(odd.iter_mut()).enumerate() {
                r[j] = NULL;
                if a.is_null(i) {
                    continue;
                }
                match parse_money(a.value(i).as_bytes()) {
                    Ok(None) => {}
                    Ok(Some(d)) => match fixed_from_decimal(d) {
                        Some(x) => r[j] = x,
                        None => *o = true,
                    },
                    Err(_) => *o = true,
                }
            }
        }
    }
}

fn fill_primitive<T: ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    j: usize,
    nums: &mut [[Fixed; NUMS.len()]],
    odd: &mut [bool],
    conv: impl Fn(T::Native) -> Option<Fixed>,
) {
    let rows = nums.iter_mut().zip(odd.iter_mut()).zip(a.values().iter());
    let has_nulls = a.null_count() > 0;
    for (i, ((r, o), v)) in rows.enumerate() {
        r[j] = NULL;
        if has_nulls && a.is_null(i) {
            continue;
        }
        match conv(*v) {
            Some(x) => r[j] = x,
            None => *o = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parquet_file::{read_parquet_by, Path};
    use super::super::{FileReport, ReadOptions};
    use crate::dimensions::Dimensions;
    use crate::rollup::{PeriodRollup, RollupBuilder};
    use crate::sample::{write_sample, SampleFormat, SampleOutput, SampleSpec};
    use arrow_array::builder::{Decimal128Builder, Float64Builder, Int64Builder, StringBuilder};
    use arrow_array::{ArrayRef, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    type Read = Result<(FileReport, BTreeMap<String, PeriodRollup>), String>;

    fn read_with(
        file: &std::path::Path,
        path: Path,
        accounts: Option<&BTreeSet<String>>,
        threaded: bool,
    ) -> Read {
        read_dims(file, path, accounts, threaded, &Dimensions::default())
    }

    fn read_dims(
        file: &std::path::Path,
        path: Path,
        accounts: Option<&BTreeSet<String>>,
        threaded: bool,
        dims: &Dimensions,
    ) -> Read {
        let mut b = RollupBuilder::new(accounts).with_dimensions(dims.clone());
        let f = std::fs::File::open(file).unwrap();
        let opts = ReadOptions {
            threaded_decompression: threaded,
            ..ReadOptions::default()
        };
        let r = read_parquet_by("f.parquet", f, &mut b, &opts, path).map_err(|e| e.to_string())?;
        Ok((r, b.finish()))
    }

    fn read(file: &std::path::Path, path: Path, accounts: Option<&BTreeSet<String>>) -> Read {
        read_with(file, path, accounts, false)
    }

    /// A bare generated month of 30,000 rows in `dir`: its data file and what
    /// the generator expects of it.
    fn sample_file(
        format: SampleFormat,
        dir: &std::path::Path,
    ) -> (std::path::PathBuf, SampleOutput) {
        let mut spec = SampleSpec::new(format, 30_000);
        spec.bare = true;
        let out = write_sample(&spec, dir).unwrap();
        (dir.join(&out.data_keys[0]), out)
    }

    /// The same read but for which rows the fast path took.
    fn rows_alike(r: &Read) -> Result<(u64, &BTreeMap<String, PeriodRollup>), &String> {
        r.as_ref().map(|(f, p)| (f.rows, p))
    }

    /// Both paths, which must agree, as must the grouped path with its pages
    /// decoded on a thread of their own (results and errors alike); the grouped
    /// one's result.
    fn both(file: &std::path::Path, accounts: Option<&BTreeSet<String>>) -> Read {
        let grouped = read(file, Path::Grouped, accounts);
        let by_row = read(file, Path::RowByRow, accounts);
        assert_eq!(rows_alike(&grouped), rows_alike(&by_row));
        assert_eq!(read_with(file, Path::Grouped, accounts, true), grouped);
        grouped
    }

    #[test]
    fn generated_cur_is_the_same_grouped_or_row_by_row() {
        for format in [SampleFormat::Cur1Parquet, SampleFormat::Cur2Parquet] {
            let dir = tempfile::tempdir().unwrap();
            let (file, out) = sample_file(format, dir.path());
            let (report, periods) = both(&file, None).unwrap();
            assert_eq!(report.rows, 30_000);
            let p = &periods["2024-01"];
            assert_eq!(p.totals.billed_cost, out.expected.billed);
            assert_eq!(p.totals.effective_cost, out.expected.effective);
            assert!(p.unattributed.is_empty());
            // Commitments too (compared by `both`), on both paths.
            assert!(!p.commitments.utilization.is_empty());
            assert!(!p.commitments.coverage.is_empty());
            // Only some accounts connected: the rest is unattributed, per account.
            let accounts: BTreeSet<String> = out
                .expected
                .billed_per_account
                .keys()
                .step_by(3)
                .cloned()
                .collect();
            let (_, periods) = both(&file, Some(&accounts)).unwrap();
            let p = &periods["2024-01"];
            assert!(!p.unattributed.is_empty());
            assert_eq!(p.totals.billed_cost, out.expected.billed);
            for (a, s) in &p.unattributed {
                assert!(!accounts.contains(a));
                assert_eq!(s.billed_cost, out.expected.billed_per_account[a]);
            }
        }
    }

    /// Tag and cost category dimensions are part of the fast path's key
    /// (legacy flat columns, CUR 2.0 map values): every row is on the fast
    /// path, with the same groups as row by row and the same totals as without.
    #[test]
    fn dimensions_are_the_same_grouped_or_row_by_row() {
        let dims = Dimensions::from_args(
            &["team".into(), "environment".into(), "no-such-tag".into()],
            &["CostCenter".into()],
        )
        .unwrap();
        for format in [SampleFormat::Cur1Parquet, SampleFormat::Cur2Parquet] {
            let dir = tempfile::tempdir().unwrap();
            let (file, _) = sample_file(format, dir.path());
            let grouped = read_dims(&file, Path::Grouped, None, true, &dims);
            let by_row = read_dims(&file, Path::RowByRow, None, false, &dims);
            assert_eq!(rows_alike(&grouped), rows_alike(&by_row), "{format:?}");
            let grouped = grouped.unwrap();
            assert_eq!(
                grouped.0.grouped_rows, 30_000,
                "{format:?}: not on the fast path"
            );
            assert_eq!(by_row.unwrap().0.grouped_rows, 0);
            let plain = read(&file, Path::Grouped, None).unwrap();
            let (p, q) = (&grouped.1["2024-01"], &plain.1["2024-01"]);
            assert!(p.groups.len() >= q.groups.len(), "{format:?}");
            assert_eq!(p.totals, q.totals);
            let tagged = p
                .groups
                .iter()
                .filter(|g| g.key[10].contains("team"))
                .count();
            assert!(tagged > 0, "{format:?}: no group has a team tag");
        }
    }

    #[test]
    fn workshop_cur_is_the_same_grouped_or_row_by_row() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../shared/data/cur1-parquet-workshop/year=2018/month=10/Oct2018-WorkshopCUR-00001.snappy.parquet",
        );
        if !file.exists() {
            assert!(
                std::env::var("CI").is_err(),
                "{} is missing",
                file.display()
            );
            eprintln!("skipping: {} not found", file.display());
            return;
        }
        let (report, periods) = both(&file, None).unwrap();
        assert_eq!(report.rows, 119_307);
        let accounts: BTreeSet<String> = periods["2018-10"]
            .groups
            .iter()
            .map(|g| g.key[2].to_owned())
            .take(1)
            .collect();
        let (_, periods) = both(&file, Some(&accounts)).unwrap();
        assert!(!periods["2018-10"].unattributed.is_empty());
    }

    /// A legacy CUR Parquet file with string timestamps, nulls, a decimal and an
    /// integer column, values beyond the fast path's range and precision, and
    /// `put(row)` in place of row `row`'s value where it returns something.
    fn odd_file(
        dir: &std::path::Path,
        rows: usize,
        put: impl Fn(usize) -> Option<Put>,
    ) -> std::path::PathBuf {
        let text = [
            "line_item_line_item_type",
            "line_item_usage_account_id",
            "bill_payer_account_id",
            "line_item_usage_start_date",
            "line_item_product_code",
            "product_region",
            "line_item_availability_zone",
            "reservation_reservation_a_r_n",
        ];
        let mut fields: Vec<Field> = text
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect();
        fields.push(Field::new(
            "line_item_unblended_cost",
            DataType::Float64,
            true,
        ));
        fields.push(Field::new(
            "line_item_net_unblended_cost",
            DataType::Float64,
            true,
        ));
        fields.push(Field::new(
            "savings_plan_savings_plan_effective_cost",
            DataType::Float64,
            true,
        ));
        fields.push(Field::new(
            "line_item_usage_amount",
            DataType::Decimal128(30, 15),
            true,
        ));
        fields.push(Field::new(
            "pricing_public_on_demand_cost",
            DataType::Int64,
            true,
        ));
        let schema = Arc::new(Schema::new(fields));
        let mut t: Vec<StringBuilder> = text.iter().map(|_| StringBuilder::new()).collect();
        let (mut unblended, mut net, mut sp) = (
            Float64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
        );
        let mut usage = Decimal128Builder::new()
            .with_precision_and_scale(30, 15)
            .unwrap();
        let mut list = Int64Builder::new();
        let types = [
            "Usage",
            "SavingsPlanCoveredUsage",
            "Fee",
            "Tax",
            "BrandNewType",
            "RIFee",
        ];
        let mut x = 7u64;
        for row in 0..rows {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = (x >> 33) as usize;
            let b = put(row);
            match &b {
                Some(Put::Type(t0)) => t[0].append_value(t0),
                _ => t[0].append_value(types[r % types.len()]),
            }
            t[1].append_value(format!("{:012}", 100 + r % 7));
            t[2].append_value("999999999999");
            match &b {
                Some(Put::Start(s)) => t[3].append_value(s),
                _ if r.is_multiple_of(2) => {
                    t[3].append_value(format!("2024-01-{:02} 10:00:00", 1 + r % 28))
                }
                _ => t[3].append_value(format!("2024-01-{:02}T00:00:00Z", 1 + r % 28)),
            }
            t[4].append_value(["AmazonEC2", "ComputeSavingsPlans", "AWSLambda"][r % 3]);
            if r.is_multiple_of(5) {
                t[5].append_null();
            } else {
                t[5].append_value(["us-east-1", "eu-west-1"][r % 2]);
            }
            t[6].append_value(["us-east-1a", "us-east-1b", ""][r % 3]);
            t[7].append_value(if r.is_multiple_of(4) {
                format!("arn:ri:{r}")
            } else {
                String::new()
            });
            let cost = match r % 11 {
                0 => 12_345_678.25,
                1 => 1.5e-15,
                2 => -0.000_000_000_1,
                _ => (r % 100_000) as f64 / 1e4,
            };
            match &b {
                Some(Put::Cost(v)) => unblended.append_value(*v),
                _ if r.is_multiple_of(13) => unblended.append_null(),
                _ => unblended.append_value(cost),
            }
            net.append_option((r.is_multiple_of(3)).then_some(cost * 0.5));
            match &b {
                Some(Put::Sp(v)) => sp.append_value(*v),
                // NaN where the row's type does not read it (types[1] does).
                _ if r.is_multiple_of(17) && r % types.len() != 1 => sp.append_value(f64::NAN),
                _ => sp.append_value(cost / 3.0),
            }
            usage.append_value((r as i128) * 1_000_000_000 + i128::from(r.is_multiple_of(10)));
            list.append_option((!r.is_multiple_of(7)).then_some((r % 1000) as i64));
        }
        let mut cols: Vec<ArrayRef> = t
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        cols.push(Arc::new(unblended.finish()));
        cols.push(Arc::new(net.finish()));
        cols.push(Arc::new(sp.finish()));
        cols.push(Arc::new(usage.finish()));
        cols.push(Arc::new(list.finish()));
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let path = dir.join("odd.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(5000))
            .build();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(props))
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    }

    enum Put {
        Type(String),
        Start(&'static str),
        Cost(f64),
        Sp(f64),
    }

    #[test]
    fn odd_values_are_the_same_grouped_or_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let file = odd_file(dir.path(), 20_000, |_| None);
        let (report, periods) = both(&file, None).unwrap();
        assert_eq!(report.rows, 20_000);
        let p = &periods["2024-01"];
        assert!(p.unknown_types.contains("BrandNewType"));
        assert!(p.totals.net_unblended_cost.is_some());
        let accounts: BTreeSet<String> = ["000000000101".to_string()].into();
        let (_, periods) = both(&file, Some(&accounts)).unwrap();
        assert_eq!(periods["2024-01"].unattributed.len(), 6);
    }

    #[test]
    fn more_values_than_the_key_holds_go_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        // From row 10,000 (the second batch), 100 line item types: more than
        // their 6 bits in the key hold.
        let file = odd_file(dir.path(), 20_000, |row| {
            (row >= 10_000).then(|| Put::Type(format!("Type{:03}", row % 100)))
        });
        let (report, periods) = both(&file, None).unwrap();
        assert_eq!(report.rows, 20_000);
        assert!(periods["2024-01"].unknown_types.contains("Type099"));
    }

    #[test]
    fn bad_rows_are_reported_alike() {
        let dir = tempfile::tempdir().unwrap();
        // A bad timestamp in the second batch and the second row group.
        let file = odd_file(dir.path(), 20_000, |row| {
            (row == 9_000).then_some(Put::Start("11/01/2023"))
        });
        let e = both(&file, None).unwrap_err();
        assert!(
            e.contains("row group 1, row 4000") && e.contains("line_item_usage_start_date"),
            "{e}"
        );
        // A bad number before it is reported first.
        let file = odd_file(dir.path(), 20_000, |row| match row {
            8_500 => Some(Put::Cost(f64::INFINITY)),
            9_000 => Some(Put::Start("11/01/2023")),
            _ => None,
        });
        let e = both(&file, None).unwrap_err();
        assert!(
            e.contains("row 3500") && e.contains("line_item_unblended_cost"),
            "{e}"
        );
        // A bad number in a column only some line item types read.
        let file = odd_file(dir.path(), 20_000, |row| {
            (row >= 12_000).then_some(Put::Sp(f64::NAN))
        });
        let e = both(&file, None).unwrap_err();
        assert!(
            e.contains("savings_plan_savings_plan_effective_cost"),
            "{e}"
        );
    }
}
