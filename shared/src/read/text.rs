//! CSV billing files: header -> dialect -> columns, then one borrowed record at a time.

use super::decompress::DataStream;
use super::error::{classify_io, Location, ReadError, ReadErrorKind};
use super::items::{BadField, Normaliser, RowAccess};
use super::FileReport;
use crate::fields::{display_name, ColumnMap, Dialect, Field};
use crate::money::{parse_money, BadNumber, Money};
use crate::rollup::RollupBuilder;

struct CsvRow<'a> {
    rec: &'a csv::ByteRecord,
    idx: &'a [Option<usize>],
    focus: bool,
}

impl RowAccess for CsvRow<'_> {
    #[inline]
    fn text(&self, f: Field) -> &[u8] {
        match self.idx[f as usize] {
            Some(i) => {
                let v = self.rec.get(i).unwrap_or(b"");
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
            Some(i) => parse_money(self.rec.get(i).unwrap_or(b"")),
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
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .buffer_capacity(256 * 1024)
        .from_reader(stream.reader);
    let mut header = csv::ByteRecord::new();
    let got = rdr
        .read_byte_record(&mut header)
        .map_err(|e| csv_error(name, &e, None))?;
    if !got || header.iter().all(|f| f.is_empty()) {
        return Err(ReadError::new(
            name,
            ReadErrorKind::Empty,
            Location::File,
            "the file is empty: no header row",
            "AWS never delivers an empty billing file; re-download it, or remove it from the directory",
        ));
    }
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
    let mut rec = csv::ByteRecord::new();
    let mut rows = 0u64;
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(name, &e, Some(&names))),
        }
        if rec.len() == 1 && rec.get(0) == Some(b"") {
            continue; // a blank line
        }
        let row = CsvRow {
            rec: &rec,
            idx: &idx,
            focus: dialect.is_focus(),
        };
        if let Err(BadField { field, problem }) = norm.add_row(&row, builder) {
            let line = rec.position().map_or(0, |p| p.line());
            let column = columns
                .get(field)
                .map_or_else(|| display_name(field, dialect), |i| names[i].clone());
            return Err(ReadError::new(
                name,
                ReadErrorKind::BadData,
                Location::Field { line, column },
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

fn csv_error(name: &str, e: &csv::Error, names: Option<&[String]>) -> ReadError {
    match e.kind() {
        csv::ErrorKind::Io(io) => {
            let (kind, hint) = classify_io(io);
            let problem = match kind {
                ReadErrorKind::Corrupt => format!("decompression failed: {io}"),
                _ => io.to_string(),
            };
            let location = e
                .position()
                .map_or(Location::File, |p| Location::Line(p.line()));
            ReadError::new(name, kind, location, problem, hint)
        }
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => ReadError::new(
            name,
            ReadErrorKind::BadData,
            pos.as_ref()
                .map_or(Location::File, |p| Location::Line(p.line())),
            format!(
                "the row has {len} fields but the header has {expected_len}{}",
                names.map_or(String::new(), |n| format!(
                    " (last header column: {})",
                    n.last().cloned().unwrap_or_default()
                ))
            ),
            "the row is cut or has an unquoted comma; fix the row or re-download the file",
        ),
        csv::ErrorKind::Utf8 { pos, err } => ReadError::new(
            name,
            ReadErrorKind::BadData,
            pos.as_ref()
                .map_or(Location::File, |p| Location::Line(p.line())),
            format!("invalid UTF-8 in field {}", err.field() + 1),
            "AWS billing files are UTF-8; re-export the file as UTF-8",
        ),
        _ => ReadError::new(
            name,
            ReadErrorKind::BadData,
            Location::File,
            e.to_string(),
            "check the file is CSV",
        ),
    }
}
