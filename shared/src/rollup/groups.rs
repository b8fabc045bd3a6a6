//! A rollup's groups, compact from the first row to the output: a group key is
//! twelve interned string ids, its sums eight `i64` integers of 1e-12 ([`Fixed`]
//! units: AWS writes at most 12 decimals). 120 bytes a group (48 of key, 72 of
//! sums) plus its share of the index, whatever the keys' lengths.
//!
//! Exactness: a value with more than 12 decimals goes to the group's spill
//! (exact decimals); a sum about to leave `i64` moves what it holds to the
//! spill and starts again. A group's value is always `units + spill`, never
//! rounded.

use super::key_index::{KeyIndex, Probe};
use super::{Measure, Sums};
use crate::charge::MeasuresOf;
use crate::money::{
    fixed_from_decimal, fixed_to_sum_units, to_sum_units_rounded, Fixed, Money, FIXED_SCALE,
};
use std::collections::BTreeMap;
use std::hash::BuildHasher;

/// Key columns of a group ([`super::KEY_COLUMNS`] order; the period is the rollup's).
pub const KEY_LEN: usize = 12;
/// Where the charge category and line item type are in a key.
pub(super) const CATEGORY: usize = 6;
pub(super) const LINE_ITEM_TYPE: usize = 7;

type Ids = [u32; KEY_LEN];
const MEASURES: usize = Measure::ALL.len();
/// Measures that are always present (the others only when a row had them).
const ALWAYS: u8 = 0b1000_0111;

/// The running sums of one group: 72 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupSums {
    /// [`Measure::ALL`] order, in units of 1e-12.
    units: [Fixed; MEASURES],
    /// Bits 0-7: measure `i` had a value (always set for billed, effective,
    /// list, usage); bit 8: part of the sums is in the spill; bits 9-63: rows.
    meta: u64,
}

const _: () = assert!(std::mem::size_of::<GroupSums>() == 72);

const SPILLED: u64 = 1 << 8;
const ROWS_SHIFT: u32 = 9;
/// Rows a group can count (2^55, far beyond any month).
const MAX_ROWS: u64 = u64::MAX >> ROWS_SHIFT;

impl GroupSums {
    fn rows(&self) -> u64 {
        self.meta >> ROWS_SHIFT
    }

    fn present(&self) -> u8 {
        self.meta as u8
    }

    fn spilled(&self) -> bool {
        self.meta & SPILLED != 0
    }

    /// One more row, with these measures present.
    #[inline]
    fn count_row(&mut self, present: u8) {
        debug_assert!(self.rows() < MAX_ROWS);
        self.meta = (self.meta + (1 << ROWS_SHIFT)) | u64::from(present);
    }

    /// Another group's rows and present measures.
    fn count_rows_of(&mut self, o: &GroupSums) {
        let rows = self
            .rows()
            .checked_add(o.rows())
            .filter(|r| *r <= MAX_ROWS)
            .expect("a group of more than 2^55 rows");
        self.meta = (self.meta & (SPILLED | 0xff)) | u64::from(o.present()) | rows << ROWS_SHIFT;
    }
}

/// Exact remainders of a group's sums that the units could not hold.
type Spill = [Money; MEASURES];

fn measures<T: Copy>(m: &MeasuresOf<T>) -> [Option<T>; MEASURES] {
    [
        Some(m.billed),
        Some(m.effective),
        Some(m.list),
        m.contracted,
        m.unblended,
        m.net_unblended,
        m.blended,
        Some(m.usage_amount),
    ]
}

/// A row's [`Fixed`] measures as [`GroupSums`] holds them: the present
/// bits and the values (0 for a measure the row lacks).
#[inline]
fn fixed_values(m: &MeasuresOf<Fixed>) -> (u8, [Fixed; MEASURES]) {
    let present = ALWAYS
        | u8::from(m.contracted.is_some()) << 3
        | u8::from(m.unblended.is_some()) << 4
        | u8::from(m.net_unblended.is_some()) << 5
        | u8::from(m.blended.is_some()) << 6;
    let values = [
        m.billed,
        m.effective,
        m.list,
        m.contracted.unwrap_or(0),
        m.unblended.unwrap_or(0),
        m.net_unblended.unwrap_or(0),
        m.blended.unwrap_or(0),
        m.usage_amount,
    ];
    (present, values)
}

