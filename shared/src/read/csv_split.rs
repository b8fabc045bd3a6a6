//! The CSV record splitter: finds each record and the bounds of only the
//! fields curlew reads.
//!
//! A CUR row has 100 to several thousand columns, of which a rollup reads
//! about 25. The splitter looks at 64 bytes at a time: SIMD compares (the
//! `wide` crate: SSE2 on x86-64, NEON on arm64) give masks of `,`, `"` and
//! `\n`; a prefix XOR of the quote mask marks the bytes inside quoted fields,
//! so separators inside quotes drop out without a state machine. A block where
//! no record ends and no wanted field ends is passed with one popcount; only
//! the other blocks are walked separator by separator.
//!
//! Quoting follows RFC 4180 as AWS writes it: a field may be quoted, `""`
//! inside quotes is one quote, and quoted fields may hold `,` and line breaks.
//! A record that holds a doubled quote is flagged ([`Record::escaped`]) for
//! the caller to unescape; its bounds are still the raw ones.

use super::decompress::{ChunkRead, HEADROOM};
use std::io;

/// Bytes looked at together.
const BLOCK: usize = 64;

/// Masks of one block: bit `i` is byte `base + i`.
#[derive(Debug, Clone, Copy)]
struct Block {
    base: usize,
    /// `,` and `\n` outside quotes, not yet consumed.
    seps: u64,
    /// `\n` outside quotes (record ends), not yet consumed.
    ends: u64,
    /// `\n` inside quotes (line breaks within a record), not yet counted.
    quoted_newlines: u64,
    /// The second quote of each `""` inside a quoted field, not yet seen.
    escapes: u64,
}

/// One record, borrowed from the splitter's buffer.
#[derive(Debug)]
pub(super) struct Record<'a> {
    /// The record's bytes without its line break (`\n` or `\r\n`).
    pub raw: &'a [u8],
    /// Fields in the record (separators outside quotes, plus one).
    pub fields: usize,
    /// Line breaks inside its quoted fields.
    pub newlines: u64,
    /// Whether a quoted field holds a doubled quote (`""`), to unescape.
    pub escaped: bool,
    /// Per separator of the record, its offset; only those that bound a
    /// wanted field are right (the others may be stale).
    seps: &'a [u32],
    wanted: &'a [bool],
}

impl<'a> Record<'a> {
    /// Field `i`, raw (quotes and all). `i` must be a wanted column.
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        debug_assert!(self.wanted.get(i).copied().unwrap_or(false) || i >= self.fields);
        if i >= self.fields {
            return b"";
        }
        let start = match i {
            0 => 0,
            _ => self.seps[i - 1] as usize + 1,
        };
        // The last field ends at the line break, or at a `\r` before it.
        let end = (self.seps[i] as usize).min(self.raw.len());
        &self.raw[start..end]
    }

    /// Field `i` without its surrounding quotes (doubled quotes left as they are).
    #[inline]
    pub fn unquote(&self, i: usize) -> &'a [u8] {
        unquoted(self.get(i))
    }
}

/// A quoted cell's contents; any other cell as it is.
#[inline]
pub(super) fn unquoted(cell: &[u8]) -> &[u8] {
    match cell {
        [b'"', inner @ .., b'"'] => inner,
        _ => cell,
    }
}

