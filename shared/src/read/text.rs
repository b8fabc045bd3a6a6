//! CSV billing files: header -> dialect -> columns, then one borrowed record at a time.
//!
//! The [`CsvLimits`] are enforced twice: as bytes arrive ([`Guard`], so a
//! record too large never gets buffered whole) and on each complete record
//! (exact sizes, and the column).

use super::csv_split::{raw_fields, unescaped, Record, Splitter};
use super::decompress::{ChunkRead, DataStream, HEADROOM};
use super::error::{classify_io, escaped, quoted, Location, ReadError, ReadErrorKind};
use super::items::{BadField, Normaliser, RowAccess, RowSink};
use super::{CsvLimits, FileReport};
use crate::fields::{display_name, Field};
use crate::money::{parse_fixed, parse_money, BadNumber, Fixed, Money};
use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The most the CSV reader reads ahead of the record it parses: one chunk.
const READ_BUFFER: usize = 1 << 20;

/// Which cap the [`Guard`] saw exceeded in the record being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Exceeded {
    #[error("a field is over the CSV field cap")]
    Field,
    #[error("a record is over the CSV record cap")]
    Record,
    #[error("a record has more fields than the CSV cap")]
    Fields,
}

/// Sits between the decompressed stream and the CSV reader and fails the read
/// as soon as the record being parsed is certain to be over a cap. The CSV
/// reader buffers a record that spans its buffer in full; without this, one
/// giant field is held whole in memory. The checks are per read (about
/// 1 MiB), not per byte:
///
/// - a run of more than `max_field_bytes` + [`READ_BUFFER`] without `,` or
///   `\n` is one field over the cap (quoted commas and line breaks only
///   shorten runs);
/// - more than `max_record_bytes` + [`READ_BUFFER`] bytes delivered since the
///   last complete record means the record being parsed is over the cap;
/// - once the record being parsed is over `max_field_bytes` (never in a real
///   file), its commas are counted too, so the reader's list of field
///   positions (8 bytes a field) stays bounded as well.
struct Guard<R> {
    inner: R,
    limits: CsvLimits,
    delivered: u64,
    /// Bytes since the last `,` or `\n` delivered.
    run: u64,
    /// Stream offset where the record being parsed starts; set by the parse loop.
    record_start: Rc<Cell<u64>>,
    /// Commas counted in the record that starts at `counted_for`.
    commas: u64,
    counted_for: u64,
}

impl<R: Read> Guard<R> {
    /// The longest run without `,` or `\n` let through: a field up to the cap
    /// plus [`READ_BUFFER`] is left to the complete record's check, which names
    /// its column.
    fn max_run(&self) -> u64 {
        (self.limits.max_field_bytes + READ_BUFFER) as u64
    }

    fn check(&mut self, chunk: &[u8]) -> Result<(), Exceeded> {
        let max_field = self.limits.max_field_bytes as u64;
        let max_run = self.max_run();
        match memchr::memchr2(b',', b'\n', chunk) {
            None => self.run += chunk.len() as u64,
            Some(first) => {
                if self.run + first as u64 > max_run {
                    return Err(Exceeded::Field);
                }
                // Runs inside this chunk are under READ_BUFFER; the complete
                // record's check measures them.
                let last = memchr::memrchr2(b',', b'\n', chunk).unwrap_or(first);
                self.run = (chunk.len() - last - 1) as u64;
            }
        }
        if self.run > max_run {
            return Err(Exceeded::Field);
        }
        let start = self.record_start.get();
        let pending = self.delivered - start;
        if pending > (self.limits.max_record_bytes + READ_BUFFER) as u64 {
            return Err(Exceeded::Record);
        }
        if pending > max_field + READ_BUFFER as u64 {
            if self.counted_for != start {
                self.counted_for = start;
                self.commas = 0;
            }
            // Up to the first line break, the bytes are the long record's own.
            let own = memchr::memchr(b'\n', chunk).map_or(chunk, |i| &chunk[..i]);
            self.commas += memchr::memchr_iter(b',', own).count() as u64;
            if self.commas >= self.limits.max_fields as u64 {
                return Err(Exceeded::Fields);
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.delivered += n as u64;
        self.check(&buf[..n]).map_err(io::Error::other)?;
        Ok(n)
    }
}

impl<R: ChunkRead> ChunkRead for Guard<R> {
    fn next_chunk(&mut self, spare: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        let chunk = self.inner.next_chunk(spare)?;
        if let Some(c) = &chunk {
            let bytes = &c[HEADROOM..];
            self.delivered += bytes.len() as u64;
            self.check(bytes).map_err(io::Error::other)?;
        }
        Ok(chunk)
    }
}

/// A cap as messages state it: `1 MiB (1048576 bytes)`, `100 bytes`.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB ({b} bytes)", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB ({b} bytes)", b >> 10),
        b => format!("{b} bytes"),
    }
}