/// `a == b` without a call to memcmp (this is on every row's path).
#[inline]
fn same(a: &Ids, b: &Ids) -> bool {
    let mut d = 0;
    for i in 0..KEY_LEN {
        d |= a[i] ^ b[i];
    }
    d == 0
}

/// `a == b` for byte strings, inline for the short values keys hold (ids,
/// codes, dates: up to 16 bytes, two overlapping word loads) and memcmp
/// beyond. Every key column of every row is compared at least once, and a
/// call to memcmp per compare was a fifth of the CSV path's time.
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word8 = |s: &[u8], i: usize| u64::from_ne_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]));
    let word4 = |s: &[u8], i: usize| u32::from_ne_bytes(s[i..i + 4].try_into().unwrap_or([0; 4]));
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

/// Interned strings: ids in first-seen order. The index holds ids only; a
/// lookup compares with [`bytes_eq`] and each string's hash is kept, so
/// growing the index never hashes a string again.
#[derive(Default)]
struct Strings {
    hasher: hashbrown::DefaultHashBuilder,
    ids: hashbrown::HashTable<u32>,
    hashes: Vec<u64>,
    values: Vec<Box<[u8]>>,
}

impl Strings {
    #[inline]
    fn id(&mut self, v: &[u8]) -> u32 {
        let hash = self.hasher.hash_one(v);
        let values = &self.values;
        if let Some(id) = self.ids.find(hash, |id| bytes_eq(&values[*id as usize], v)) {
            return *id;
        }
        self.insert(hash, v)
    }

    #[cold]
    fn insert(&mut self, hash: u64, v: &[u8]) -> u32 {
        let id = self.values.len() as u32;
        self.values.push(v.into());
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.ids.insert_unique(hash, id, |id| hashes[*id as usize]);
        id
    }
}

/// Groups being built: rows and other groups are added by index.
pub(crate) struct GroupTable {
    strings: Strings,
    /// The id each key column had last (rows come in runs).
    last: Ids,
    hasher: hashbrown::DefaultHashBuilder,
    index: KeyIndex,
    keys: Vec<Ids>,
    sums: Vec<GroupSums>,
    spill: hashbrown::HashMap<u32, Box<Spill>>,
    /// Rows added by [`GroupTable::add_fixed_later`] whose groups are not
    /// looked up yet (at most [`PENDING`]).
    pending: Vec<Pending>,
}

/// Rows whose group lookups are made together: their cache misses overlap.
const PENDING: usize = 32;

/// A row waiting for its group: its key, and its measures as
/// [`GroupTable::add_fixed`] adds them.
struct Pending {
    ids: Ids,
    present: u8,
    values: [Fixed; MEASURES],
}

impl Default for GroupTable {
    fn default() -> Self {
        let mut strings = Strings::default();
        strings.id(b"");
        GroupTable {
            strings,
            last: [0; KEY_LEN],
            hasher: Default::default(),
            index: Default::default(),
            keys: Vec::new(),
            sums: Vec::new(),
            spill: Default::default(),
            pending: Vec::new(),
        }
    }
}

impl GroupTable {
    /// The id of a string (interned once).
    #[inline]
    pub(crate) fn string_id(&mut self, column: usize, v: &[u8]) -> u32 {
        let last = self.last[column];
        if bytes_eq(&self.strings.values[last as usize], v) {
            return last;
        }
        let id = self.strings.id(v);
        self.last[column] = id;
        id
    }

    /// The group of a key (created empty if new).
    #[inline]
    pub(crate) fn group(&mut self, parts: [&[u8]; KEY_LEN]) -> u32 {
        let ids = self.ids(parts);
        self.group_of_ids(ids)
    }

    /// A key as interned ids.
    #[inline]
    pub(crate) fn ids(&mut self, parts: [&[u8]; KEY_LEN]) -> Ids {
        let mut ids = [0u32; KEY_LEN];
        for (c, p) in parts.into_iter().enumerate() {
            ids[c] = self.string_id(c, p);
        }
        ids
    }

