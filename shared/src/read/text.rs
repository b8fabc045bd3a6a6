//! CSV billing files: header -> dialect -> columns, then one borrowed record at a time.

use super::decompress::DataStream;
use super::error::{classify_io, Location, ReadError, ReadErrorKind};
use super::items::{BadField, Normaliser, RowAccess};
use super::FileReport;
use crate::fields::{display_name, ColumnMap, Dialect, Field};
use crate::money::{parse_money, BadNumber, Money};
use crate::rollup::RollupBuilder;
use simd_csv::{ZeroCopyByteRecord, ZeroCopyReaderBuilder};

/// The current record, borrowed from the reader's buffer. Cells are unquoted
/// in place; a record holding a doubled quote is unescaped into `owned` first.
struct CsvRow<'a> {
    fast: Option<&'a ZeroCopyByteRecord<'a>>,
    owned: &'a simd_csv::ByteRecord,
    idx: &'a [Option<usize>],
    focus: bool,
}

impl CsvRow<'_> {
    #[inline]
    fn cell(&self, i: usize) -> &[u8] {
        match self.fast {
            Some(r) => r.unquote(i),
            None => self.owned.get(i),
        }
        .unwrap_or(b"")
    }
}

impl RowAccess for CsvRow<'_> {
    #[inline]
    fn text(&self, f: Field) -> &[u8] {
        match self.idx[f as usize] {
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
    fn number(&self, f: Field) -> Result<Option<Money>, BadNumber> {
        match self.idx[f as usize] {
            Some(i) => parse_money(self.cell(i)),
            None => Ok(None),
        }
    }
}

/// Read a decompressed CSV stream into `builder`.
pub fn read_csv(
    name: &str,
    stream: DataStream,
    builder: &mut RollupBuilder,
) -> Result<FileReport, ReadError> {
    let mut rdr = ZeroCopyReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .buffer_capacity(1 << 20)
        .from_reader(stream.reader);
    // Line of the next record's first byte (1-based), counted from record bytes.
    let mut line: u64 = 1;
    let names: Vec<String> = match rdr.read_byte_record().map_err(|e| csv_error(name, &e, line, None))? {
        Some(h) if !(h.len() == 1 && h.as_slice().is_empty()) => {
            line += newlines(h.as_slice()) + 1;
            h.to_byte_record()
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
                .collect()
        }
        _ => {
            return Err(ReadError::new(
                name,
                ReadErrorKind::Empty,
                Location::File,
                "the file is empty: no header row",
                "AWS never delivers an empty billing file; re-download it, or remove it from the directory",
            ))
        }
    };
    let dialect = Dialect::detect(names.iter().map(String::as_str)).ok_or_else(|| {
        ReadError::new(
            name,
            ReadErrorKind::Format,
            Location::Line(1),
            format!(
                "the header is not a CUR, CUR 2.0 or FOCUS header (first columns: {})",
                names.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            ),
            "point curlew at AWS Cost and Usage Report, Data Export or FOCUS files",
        )
    })?;
    let columns = ColumnMap::resolve(names.iter().map(String::as_str));
    if let Some(f) = columns.missing_required(dialect) {
        return Err(ReadError::new(
            name,
            ReadErrorKind::Format,
            Location::Line(1),
            format!("required column {} is missing", display_name(f, dialect)),
            "enable the column in the report/export definition (curlew needs it), or check the file is not cut",
        ));
    }
    let idx: Vec<Option<usize>> = Field::ALL.iter().map(|f| columns.get(*f)).collect();
    let mut norm = Normaliser::new(dialect, &columns);
    let mut owned = simd_csv::ByteRecord::new();
    let mut rows = 0u64;
    let focus = dialect.is_focus();
    loop {
        let rec = match rdr.read_byte_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(csv_error(name, &e, line, Some(&names))),
        };
        let raw = rec.as_slice();
        let this_line = line;
        line += newlines(raw) + 1;
        if raw.is_empty() || raw == b"\r" {
            continue; // a blank line
        }
        // Doubled quotes need unescaping: take the slow path for that record only.
        let needs_unescape = memchr::memmem::find(raw, b"\"\"").is_some();
        if needs_unescape {
            owned = rec.to_byte_record();
        }
        let row = CsvRow {
            fast: (!needs_unescape).then_some(&rec),
            owned: &owned,
            idx: &idx,
            focus,
        };
        if let Err(BadField { field, problem }) = norm.add_row(&row, builder) {
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
    })
}

fn newlines(raw: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', raw).count() as u64
}

fn csv_error(name: &str, e: &simd_csv::Error, line: u64, names: Option<&[String]>) -> ReadError {
    match e.kind() {
        simd_csv::ErrorKind::Io(io) => {
            let (kind, hint) = classify_io(io);
            let problem = match kind {
                ReadErrorKind::Corrupt => format!("decompression failed: {io}"),
                _ => io.to_string(),
            };
            ReadError::new(name, kind, Location::Line(line), problem, hint)
        }
        simd_csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ReadError::new(
            name,
            ReadErrorKind::BadData,
            Location::Line(line),
            format!(
                "the row has {len} fields but the header has {expected_len}{}",
                names.map_or(String::new(), |n| format!(
                    " (last header column: {})",
                    n.last().cloned().unwrap_or_default()
                ))
            ),
            "the row is cut or has an unquoted comma; fix the row or re-download the file",
        ),
        _ => ReadError::new(
            name,
            ReadErrorKind::BadData,
            Location::Line(line),
            e.to_string(),
            "check the file is CSV",
        ),
    }
}