const TOO_LARGE_HINT: &str = "this is not a CUR/FOCUS CSV, or it is damaged (AWS writes rows of a few KB); check the file, re-download it, or remove it from the delivery";

fn field_cap(limits: &CsvLimits) -> String {
    format!(
        "the cap for one CSV field is {}",
        size(limits.max_field_bytes)
    )
}

fn record_cap(limits: &CsvLimits) -> String {
    format!(
        "the cap for one CSV record is {}",
        size(limits.max_record_bytes)
    )
}

/// The error for a cap the [`Guard`] saw exceeded in the record at `line`.
fn exceeded(name: &str, what: Exceeded, line: u64, limits: &CsvLimits) -> ReadError {
    let problem = match what {
        Exceeded::Field => format!(
            "a field is larger than the cap: more than {} bytes without a comma or line break; {}",
            limits.max_field_bytes + READ_BUFFER,
            field_cap(limits)
        ),
        Exceeded::Record => format!(
            "the record is larger than the cap: more than {} bytes without the record ending; {}",
            limits.max_record_bytes,
            record_cap(limits)
        ),
        Exceeded::Fields => format!(
            "the record has more than {} fields (commas, quoted or not), the cap for one CSV record",
            limits.max_fields
        ),
    };
    ReadError::new(
        name,
        ReadErrorKind::TooLarge,
        Location::Line(line),
        problem,
        TOO_LARGE_HINT,
    )
}

/// The caps on one complete record at `line`; `names` are the header's (none
/// while reading the header itself). A record no larger than the field cap
/// costs two comparisons.
fn check_record(
    name: &str,
    raw: &[u8],
    fields: usize,
    line: u64,
    names: Option<&[String]>,
    limits: &CsvLimits,
) -> Result<(), ReadError> {
    let too_large = |location, problem| {
        ReadError::new(
            name,
            ReadErrorKind::TooLarge,
            location,
            problem,
            TOO_LARGE_HINT,
        )
    };
    let size = raw.len();
    if size <= limits.max_field_bytes && fields <= limits.max_fields {
        return Ok(());
    }
    if fields > limits.max_fields {
        return Err(too_large(
            Location::Line(line),
            format!(
                "the record has {fields} fields, more than the cap of {} for one CSV record",
                limits.max_fields
            ),
        ));
    }
    if let Some((i, f)) = raw_fields(raw)
        .into_iter()
        .enumerate()
        .find(|(_, f)| f.len() > limits.max_field_bytes)
    {
        let (location, which) = match names.and_then(|n| n.get(i)) {
            Some(column) => (
                Location::Field {
                    line,
                    column: column.clone(),
                },
                "the field".to_owned(),
            ),
            None => (Location::Line(line), format!("field {}", i + 1)),
        };
        return Err(too_large(
            location,
            format!("{which} is {} bytes; {}", f.len(), field_cap(limits)),
        ));
    }
    if size > limits.max_record_bytes {
        return Err(too_large(
            Location::Line(line),
            format!("the record is {size} bytes; {}", record_cap(limits)),
        ));
    }
    Ok(())
}

/// The current record, borrowed from the splitter's buffer. Cells are
/// unquoted in place; a record holding a doubled quote is unescaped into
/// `owned` first.
struct CsvRow<'a> {
    fast: Option<&'a Record<'a>>,
    owned: &'a [Vec<u8>],
    idx: &'a [Option<usize>],
    /// Per field, the column a row falls back to when its own is empty.
    alt: &'a [Option<usize>],
    focus: bool,
    /// Legacy tag columns (name, index); empty unless the sink exports.
    tags: &'a [(String, usize)],
}

impl CsvRow<'_> {
    #[inline]
    fn own_text(&self, column: Option<usize>) -> &[u8] {
        match column {
            Some(i) => {
                let v = self.cell(i);
                if self.focus && v == b"NULL" {
                    b""
                } else {
                    v
                }
            }
            None => b"",
        }
    }

    #[inline]
    fn cell(&self, i: usize) -> &[u8] {
        match self.fast {
            Some(r) => r.unquote(i),
            None => self.owned.get(i).map_or(b"", Vec::as_slice),
        }
    }
}