    fn group_of_ids(&mut self, ids: Ids) -> u32 {
        let hash = self.hasher.hash_one(ids);
        self.group_of_hashed(hash, ids)
    }

    #[inline]
    fn group_of_hashed(&mut self, hash: u64, ids: Ids) -> u32 {
        let keys = &self.keys;
        let vacant = match self.index.probe(hash, |i| same(&keys[i as usize], &ids)) {
            Probe::Found(i) => return i,
            Probe::Vacant(at) => at,
        };
        let i = u32::try_from(self.keys.len())
            .ok()
            .filter(|i| *i < u32::MAX)
            .expect("a period of more than 2^32 - 1 groups");
        self.keys.push(ids);
        self.sums.push(GroupSums::default());
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.index
            .insert_at(vacant, hash, i, |i| hasher.hash_one(keys[i as usize]));
        i
    }

    fn spill_of(&mut self, g: u32) -> &mut Spill {
        self.sums[g as usize].meta |= SPILLED;
        self.spill
            .entry(g)
            .or_insert_with(|| Box::new([Money::ZERO; MEASURES]))
    }

    /// Move what measure `i` of group `g` holds to the spill (its units are about to overflow).
    #[cold]
    fn carry(&mut self, g: u32, i: usize) {
        let u = std::mem::take(&mut self.sums[g as usize].units[i]);
        self.spill_of(g)[i] += Money::new(u, FIXED_SCALE);
    }

    /// Add `v` units to measure `i` of group `g`.
    #[inline]
    fn add_units(&mut self, g: u32, i: usize, v: Fixed) {
        let u = &mut self.sums[g as usize].units[i];
        match u.checked_add(v) {
            Some(x) => *u = x,
            None => {
                self.carry(g, i);
                self.sums[g as usize].units[i] = v;
            }
        }
    }

    /// Add one row's measures to group `g`.
    #[inline]
    pub(crate) fn add(&mut self, g: u32, m: &MeasuresOf<Money>) {
        self.sums[g as usize].count_row(0);
        for (i, v) in measures(m).into_iter().enumerate() {
            let Some(v) = v else { continue };
            self.sums[g as usize].meta |= 1 << i;
            match fixed_from_decimal(v) {
                Some(f) => self.add_units(g, i, f),
                None => self.spill_of(g)[i] += v,
            }
        }
    }

    /// Add one row's measures in [`Fixed`] point (the same as [`GroupTable::add`] of their decimals).
    #[inline]
    pub(crate) fn add_fixed(&mut self, g: u32, m: &MeasuresOf<Fixed>) {
        let (present, values) = fixed_values(m);
        self.add_fixed_values(g, present, values);
    }

    /// [`GroupTable::add_fixed`] to the group of key `ids`, whose lookup
    /// waits for [`PENDING`] rows: the lookups of a batch are made together,
    /// so that their cache misses (index slot, key, sums: each a miss once
    /// the table outgrows the caches) overlap instead of following each
    /// other. The sums are the same; every reader of the table takes the
    /// rows waiting first.
    #[inline]
    pub(crate) fn add_fixed_later(&mut self, ids: Ids, m: &MeasuresOf<Fixed>) {
        let (present, values) = fixed_values(m);
        self.pending.push(Pending {
            ids,
            present,
            values,
        });
        if self.pending.len() == PENDING {
            self.flush();
        }
    }

    /// Read group `g`'s sums (both of their cache lines), for nothing but
    /// to have them in the cache when they are added to.
    #[inline]
    pub(crate) fn load(&self, g: u32) -> u64 {
        self.sums
            .get(g as usize)
            .map_or(0, |s| s.units[0] as u64 ^ s.meta)
    }