/// Every field of a raw record (quotes and all), scalar: for the rare paths
/// (a header, a record over a cap, a record to unescape).
pub(super) fn raw_fields(raw: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut inside = false;
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'"' => inside = !inside,
            b',' if !inside => {
                fields.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(&raw[start..]);
    fields
}

/// A raw field's value: unquoted, and each `""` inside quotes made one `"`.
pub(super) fn unescaped(cell: &[u8]) -> Vec<u8> {
    match cell {
        [b'"', inner @ .., b'"'] => {
            let mut out = Vec::with_capacity(inner.len());
            let mut bytes = inner.iter().peekable();
            while let Some(&b) = bytes.next() {
                out.push(b);
                if b == b'"' && bytes.peek() == Some(&&b'"') {
                    bytes.next();
                }
            }
            out
        }
        _ => cell.to_vec(),
    }
}

/// Splits a byte stream into records, with the bounds of wanted fields.
///
/// It scans the stream's chunks where they are: a record that a chunk cuts
/// is finished by copying its start into the next chunk's headroom, just
/// before the new bytes (a record longer than the headroom is joined in a
/// buffer of its own).
pub(super) struct Splitter<R> {
    inner: R,
    /// The chunk being scanned: bytes `..len` (the first bytes, before the
    /// unfinished record carried over, are not read).
    buf: Vec<u8>,
    /// The chunk before, handed back to the stream for reuse.
    spare: Vec<u8>,
    len: usize,
    eof: bool,
    /// Stream offset of `buf[0]` (wrapping: the headroom of the first chunk
    /// lies before the stream's start).
    offset: u64,
    /// Where the next record starts in `buf`.
    start: usize,
    /// The next block to load, and the block being walked.
    next_base: usize,
    block: Option<Block>,
    /// All ones when the previous block ended inside quotes.
    inside_carry: u64,
    /// Bit 63 of the previous block's quote mask, at bit 0.
    quote_carry: u64,
    /// Per column: whether its bounds are kept.
    wanted: Vec<bool>,
    /// Per column `i`: the first wanted column at or after `i` (the last
    /// entry, for every column past the wanted ones, is `usize::MAX`).
    next_wanted: Vec<usize>,
    /// The record's separator offsets (see [`Record`]).
    seps: Vec<u32>,
}

/// What one scan found.
enum Scanned {
    /// A record ending (exclusive) at `end`, its line break at `end` too.
    Record {
        end: usize,
        fields: usize,
        newlines: u64,
        escaped: bool,
    },
    /// The buffer ends inside the record.
    NeedMore,
    /// No bytes left.
    Done,
}

impl<R: ChunkRead> Splitter<R> {
    /// A splitter over `inner`'s chunks. No column is wanted until [`Self::want`].
    pub fn new(inner: R) -> Self {
        Splitter {
            inner,
            buf: Vec::new(),
            spare: Vec::new(),
            len: 0,
            eof: false,
            offset: 0,
            start: 0,
            next_base: 0,
            block: None,
            inside_carry: 0,
            quote_carry: 0,
            wanted: Vec::new(),
            next_wanted: vec![usize::MAX],
            seps: Vec::new(),
        }
    }

    /// Keep the bounds of these columns (indices into the record).
    pub fn want(&mut self, columns: impl IntoIterator<Item = usize>) {
        for c in columns {
            if c >= self.wanted.len() {
                self.wanted.resize(c + 1, false);
            }
            self.wanted[c] = true;
        }
        let n = self.wanted.len();
        self.next_wanted = vec![usize::MAX; n + 1];
        for i in (0..n).rev() {
            self.next_wanted[i] = if self.wanted[i] {
                i
            } else {
                self.next_wanted[i + 1]
            };
        }
    }

    /// Stream offset where the next record starts.
    pub fn position(&self) -> u64 {
        self.offset.wrapping_add(self.start as u64)
    }

    /// The next record, or `None` at the end of the stream. A blank line is a
    /// record with empty `raw`.
    pub fn next_record(&mut self) -> io::Result<Option<Record<'_>>> {
        loop {
            match self.scan() {
                Scanned::Record {
                    end,
                    fields,
                    newlines,
                    escaped,
                } => {
                    let start = self.start;
                    self.start = end + 1;
                    let mut raw_end = end;
                    if raw_end > start && self.buf[raw_end - 1] == b'\r' {
                        raw_end -= 1;
                    }
                    return Ok(Some(Record {
                        raw: &self.buf[start..raw_end],
                        fields,
                        newlines,
                        escaped,
                        seps: &self.seps,
                        wanted: &self.wanted,
                    }));
                }
                Scanned::Done => return Ok(None),
                Scanned::NeedMore => self.refill()?,
            }
        }
    }

    /// Takes the stream's next chunk, with the unfinished record (bytes
    /// `start..len`) carried over in front of it.
    fn refill(&mut self) -> io::Result<()> {
        let Some(chunk) = self.inner.next_chunk(std::mem::take(&mut self.spare))? else {
            // The unfinished record is the last: scanned again to the end.
            self.eof = true;
            self.rescan_from(self.start);
            return Ok(());
        };
        let carried = &self.buf[self.start..self.len];
        let record_at = self.position();
        let (chunk, start) = if carried.len() <= HEADROOM {
            let mut chunk = chunk;
            let at = HEADROOM - carried.len();
            chunk[at..HEADROOM].copy_from_slice(carried);
            (chunk, at)
        } else {
            let mut joined = Vec::with_capacity(carried.len() + chunk.len() - HEADROOM);
            joined.extend_from_slice(carried);
            joined.extend_from_slice(&chunk[HEADROOM..]);
            (joined, 0)
        };
        self.spare = std::mem::replace(&mut self.buf, chunk);
        self.len = self.buf.len();
        self.start = start;
        self.offset = record_at.wrapping_sub(start as u64);
        self.rescan_from(start);
        Ok(())
    }

    /// Blocks are loaded again from `start`, a record's start (outside quotes).
    fn rescan_from(&mut self, start: usize) {
        self.next_base = start;
        self.block = None;
        self.inside_carry = 0;
        self.quote_carry = 0;
    }

    /// The masks of the block at `base` (zero past `len`).
    fn load(&mut self, base: usize) -> Block {
        let mut padded = [0u8; BLOCK];
        let bytes: &[u8; BLOCK] = match self.buf[base..self.len].first_chunk() {
            Some(full) => full,
            None => {
                padded[..self.len - base].copy_from_slice(&self.buf[base..self.len]);
                &padded
            }
        };
        let (commas, quotes, newlines) = masks(bytes);
        let inside = prefix_xor(quotes) ^ self.inside_carry;
        self.inside_carry = 0u64.wrapping_sub(inside >> 63);
        let escapes = quotes & (quotes << 1 | self.quote_carry) & inside;
        self.quote_carry = quotes >> 63;
        let ends = newlines & !inside;
        Block {
            base,
            seps: (commas & !inside) | ends,
            ends,
            quoted_newlines: newlines & inside,
            escapes,
        }
    }

    /// Finds the end of the record starting at `self.start`, keeping the
    /// positions of the separators that bound its wanted fields.
    fn scan(&mut self) -> Scanned {
        let start = self.start;
        // Separators seen in the record so far: the index of the open field.
        let mut field = 0usize;
        let mut newlines = 0u64;
        let mut escaped = false;
        let last_wanted = self.next_wanted.len() - 1;
        loop {
            let mut block = match self.block {
                Some(b) => b,
                None if self.next_base < self.len => {
                    let b = self.load(self.next_base);
                    self.next_base += BLOCK;
                    b
                }
                None => {
                    if !self.eof {
                        return Scanned::NeedMore;
                    }
                    if start >= self.len {
                        return Scanned::Done;
                    }
                    // The last record has no line break.
                    self.room(field + 1);
                    self.seps[field] = (self.len - start) as u32;
                    return Scanned::Record {
                        end: self.len,
                        fields: field + 1,
                        newlines,
                        escaped,
                    };
                }
            };
            let partial = block.base + BLOCK > self.len;
            self.room(field + BLOCK);
            if block.ends != 0 {
                let end = block.ends.trailing_zeros() as usize;
                let upto = u64::MAX >> (63 - end);
                field = self.walk(block.seps & upto, block.base.wrapping_sub(start), field);
                if block.quoted_newlines & upto != 0 {
                    newlines += u64::from((block.quoted_newlines & upto).count_ones());
                }
                escaped |= block.escapes & upto != 0;
                block.seps &= !upto;
                block.ends &= !upto;
                block.quoted_newlines &= !upto;
                block.escapes &= !upto;
                self.block = Some(block);
                return Scanned::Record {
                    end: block.base + end,
                    fields: field,
                    newlines,
                    escaped,
                };
            }
            let n = block.seps.count_ones() as usize;
            if self.next_wanted[field.min(last_wanted)] >= field + n {
                // Fields `field..field + n` end here and none is wanted:
                // only the last separator can bound a wanted field (the next).
                if n > 0 {
                    let last = BLOCK - 1 - block.seps.leading_zeros() as usize;
                    self.seps[field + n - 1] = (block.base + last - start) as u32;
                }
                field += n;
            } else {
                field = self.walk(block.seps, block.base.wrapping_sub(start), field);
            }
            if block.quoted_newlines != 0 {
                newlines += u64::from(block.quoted_newlines.count_ones());
            }
            escaped |= block.escapes != 0;
            self.block = None;
            if partial && !self.eof {
                return Scanned::NeedMore;
            }
        }
    }

    /// Records the separators in `seps` (bits of the block at record offset
    /// `base`, which wraps below zero when the record starts inside the
    /// block: every bit left is at or after its start) from index `field`
    /// on; returns the index after the last.
    #[inline]
    fn walk(&mut self, mut seps: u64, base: usize, mut field: usize) -> usize {
        while seps != 0 {
            self.seps[field] = base.wrapping_add(seps.trailing_zeros() as usize) as u32;
            field += 1;
            seps &= seps - 1;
        }
        field
    }

    /// Makes room for separator indices below `n`.
    #[inline]
    fn room(&mut self, n: usize) {
        if self.seps.len() < n {
            self.seps.resize(n.next_power_of_two(), 0);
        }
    }
}

