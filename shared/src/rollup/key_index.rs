//! The index from a group key's hash to its group id.
//!
//! At hundreds of thousands of groups the index and the keys are far larger
//! than the caches, and a lookup's time is its dependent cache misses. A
//! general hash table (hashbrown's `HashTable<u32>`) takes three: its control
//! bytes, then the bucket with the id, then the key. Here each 4-byte slot
//! holds the id and, in the bits the id does not need, a tag from the hash,
//! so a lookup takes two: the slot, then the key it names (a different key
//! with the same tag aside, one in thousands at a million slots). Linear
//! probing keeps a run of slots in one cache line, and the index is smaller
//! than hashbrown's (4 bytes a slot against 5).

/// Slots filled at most to 3/4 before the index doubles.
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;
const MIN_SLOTS: usize = 16;
/// 2^31 slots hold 1.6 billion ids (a period's groups never come near).
const MAX_SLOTS: usize = 1 << 31;

/// Where a key is, or where it would go.
pub(super) enum Probe {
    Found(u32),
    /// The empty slot that ends the key's probe run.
    Vacant(usize),
}

/// Open addressing, linear probing over `2^b` slots. A slot is `0` (empty)
/// or `tag << b | (id + 1)`: ids stay below the slot count (the load limit),
/// so they need `b` bits, and the tag is the hash's top `32 - b` bits. A
/// key's run starts at its hash's low `b` bits.
#[derive(Default)]
pub(super) struct KeyIndex {
    slots: Vec<u32>,
    /// `b`: log2 of the slot count.
    bits: u32,
    len: usize,
}

impl KeyIndex {
    /// An index that holds `n` ids without growing.
    pub(super) fn with_capacity(n: usize) -> Self {
        let mut index = KeyIndex::default();
        index.resize(slots_for(n));
        index
    }

    fn resize(&mut self, slots: usize) {
        assert!(slots <= MAX_SLOTS, "a key index of more than 2^31 slots");
        self.slots = vec![0; slots];
        self.bits = slots.trailing_zeros();
    }

    #[inline]
    fn tag(&self, hash: u64) -> u32 {
        // The top 32 - b bits (none at b = 32, which MAX_SLOTS rules out).
        (hash >> (32 + self.bits)) as u32
    }