impl RowAccess for CsvRow<'_> {
    #[inline]
    fn text(&self, f: Field) -> &[u8] {
        let v = self.own_text(self.idx[f as usize]);
        match self.alt[f as usize] {
            Some(a) if v.is_empty() => self.own_text(Some(a)),
            _ => v,
        }
    }

    #[inline]
    fn number(&self, f: Field) -> Result<Option<Money>, BadNumber> {
        match self.idx[f as usize] {
            Some(i) => parse_money(self.cell(i)),
            None => Ok(None),
        }
    }

    #[inline]
    fn fixed(&self, f: Field) -> Option<Option<Fixed>> {
        match self.idx[f as usize] {
            Some(i) => parse_fixed(self.cell(i)),
            None => Some(None),
        }
    }

    fn legacy_tags(&self, each: &mut dyn FnMut(&str, &[u8])) {
        for (name, i) in self.tags {
            let v = self.cell(*i);
            if !v.is_empty() {
                each(name, v);
            }
        }
    }
}

/// Read a decompressed CSV stream into `sink`.
pub fn read_csv<S: RowSink>(
    name: &str,
    stream: DataStream,
    sink: &mut S,
    limits: &CsvLimits,
) -> Result<FileReport, ReadError> {
    let record_start = Rc::new(Cell::new(0));
    let guard = Guard {
        inner: stream.reader,
        limits: *limits,
        delivered: 0,
        run: 0,
        record_start: record_start.clone(),
        commas: 0,
        counted_for: u64::MAX,
    };
    let mut split = Splitter::new(guard);
    // Line of the next record's first byte (1-based), counted from record bytes.
    let mut line: u64 = 1;
    let header: Vec<Vec<u8>> = loop {
        let this_line = line;
        let next = split
            .next_record()
            .map_err(|e| io_error(name, &e, this_line, limits))?;
        let Some(h) = next else {
            return Err(ReadError::new(
                name,
                ReadErrorKind::Empty,
                Location::File,
                "the file is empty: no header row",
                "AWS never delivers an empty billing file; re-download it, or remove it from the directory",
            ));
        };
        line += h.newlines + 1;
        if h.raw.is_empty() || h.raw == b"\r" {
            continue; // a blank line before the header
        }
        check_record(name, h.raw, h.fields, this_line, None, limits)?;
        break raw_fields(h.raw).into_iter().map(unescaped).collect();
    };
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let s = String::from_utf8_lossy(f).into_owned();
            if i == 0 {
                s.trim_start_matches('\u{feff}').to_owned()
            } else {
                s
            }
        })
        .collect();
    let dims = sink.dimensions().clone();
    let (dialect, columns) = super::columns_of(
        name,
        &names,
        &dims,
        sink.export(),
        Location::Line(1),
        || {
            format!(
                "the header is not a CUR, CUR 2.0 or FOCUS header (first columns: {})",
                header
                    .iter()
                    .take(4)
                    .map(|f| quoted(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    )?;
    let idx: Vec<Option<usize>> = Field::ALL.iter().map(|f| columns.get(*f)).collect();
    let alt: Vec<Option<usize>> = Field::ALL.iter().map(|f| columns.alternate(*f)).collect();
    let mut norm = Normaliser::new(dialect, &columns, &dims);
    let tags: Vec<(String, usize)> = if sink.export() {
        super::legacy_tag_columns(&names)
    } else {
        Vec::new()
    };
    split.want(
        idx.iter()
            .chain(&alt)
            .flatten()
            .copied()
            .chain(tags.iter().map(|(_, i)| *i)),
    );
    let mut owned: Vec<Vec<u8>> = Vec::new();
    let mut rows = 0u64;
    let focus = dialect.is_focus();
    loop {
        record_start.set(split.position());
        let this_line = line;
        let rec = match split.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(io_error(name, &e, this_line, limits)),
        };
        line += rec.newlines + 1;
        if rec.raw.is_empty() || rec.raw == b"\r" {
            continue; // a blank line
        }
        if rec.fields != names.len() {
            return Err(unequal_lengths(
                name,
                this_line,
                names.len(),
                rec.fields,
                &names,
            ));
        }
        check_record(name, rec.raw, rec.fields, this_line, Some(&names), limits)?;
        // Doubled quotes need unescaping: take the slow path for that record only.
        if rec.escaped {
            owned = raw_fields(rec.raw).into_iter().map(unescaped).collect();
        }
        let row = CsvRow {
            fast: (!rec.escaped).then_some(&rec),
            owned: &owned,
            idx: &idx,
            alt: &alt,
            focus,
            tags: &tags,
        };
        if let Err(BadField { field, problem }) = sink.row(&mut norm, &row) {
            let column = columns
                .get(field)
                .map_or_else(|| display_name(field, dialect), |i| names[i].clone());
            return Err(ReadError::new(
                name,
                ReadErrorKind::BadData,
                Location::Field { line: this_line, column },
                problem,
                "fix or remove that row (AWS writes plain decimals and ISO timestamps there), then re-run",
            ));
        }
        rows += 1;
    }
    Ok(FileReport {
        dialect,
        rows: rows - norm.other_provider_rows,
        other_provider_rows: norm.other_provider_rows,
        grouped_rows: 0,
    })
}

/// A record whose field count is not the header's.
fn unequal_lengths(
    name: &str,
    line: u64,
    expected: usize,
    found: usize,
    names: &[String],
) -> ReadError {
    ReadError::new(
        name,
        ReadErrorKind::BadData,
        Location::Line(line),
        format!(
            "the row has {found} fields but the header has {expected} (last header column: {})",
            names.last().map_or_else(Default::default, |c| escaped(c))
        ),
        "the row is cut or has an unquoted comma; fix the row or re-download the file",
    )
}

/// A read that failed: a cap the [`Guard`] saw exceeded, or the stream's own error.
fn io_error(name: &str, io: &io::Error, line: u64, limits: &CsvLimits) -> ReadError {
    if let Some(what) = io.get_ref().and_then(|e| e.downcast_ref::<Exceeded>()) {
        return exceeded(name, *what, line, limits);
    }
    let (kind, hint) = classify_io(io);
    let problem = match kind {
        ReadErrorKind::Corrupt => format!("decompression failed: {io}"),
        _ => io.to_string(),
    };
    ReadError::new(name, kind, Location::Line(line), problem, hint)
}

#[cfg(test)]
mod tests {
    /// A CUR CSV's numbers go to fixed point when plain and through exact
    /// decimals otherwise (scientific, more than 12 decimals, too large, in
    /// the same group as plain ones): the rollup equals the one where every
    /// value is written plainly, to the last digit.
    #[test]
    fn plain_and_other_number_forms_sum_the_same() {
        use crate::read::{read_stream, ReadOptions};
        use crate::rollup::RollupBuilder;
        let header = "lineItem/UsageAccountId,lineItem/LineItemType,lineItem/UsageStartDate,\
            lineItem/ProductCode,lineItem/UsageType,lineItem/UnblendedCost,\
            lineItem/BlendedCost,lineItem/UsageAmount,bill/PayerAccountId\n";
        let row = |cost: &str, usage: &str| {
            format!("111122223333,Usage,2024-01-03T05:00:00Z,AmazonEC2,BoxUsage,{cost},{cost},{usage},999988887777\n")
        };
        // (as written, the same value plainly): the odd forms first.
        let values = [
            ("1e-3", "0.001"),
            ("2.5000000000000000001", "2.5000000000000000001"),
            ("0.0000000000001", "0.0000000000001"),
            ("12345678.25", "12345678.25"),
            ("1.25", "1.25"),
            ("-0.75", "-0.75"),
            ("3E2", "300"),
        ];
        let read = |pick: fn(&(&str, &str)) -> String| {
            let mut csv = header.to_owned();
            for v in &values {
                csv.push_str(&row(&pick(v), &pick(v)));
            }
            let mut b = RollupBuilder::new(None);
            read_stream(
                "mixed.csv",
                Box::new(std::io::Cursor::new(csv.into_bytes())),
                &mut b,
                &ReadOptions::default(),
            )
            .unwrap();
            b.finish()
        };
        let as_written = read(|v| v.0.to_owned());
        let plain = read(|v| v.1.to_owned());
        assert_eq!(as_written, plain);
        let p = &plain["2024-01"];
        assert_eq!(p.groups.len(), 1);
        assert_eq!(
            p.totals.billed_cost,
            crate::money::dec("12345981.2510000000001000001")
        );
        assert_eq!(p.totals.usage_amount, p.totals.billed_cost);
    }
}