/// Masks of `,`, `"` and `\n` in a block.
#[inline(always)]
fn masks(bytes: &[u8; BLOCK]) -> (u64, u64, u64) {
    let comma = wide::u8x16::splat(b',');
    let quote = wide::u8x16::splat(b'"');
    let newline = wide::u8x16::splat(b'\n');
    let (mut c, mut q, mut n) = (0u64, 0u64, 0u64);
    for (i, lane) in bytes.chunks_exact(16).enumerate() {
        let v = wide::u8x16::new(lane.try_into().expect("16 bytes"));
        let bits = |splat: wide::u8x16| u64::from(v.cmp_eq(splat).move_mask() as u16) << (16 * i);
        c |= bits(comma);
        q |= bits(quote);
        n |= bits(newline);
    }
    (c, q, n)
}

/// Bit `i` set when an odd number of bits at or below `i` are set in `x`.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(test)]
mod tests {
    use super::super::decompress::Plain;
    use super::*;
    use std::io::Read;

    /// Hands out at most `step` bytes a read, so records span refills.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// (raw, fields, newlines, escaped, wanted cells unquoted) per record.
    type Split = Vec<(Vec<u8>, usize, u64, bool, Vec<Vec<u8>>)>;

    fn split(data: &[u8], wanted: &[usize], step: usize) -> Split {
        let mut s = Splitter::new(Plain::with_chunk(
            Trickle {
                data,
                step: step.min(13),
            },
            step,
        ));
        s.want(wanted.iter().copied());
        let mut out = Vec::new();
        while let Some(r) = s.next_record().unwrap() {
            let cells = wanted.iter().map(|&i| r.unquote(i).to_vec()).collect();
            out.push((r.raw.to_vec(), r.fields, r.newlines, r.escaped, cells));
        }
        out
    }