    /// Add the rows waiting for their groups. First every row's index slot
    /// is loaded, then the key and sums that slot names, each pass's loads
    /// independent of each other; then the rows are added in order, from
    /// the caches.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let mut hashes = [0u64; PENDING];
        let mut likely = [None; PENDING];
        for ((p, h), l) in pending.iter().zip(&mut hashes).zip(&mut likely) {
            *h = self.hasher.hash_one(p.ids);
            *l = self.index.likely(*h);
        }
        let mut loaded = 0u64;
        for g in likely.iter().flatten() {
            loaded ^= self.keys.get(*g as usize).map_or(0, |k| u64::from(k[0])) ^ self.load(*g);
        }
        std::hint::black_box(loaded);
        for (p, h) in pending.drain(..).zip(hashes) {
            let g = self.group_of_hashed(h, p.ids);
            self.add_fixed_values(g, p.present, p.values);
        }
        self.pending = pending;
    }

    #[inline]
    fn add_fixed_values(&mut self, g: u32, present: u8, v: [Fixed; MEASURES]) {
        let s = &mut self.sums[g as usize];
        s.count_row(present);
        let mut out = [0; MEASURES];
        let mut overflow = false;
        for i in 0..MEASURES {
            let (u, o) = s.units[i].overflowing_add(v[i]);
            out[i] = u;
            overflow |= o;
        }
        if !overflow {
            s.units = out;
            return;
        }
        for (i, x) in v.into_iter().enumerate() {
            self.add_units(g, i, x);
        }
    }

    /// Add a finished group's sums to group `g`.
    fn add_sums(&mut self, g: u32, o: &GroupSums, o_spill: Option<&Spill>) {
        let s = &mut self.sums[g as usize];
        s.count_rows_of(o);
        for (i, u) in o.units.into_iter().enumerate() {
            self.add_units(g, i, u);
        }
        if let Some(x) = o_spill {
            let spill = self.spill_of(g);
            for i in 0..MEASURES {
                spill[i] += x[i];
            }
        }
    }

    /// Add every group of `o`.
    pub(crate) fn merge(&mut self, o: &Groups) {
        self.flush();
        let ids: Vec<u32> = o
            .strings
            .iter()
            .map(|v| self.strings.id(v.as_bytes()))
            .collect();
        for (j, (k, s)) in o.keys.iter().zip(&o.sums).enumerate() {
            let g = self.group_of_ids(k.map(|x| ids[x as usize]));
            self.add_sums(g, s, o.spill.get(&(j as u32)));
        }
    }

    /// Rows per id of the line item type (or, when empty, of the charge category).
    pub(crate) fn rows_per_label(&mut self) -> BTreeMap<&[u8], u64> {
        self.flush();
        let mut per_id = vec![0u64; self.strings.values.len()];
        for (k, s) in self.keys.iter().zip(&self.sums) {
            let label = if k[LINE_ITEM_TYPE] == 0 {
                k[CATEGORY]
            } else {
                k[LINE_ITEM_TYPE]
            };
            per_id[label as usize] += s.rows();
        }
        per_id
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(id, n)| (&*self.strings.values[id], *n))
            .collect()
    }

    /// The groups, sorted by key (column by column, byte order).
    pub(crate) fn finish(mut self) -> Groups {
        self.flush();
        let GroupTable {
            strings,
            mut keys,
            mut sums,
            spill,
            index,
            ..
        } = self;
        drop((index, strings.ids, strings.hashes));
        // Ids renumbered in string order, so that sorting ids sorts strings.
        let mut order: Vec<u32> = (0..strings.values.len() as u32).collect();
        order
            .sort_unstable_by(|a, b| strings.values[*a as usize].cmp(&strings.values[*b as usize]));
        let mut rank = vec![0u32; order.len()];
        for (r, id) in order.iter().enumerate() {
            rank[*id as usize] = r as u32;
        }
        let mut values: Vec<Option<Box<[u8]>>> = strings.values.into_iter().map(Some).collect();
        let sorted: Vec<String> = order
            .iter()
            .map(|id| {
                let v = values[*id as usize].take().unwrap_or_default();
                String::from_utf8(v.into_vec())
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            })
            .collect();
        for k in &mut keys {
            for x in k.iter_mut() {
                *x = rank[*x as usize];
            }
        }
        let mut perm = sort_order(&keys);
        let spill = if spill.is_empty() {
            BTreeMap::new()
        } else {
            let mut new_pos = vec![0u32; perm.len()];
            for (pos, old) in perm.iter().enumerate() {
                new_pos[*old as usize] = pos as u32;
            }
            spill
                .into_iter()
                .map(|(g, s)| (new_pos[g as usize], *s))
                .collect()
        };
        permute(&mut perm, &mut keys, &mut sums);
        Groups {
            strings: sorted,
            keys,
            sums,
            spill,
        }
    }
}