    /// The id whose key `is_key` accepts, among those stored under `hash`.
    #[inline]
    pub(super) fn probe(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Probe {
        if self.slots.is_empty() {
            return Probe::Vacant(0);
        }
        let mask = self.slots.len() - 1;
        let tag = self.tag(hash);
        let mut pos = hash as usize & mask;
        loop {
            let slot = self.slots[pos];
            if slot == 0 {
                return Probe::Vacant(pos);
            }
            if slot >> self.bits == tag {
                let id = (slot & mask as u32) - 1;
                if is_key(id) {
                    return Probe::Found(id);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// The id in the first slot of `hash`'s run when its tag is `hash`'s:
    /// most likely the key's, to load ahead (one load, no key check).
    #[inline]
    pub(super) fn likely(&self, hash: u64) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let slot = self.slots[hash as usize & mask];
        (slot != 0 && slot >> self.bits == self.tag(hash)).then(|| (slot & mask as u32) - 1)
    }

    /// Store `id` under `hash` at `vacant` (what [`KeyIndex::probe`] of the
    /// same hash returned, with no insert between). Ids are stored in order
    /// from 0 (a group's id is its place in the table's keys); growing takes
    /// the hash of every id stored, from `hash_of`.
    #[inline]
    pub(super) fn insert_at(
        &mut self,
        vacant: usize,
        hash: u64,
        id: u32,
        hash_of: impl Fn(u32) -> u64,
    ) {
        debug_assert_eq!(id as usize, self.len, "ids are stored in order from 0");
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow(hash_of);
            self.place(hash, id);
        } else {
            debug_assert_eq!(self.slots[vacant], 0);
            self.slots[vacant] = self.slot(hash, id);
        }
        self.len += 1;
    }

    /// Store `id` under `hash` (a key not in the index yet).
    pub(super) fn insert(&mut self, hash: u64, id: u32, hash_of: impl Fn(u32) -> u64) {
        match self.probe(hash, |_| false) {
            Probe::Vacant(at) => self.insert_at(at, hash, id, hash_of),
            Probe::Found(_) => unreachable!("a probe that accepts no key finds none"),
        }
    }

    #[inline]
    fn slot(&self, hash: u64, id: u32) -> u32 {
        debug_assert!((id as usize) < self.slots.len() - 1);
        self.tag(hash) << self.bits | (id + 1)
    }

    /// Double the slots and place every id again, in id order: the keys
    /// `hash_of` reads are then read in the order they are stored.
    #[cold]
    fn grow(&mut self, hash_of: impl Fn(u32) -> u64) {
        drop(std::mem::take(&mut self.slots));
        self.resize(slots_for(self.len + 1));
        for id in 0..self.len as u32 {
            self.place(hash_of(id), id);
        }
    }

    /// Put `id` in the first empty slot of its run.
    fn place(&mut self, hash: u64, id: u32) {
        let mask = self.slots.len() - 1;
        let mut pos = hash as usize & mask;
        while self.slots[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        self.slots[pos] = self.slot(hash, id);
    }
}

/// Slots (a power of two) for `n` ids within the load limit.
fn slots_for(n: usize) -> usize {
    (n * MAX_LOAD_DEN)
        .div_ceil(MAX_LOAD_NUM)
        .next_power_of_two()
        .max(MIN_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are found under their hashes across growth, with colliding tags
    /// told apart by the key check and a missing key reported vacant.
    #[test]
    fn finds_every_id_across_growth_and_collisions() {
        let mut index = KeyIndex::default();
        assert_eq!(index.likely(7), None);
        // Keys k with the same k / 3 have the same hash: only the key check
        // tells them apart. Keys with k % 3 == 2 are left out (asked for at
        // the end: their probes pass two keys of their hash).
        let hash_of = |k: u32| u64::from(k / 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let keys: Vec<u32> = (0..30_000).filter(|k| k % 3 != 2).collect();
        for (id, k) in keys.iter().enumerate() {
            let h = hash_of(*k);
            match index.probe(h, |i| keys[i as usize] == *k) {
                Probe::Vacant(at) => {
                    index.insert_at(at, h, id as u32, |i| hash_of(keys[i as usize]))
                }
                Probe::Found(i) => panic!("key {k} found as {i} before it was added"),
            }
            if id == 0 {
                // Alone in the index: in the first slot of its run.
                assert_eq!(index.likely(h), Some(0));
            }
        }
        for (id, k) in keys.iter().enumerate() {
            match index.probe(hash_of(*k), |i| keys[i as usize] == *k) {
                Probe::Found(i) => assert_eq!(i as usize, id),
                Probe::Vacant(_) => panic!("key {k} lost"),
            }
            // What `likely` names is a key of the same tag, or nothing.
            if let Some(i) = index.likely(hash_of(*k)) {
                assert_eq!(index.tag(hash_of(keys[i as usize])), index.tag(hash_of(*k)));
            }
        }
        for missing in [2, 5, 29_999] {
            assert!(matches!(
                index.probe(hash_of(missing), |i| keys[i as usize] == missing),
                Probe::Vacant(_)
            ));
        }
        assert!(index.slots.len() * 3 >= keys.len() * 4);
        assert_eq!(index.slots.len(), 1 << index.bits);
        let rebuilt = {
            let mut r = KeyIndex::with_capacity(keys.len());
            let before = r.slots.len();
            for (id, k) in keys.iter().enumerate() {
                r.insert(hash_of(*k), id as u32, |i| hash_of(keys[i as usize]));
            }
            assert_eq!(
                r.slots.len(),
                before,
                "with_capacity holds n without growing"
            );
            r
        };
        for (id, k) in keys.iter().enumerate() {
            assert!(
                matches!(rebuilt.probe(hash_of(*k), |i| keys[i as usize] == *k), Probe::Found(i) if i as usize == id)
            );
        }
    }
}