    /// A deterministic CSV of `rows` records: quoted fields with commas, line
    /// breaks and doubled quotes, empty fields, CRLF and LF endings, and
    /// fields long enough to span blocks.
    fn sample(rows: usize, columns: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut out = Vec::new();
        for _ in 0..rows {
            for c in 0..columns {
                if c > 0 {
                    out.push(b',');
                }
                match rng.u8(0..8) {
                    0 => {}
                    1 => out.extend_from_slice(b"\"Amazon Web Services, Inc.\""),
                    2 => out.extend_from_slice(b"\"line one\nline two\""),
                    3 => out.extend_from_slice(b"\"say \"\"hi\"\", ok\""),
                    4 => out.extend_from_slice(b"\"\""),
                    5 => out.extend(std::iter::repeat_n(b'x', rng.usize(60..200))),
                    _ => out.extend_from_slice(rng.u64(..).to_string().as_bytes()),
                }
            }
            out.extend_from_slice(if rng.bool() { b"\r\n" } else { b"\n" });
        }
        out
    }

    /// The `csv` crate's reading of the same bytes: fields unescaped.
    fn reference(data: &[u8]) -> Vec<Vec<Vec<u8>>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(data)
            .byte_records()
            .map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect())
            .collect()
    }

    #[test]
    fn records_and_wanted_fields_match_the_csv_crate_across_refills() {
        let columns = 40;
        let wanted = [0, 1, 7, 8, 20, 38, 39];
        for seed in 0..6 {
            let data = sample(300, columns, seed);
            let expected = reference(&data);
            for step in [5, 64, 333, 1 << 20] {
                let got = split(&data, &wanted, step);
                assert_eq!(got.len(), expected.len(), "seed {seed}, step {step}");
                for (n, ((raw, fields, newlines, escaped, cells), want)) in
                    got.iter().zip(&expected).enumerate()
                {
                    let at = format!("seed {seed}, step {step}, record {n}");
                    assert_eq!(*fields, want.len(), "{at}");
                    let all = raw_fields(raw);
                    assert_eq!(all.len(), want.len(), "{at}");
                    for (cell, expected) in all.iter().zip(want) {
                        assert_eq!(&unescaped(cell), expected, "{at}");
                    }
                    let has_escape = all
                        .iter()
                        .any(|c| unquoted(c).windows(2).any(|w| w == b"\"\""));
                    assert_eq!(*escaped, has_escape, "{at}");
                    let breaks = raw.iter().filter(|&&b| b == b'\n').count() as u64;
                    assert_eq!(*newlines, breaks, "{at}");
                    for (&i, cell) in wanted.iter().zip(cells) {
                        assert_eq!(cell.as_slice(), unquoted(all[i]), "{at}, column {i}");
                        if !*escaped {
                            assert_eq!(cell, &want[i], "{at}, column {i}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn blank_lines_last_record_without_break_and_positions() {
        let data = b"a,b\n\n\r\n\"x,\"\"y\",z\nlast,one";
        let got = split(data, &[0, 1], 3);
        let raws: Vec<&[u8]> = got.iter().map(|r| r.0.as_slice()).collect();
        assert_eq!(raws, [&b"a,b"[..], b"", b"", b"\"x,\"\"y\",z", b"last,one"]);
        assert!(got[3].3, "a doubled quote is flagged");
        assert_eq!(got[3].4, [b"x,\"\"y".to_vec(), b"z".to_vec()]);
        assert_eq!(got[4].4, [b"last".to_vec(), b"one".to_vec()]);

        let mut s = Splitter::new(Plain::with_chunk(&data[..], 5));
        s.want([1]);
        assert_eq!(s.position(), 0);
        s.next_record().unwrap();
        assert_eq!(s.position(), 4);
        for _ in 0..3 {
            s.next_record().unwrap();
        }
        assert_eq!(s.position(), 17, "the start of the last record");
        assert_eq!(s.next_record().unwrap().unwrap().unquote(1), b"one");
        assert!(s.next_record().unwrap().is_none());
        assert!(Splitter::new(Plain::new(&b""[..]))
            .next_record()
            .unwrap()
            .is_none());
    }

    /// A record longer than a chunk's headroom is joined in a buffer of its
    /// own, over as many chunks as it spans.
    #[test]
    fn a_record_longer_than_the_headroom_is_joined() {
        let long = "y".repeat(HEADROOM * 3 + 5);
        let data = format!("a,\"{long}\",c\nd,e,f\n");
        for step in [1000, HEADROOM, 1 << 20] {
            let got = split(data.as_bytes(), &[1, 2], step);
            assert_eq!(got[0].4, [long.as_bytes().to_vec(), b"c".to_vec()]);
            assert_eq!(got[1].4, [b"e".to_vec(), b"f".to_vec()]);
        }
    }
}