impl From<Groups> for GroupTable {
    fn from(g: Groups) -> Self {
        // Finished strings are sorted and hold "": it is id 0 in both, and the ids map 1:1.
        let mut t = GroupTable::default();
        let ids: Vec<u32> = g
            .strings
            .iter()
            .map(|v| t.strings.id(v.as_bytes()))
            .collect();
        t.keys = g.keys;
        t.sums = g.sums;
        let identity = ids.iter().enumerate().all(|(i, id)| *id as usize == i);
        if !identity {
            for k in &mut t.keys {
                for x in k.iter_mut() {
                    *x = ids[*x as usize];
                }
            }
        }
        t.index = KeyIndex::with_capacity(t.keys.len());
        let (keys, hasher) = (&t.keys, &t.hasher);
        for (i, k) in keys.iter().enumerate() {
            t.index.insert(hasher.hash_one(k), i as u32, |i| {
                hasher.hash_one(keys[i as usize])
            });
        }
        t.spill = g.spill.into_iter().map(|(k, v)| (k, Box::new(v))).collect();
        t
    }
}

/// The order of `keys` (positions, smallest key first). When each column's
/// largest id fits its share, the ids are packed into one `u128` per key
/// (each column only as wide as its largest id needs: a column that is
/// always empty, as `Tags` without dimensions, takes no bits) and sorted as integers.
fn sort_order(keys: &[Ids]) -> Vec<u32> {
    let mut max = [0u32; KEY_LEN];
    for k in keys {
        for (m, id) in max.iter_mut().zip(k) {
            *m = (*m).max(*id);
        }
    }
    let widths = max.map(|m| u32::BITS - m.leading_zeros());
    if widths.iter().sum::<u32>() > 128 {
        let mut perm: Vec<u32> = (0..keys.len() as u32).collect();
        perm.sort_unstable_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
        return perm;
    }
    let mut packed: Vec<(u128, u32)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let p = k.iter().zip(widths).fold(0u128, |acc, (id, w)| {
                acc.checked_shl(w).unwrap_or(0) | u128::from(*id)
            });
            (p, i as u32)
        })
        .collect();
    packed.sort_unstable_by_key(|x| x.0);
    packed.into_iter().map(|x| x.1).collect()
}

/// Reorder `keys` and `sums` in place so that position `k` holds what was at
/// `perm[k]` (cycle by cycle; `perm` is used up).
fn permute(perm: &mut [u32], keys: &mut [Ids], sums: &mut [GroupSums]) {
    const DONE: u32 = u32::MAX;
    for start in 0..perm.len() {
        if perm[start] == DONE {
            continue;
        }
        let (k0, s0) = (keys[start], sums[start]);
        let mut cur = start;
        loop {
            let next = perm[cur] as usize;
            perm[cur] = DONE;
            if next == start {
                keys[cur] = k0;
                sums[cur] = s0;
                break;
            }
            keys[cur] = keys[next];
            sums[cur] = sums[next];
            cur = next;
        }
    }
}

/// A period's finished groups, sorted by key.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Every string a key uses, sorted (ids are positions here).
    strings: Vec<String>,
    keys: Vec<Ids>,
    sums: Vec<GroupSums>,
    /// Exact remainders, by group position.
    spill: BTreeMap<u32, Spill>,
}

/// One finished group: its key and (through `Deref`) its [`GroupValues`].
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// The [`super::KEY_COLUMNS`] values (`""` for none).
    pub key: [&'a str; KEY_LEN],
    values: GroupValues<'a>,
}

impl<'a> std::ops::Deref for Group<'a> {
    type Target = GroupValues<'a>;
    fn deref(&self) -> &GroupValues<'a> {
        &self.values
    }
}

/// A finished group's sums, without its key ([`Groups::values`]: what a
/// column of sums reads, without resolving twelve strings a row).
#[derive(Debug, Clone, Copy)]
pub struct GroupValues<'a> {
    sums: &'a GroupSums,
    spill: Option<&'a Spill>,
}

