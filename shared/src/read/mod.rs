//! Reading billing data files into rollups: compression, CSV, Parquet.
//!
//! Invariant: a data file is streamed, never held whole in memory; the
//! parsers see borrowed records and hand [`crate::rollup::LineItem`]s to a
//! [`RollupBuilder`]. Input is a `Read` (CSV), a local file, or a
//! [`RangeSource`] (Parquet by byte ranges: the reader says which ranges, the
//! source fetches them).

mod csv_split;
mod decompress;
mod error;
mod items;
mod parquet_file;
mod parquet_groups;
mod ranged;
mod text;

pub use decompress::{open_data, ChunkRead, Compression, DataStream};
pub use error::{escaped, quoted, Location, ReadError, ReadErrorKind, NAME_CHARS, QUOTED_CHARS};
pub(crate) use items::nullish;
pub use items::{BadField, Line, Normaliser, RowAccess, RowSink};
pub use ranged::{
    coalesce, read_parquet_ranges, RangeSource, RangedError, COALESCE_GAP, MAX_REQUEST, TAIL_BYTES,
};

use crate::dimensions::Dimensions;
use crate::fields::{display_name, ColumnMap, Dialect};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// How to read a data file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Decompress on a separate thread (a CSV's gzip or zip; a Parquet file's
    /// pages, read or fetched and decoded into batches); grouping stays on the caller's.
    pub threaded_decompression: bool,
    /// Bytes of input consumed so far, for a progress bar.
    pub progress: Option<Arc<AtomicU64>>,
}

/// Caps on one CSV record, enforced as the bytes arrive, so the memory a file
/// takes stays bounded whatever it holds (one 300 MB field, no line breaks at
/// all, random bytes). A real CUR / FOCUS row is a few KB (CUR 2.0's `product`
/// and `resource_tags` maps included), so the defaults leave two to three
/// orders of magnitude of headroom. Over a cap, the file fails with
/// [`ReadErrorKind::TooLarge`] (permanent) naming the file, the line and,
/// when known, the column.
///
/// Field and record sizes are raw bytes in the file, quotes included. Memory
/// for one record stays below about `max_record_bytes` plus the reader's 1 MiB
/// buffer, plus 8 bytes per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvLimits {
    /// Largest field: 1 MiB by default.
    pub max_field_bytes: usize,
    /// Largest record (a row, line breaks inside quotes included): 16 MiB by default.
    pub max_record_bytes: usize,
    /// Most fields in one record: 65,536 by default (CUR files with every
    /// tag column have a few thousand).
    pub max_fields: usize,
}

impl Default for CsvLimits {
    fn default() -> Self {
        CsvLimits {
            max_field_bytes: 1 << 20,
            max_record_bytes: 16 << 20,
            max_fields: 1 << 16,
        }
    }
}

/// What reading one data file found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileReport {
    pub dialect: Dialect,
    pub rows: u64,
    /// Rows of other cloud providers in a FOCUS file, not ingested (counted per provider).
    pub other_provider_rows: u64,
    /// Rows the Parquet fast path grouped by their columns' ids (the rest went row by row).
    #[serde(default)]
    pub grouped_rows: u64,
}

/// Read a data file at a local path: CSV (plain, gzip, zip) or Parquet,
/// detected from its first bytes. `name` is how errors refer to it.
pub fn read_path<S: RowSink>(
    name: &str,
    path: &Path,
    builder: &mut S,
    opts: &ReadOptions,
) -> Result<FileReport, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| ReadError::io(name, e))?;
    let mut magic = [0u8; 4];
    let n = {
        let mut f = &file;
        read_up_to(&mut f, &mut magic).map_err(|e| ReadError::io(name, e))?
    };
    if n == 4 && &magic == b"PAR1" {
        return parquet_file::read_parquet(name, file, builder, opts);
    }
    drop(file);
    let file = std::fs::File::open(path).map_err(|e| ReadError::io(name, e))?;
    read_stream(name, Box::new(file), builder, opts)
}

/// Read a non-seekable CSV stream (plain, gzip or zip). Parquet needs
/// [`read_path`] or [`read_parquet_ranges`].
pub fn read_stream<S: RowSink>(
    name: &str,
    input: Box<dyn Read + Send>,
    builder: &mut S,
    opts: &ReadOptions,
) -> Result<FileReport, ReadError> {
    read_stream_with(name, input, builder, opts, &CsvLimits::default())
}

/// [`read_stream`] with other caps than the default [`CsvLimits`].
pub fn read_stream_with<S: RowSink>(
    name: &str,
    input: Box<dyn Read + Send>,
    builder: &mut S,
    opts: &ReadOptions,
    limits: &CsvLimits,
) -> Result<FileReport, ReadError> {
    let stream = open_data(name, input, opts)?;
    if stream.compression == Compression::Parquet {
        return Err(ReadError::new(
            name,
            ReadErrorKind::Format,
            Location::File,
            "Parquet data cannot be read from a stream",
            "read Parquet files from a local path or by byte ranges",
        ));
    }
    text::read_csv(name, stream, builder, limits)
}

/// Legacy CUR's tag columns among a file's column names: (name, index) of
/// each `resourceTags/...` (CSV) or `resource_tags_...` (Athena/Parquet)
/// column; CUR 2.0's one `resource_tags` map column is not among them.
pub(super) fn legacy_tag_columns(names: &[String]) -> Vec<(String, usize)> {
    names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.starts_with("resourceTags/") || n.starts_with("resource_tags_"))
        .map(|(i, n)| (n.clone(), i))
        .collect()
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The dialect and columns of a file's column names, or the error naming what
/// is wrong: not billing columns at all (`not_billing` says what was found),
/// or a required column missing. One rule for CSV headers and Parquet schemas.
pub(super) fn columns_of(
    name: &str,
    names: &[String],
    dims: &Dimensions,
    export: bool,
    at: Location,
    not_billing: impl FnOnce() -> String,
) -> Result<(Dialect, ColumnMap), ReadError> {
    let dialect = Dialect::detect(names.iter().map(String::as_str)).ok_or_else(|| {
        ReadError::new(
            name,
            ReadErrorKind::Format,
            at.clone(),
            not_billing(),
            "point curlew at AWS Cost and Usage Report, Data Export or FOCUS files",
        )
    })?;
    let columns = ColumnMap::resolve_for(names.iter().map(String::as_str), dims, export);
    if let Some(f) = columns.missing_required(dialect) {
        return Err(ReadError::new(
            name,
            ReadErrorKind::Format,
            at,
            format!("required column {} is missing", display_name(f, dialect)),
            "enable the column in the report/export definition (curlew needs it), or check the file is not cut",
        ));
    }
    Ok((dialect, columns))
}