impl GroupValues<'_> {
    pub fn rows(&self) -> u64 {
        self.sums.rows()
    }

    /// The exact value of a measure, `None` if no row had it.
    pub fn value(&self, m: Measure) -> Option<Money> {
        let i = m as usize;
        if (self.sums.present() | ALWAYS) & (1 << i) == 0 {
            return None;
        }
        let v = Money::new(self.sums.units[i], FIXED_SCALE);
        Some(
            match self.spill {
                Some(s) => v + s[i],
                None => v,
            }
            .normalize(),
        )
    }

    /// A measure in units of 1e-18, the output's DECIMAL(38,18) (rounded half
    /// away from zero beyond 18 decimals). `Ok(None)` if no row had it;
    /// `Err(value)` when the sum does not fit DECIMAL(38,18).
    pub fn units(&self, m: Measure) -> Result<Option<i128>, Money> {
        let i = m as usize;
        if (self.sums.present() | ALWAYS) & (1 << i) == 0 {
            return Ok(None);
        }
        match self.spill {
            None => Ok(Some(fixed_to_sum_units(self.sums.units[i]))),
            Some(_) => {
                let d = self.value(m).expect("present");
                to_sum_units_rounded(d).map(Some).ok_or(d)
            }
        }
    }

    /// The exact sums.
    pub fn sums(&self) -> Sums {
        Sums::from_measures(self.sums.rows(), |m| self.value(m))
    }
}

impl Groups {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The groups in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Group<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Group `i` in key order (panics past [`Groups::len`]).
    pub fn get(&self, i: usize) -> Group<'_> {
        Group {
            key: self.keys[i].map(|x| self.strings[x as usize].as_str()),
            values: self.values(i),
        }
    }

    /// The sums of group `i`.
    #[inline]
    pub fn values(&self, i: usize) -> GroupValues<'_> {
        let s = &self.sums[i];
        GroupValues {
            sums: s,
            spill: if s.spilled() {
                self.spill.get(&(i as u32))
            } else {
                None
            },
        }
    }

    /// The strings keys use, sorted (what [`Groups::ids`] index).
    pub fn strings(&self) -> &[String] {
        &self.strings
    }

    /// The key of group `i` as ids into [`Groups::strings`].
    pub fn ids(&self, i: usize) -> [u32; KEY_LEN] {
        self.keys[i]
    }

    /// The exact sum of every group.
    pub fn total(&self) -> Sums {
        let mut units = [0i128; MEASURES];
        let mut extra = [Money::ZERO; MEASURES];
        let mut rows = 0;
        let mut present = ALWAYS;
        for s in &self.sums {
            rows += s.rows();
            present |= s.present();
            // i64 terms: an i128 sum of fewer than 2^64 of them cannot overflow.
            for (u, x) in units.iter_mut().zip(s.units) {
                *u += i128::from(x);
            }
        }
        for s in self.spill.values() {
            for (e, x) in extra.iter_mut().zip(s) {
                *e += *x;
            }
        }
        Sums::from_measures(rows, |m| {
            let i = m as usize;
            (present & (1 << i) != 0).then(|| (fixed_sum(units[i]) + extra[i]).normalize())
        })
    }

    /// Merge another period's groups into these.
    pub fn merge(&mut self, o: &Groups) {
        let mut t = GroupTable::from(std::mem::take(self));
        t.merge(o);
        *self = t.finish();
    }
}

/// An `i128` count of 1e-12 as the exact decimal (integer and fraction apart beyond 28 digits).
fn fixed_sum(v: i128) -> Money {
    Money::try_from_i128_with_scale(v, FIXED_SCALE).unwrap_or_else(|_| {
        let p = 10i128.pow(FIXED_SCALE);
        Money::from_i128_with_scale(v / p, 0) + Money::from_i128_with_scale(v % p, FIXED_SCALE)
    })
}

/// Equal when the same keys have the same exact sums (however they were added).
impl PartialEq for Groups {
    fn eq(&self, o: &Groups) -> bool {
        self.len() == o.len()
            && self
                .iter()
                .zip(o.iter())
                .all(|(a, b)| a.key == b.key && a.sums() == b.sums())
    }
}
impl Eq for Groups {}

mod wire {
    //! Staged groups: the strings, then one varint-encoded record per group
    //! (ten ids, rows, flags, the present measures' units zigzagged), then the spill.
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Records are borrowed from the staged bytes where the format allows
    /// (MessagePack does): a part is not held twice while it is decoded.
    #[derive(Serialize, Deserialize)]
    struct Wire<'a> {
        strings: Vec<String>,
        groups: u64,
        #[serde(with = "serde_bytes", borrow)]
        records: std::borrow::Cow<'a, [u8]>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        spill: Vec<(u32, Vec<Money>)>,
    }

    fn put_u(out: &mut Vec<u8>, mut v: u128) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn get_u(b: &[u8], at: &mut usize) -> Option<u128> {
        let mut v = 0u128;
        for shift in (0..128).step_by(7) {
            let x = *b.get(*at)?;
            *at += 1;
            v |= u128::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    impl Serialize for Groups {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut records = Vec::with_capacity(self.keys.len() * 64);
            for (k, g) in self.keys.iter().zip(&self.sums) {
                for id in k {
                    put_u(&mut records, u128::from(*id));
                }
                put_u(&mut records, u128::from(g.rows()));
                records.push(g.present());
                records.push(u8::from(g.spilled()));
                for (i, u) in g.units.iter().enumerate() {
                    if (g.present() | ALWAYS) & (1 << i) != 0 {
                        put_u(&mut records, u128::from(((u << 1) ^ (u >> 63)) as u64));
                    }
                }
            }
            Wire {
                strings: self.strings.clone(),
                groups: self.keys.len() as u64,
                records: records.into(),
                spill: self.spill.iter().map(|(g, v)| (*g, v.to_vec())).collect(),
            }
            .serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for Groups {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let w = Wire::deserialize(d)?;
            let bad = |what: &str| D::Error::custom(format!("staged groups: {what}"));
            let n = usize::try_from(w.groups).map_err(|_| bad("group count"))?;
            let mut keys = Vec::with_capacity(n.min(w.records.len() / 12));
            let mut sums = Vec::with_capacity(keys.capacity());
            let (b, mut at) = (&w.records, 0usize);
            let strings = w.strings.len() as u128;
            for _ in 0..n {
                let mut k = [0u32; KEY_LEN];
                for x in &mut k {
                    let id = get_u(b, &mut at).filter(|id| *id < strings);
                    *x = id.ok_or_else(|| bad("a key id is out of range"))? as u32;
                }
                let rows = get_u(b, &mut at).ok_or_else(|| bad("truncated"))?;
                let (present, spilled) = match b.get(at..at + 2) {
                    Some([p, s]) if *s <= 1 => (*p, *s == 1),
                    _ => return Err(bad("truncated")),
                };
                at += 2;
                let rows = u64::try_from(rows)
                    .ok()
                    .filter(|r| *r <= MAX_ROWS)
                    .ok_or_else(|| bad("row count"))?;
                let mut g = GroupSums {
                    meta: rows << ROWS_SHIFT
                        | u64::from(present)
                        | if spilled { SPILLED } else { 0 },
                    units: [0; MEASURES],
                };
                for i in 0..MEASURES {
                    if (present | ALWAYS) & (1 << i) != 0 {
                        let z = get_u(b, &mut at)
                            .and_then(|z| u64::try_from(z).ok())
                            .ok_or_else(|| bad("truncated"))?;
                        g.units[i] = ((z >> 1) as i64) ^ -((z & 1) as i64);
                    }
                }
                keys.push(k);
                sums.push(g);
            }
            if at != b.len() {
                return Err(bad("trailing bytes"));
            }
            let mut spill = BTreeMap::new();
            for (g, v) in w.spill {
                let s: Spill = v.try_into().map_err(|_| bad("spill width"))?;
                if g as usize >= n || !sums[g as usize].spilled() {
                    return Err(bad("spill of an unknown group"));
                }
                spill.insert(g, s);
            }
            Ok(Groups {
                strings: w.strings,
                keys,
                sums,
                spill,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes_eq` agrees with `==` at every length up to past the inline
    /// cases, for equal strings and for strings differing at any one position.
    #[test]
    fn bytes_eq_is_slice_equality() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(bytes_eq(&a, &a.clone()), "len {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!bytes_eq(&a, &b), "len {n}, differing at {at}");
            }
            let mut longer = a.clone();
            longer.push(b'x');
            assert!(!bytes_eq(&a, &longer));
        }
    }

    /// Interning: the same bytes give the same id across index growth, ids
    /// are dense in first-seen order.
    #[test]
    fn strings_intern_once() {
        let mut s = Strings::default();
        let words: Vec<String> = (0..5000).map(|i| format!("usage-type-{i}")).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(s.id(w.as_bytes()), i as u32);
        }
        for (i, w) in words.iter().enumerate().rev() {
            assert_eq!(s.id(w.as_bytes()), i as u32);
        }
        assert_eq!(s.values.len(), 5000);
    }

    /// Rows added by `add_fixed_later` (in batches, the last one partial;
    /// keys repeated within a batch, new keys, sums that overflow `i64`)
    /// give the same groups as the same rows added one by one; so do rows
    /// of the same keys added partly at once and partly later (the CSV path
    /// with some numbers not plain), and a merge into a table with rows
    /// still waiting. `finish` and `rows_per_label` each take the waiting
    /// rows themselves.
    #[test]
    fn rows_added_later_sum_as_rows_added_at_once() {
        let (mut now, mut later) = (GroupTable::default(), GroupTable::default());
        let (mut mixed, mut merged) = (GroupTable::default(), GroupTable::default());
        let mut first = None;
        let day = |i: u64| format!("2026-11-{:02}", i % 3 + 1);
        for i in 0..(PENDING as u64 * 5 + 7) {
            // Five keys in a row share one group, so a batch repeats keys;
            // every row of group 0 carries an amount near i64::MAX / 3.
            let group = (i / 5) % 23;
            let (d, acct) = (day(group), format!("{:012}", group));
            let parts: [&[u8]; KEY_LEN] = {
                let mut p: [&[u8]; KEY_LEN] = [b""; KEY_LEN];
                p[0] = d.as_bytes();
                p[2] = acct.as_bytes();
                p
            };
            let big = if group == 0 { i64::MAX / 3 } else { i as i64 };
            let m = MeasuresOf {
                billed: big,
                effective: -(i as i64),
                list: 7,
                contracted: (i % 2 == 0).then_some(1),
                unblended: None,
                net_unblended: None,
                blended: Some(2),
                usage_amount: 1_000_000_000_000,
            };
            let g = now.group(parts);
            now.add_fixed(g, &m);
            let ids = later.ids(parts);
            later.add_fixed_later(ids, &m);
            if i % 3 == 0 {
                let g = mixed.group(parts);
                mixed.add_fixed(g, &m);
            } else {
                let ids = mixed.ids(parts);
                mixed.add_fixed_later(ids, &m);
            }
            // The first 40 rows go through a finished table, merged in when
            // 31 later rows are waiting.
            let ids = merged.ids(parts);
            merged.add_fixed_later(ids, &m);
            if i == 39 {
                first = Some(std::mem::take(&mut merged).finish());
            }
            if i == 70 {
                assert_eq!(merged.pending.len(), 31);
                merged.merge(&first.take().expect("finished at row 39"));
            }
        }
        let labels = now
            .rows_per_label()
            .into_iter()
            .map(|(l, n)| (l.to_vec(), n));
        let labels: Vec<_> = labels.collect();
        let later_labels = later
            .rows_per_label()
            .into_iter()
            .map(|(l, n)| (l.to_vec(), n));
        assert_eq!(later_labels.collect::<Vec<_>>(), labels);
        let now = now.finish();
        assert!(!now.spill.is_empty(), "group 0's billed sum left i64");
        assert_eq!(now.len(), 23);
        for table in [later, mixed, merged] {
            // `later`: flushed by `rows_per_label`; the others by `finish`.
            let got = table.finish();
            assert_eq!(got.len(), now.len());
            for i in 0..now.len() {
                assert_eq!(got.get(i).key, now.get(i).key);
                assert_eq!(got.get(i).sums(), now.get(i).sums());
            }
            assert_eq!(got.total(), now.total());
        }
    }
}
