//! Reading billing data files into rollups: compression, CSV, Parquet.
//!
//! Invariant: a data file is streamed, never held whole in memory; the
//! parsers see borrowed records and hand [`crate::rollup::LineItem`]s to a
//! [`RollupBuilder`].

mod decompress;
mod error;
mod items;
mod parquet_file;
mod parquet_groups;
mod text;

pub use decompress::{open_data, Compression, DataStream};
pub use error::{Location, ReadError, ReadErrorKind};

use crate::fields::Dialect;
use crate::rollup::RollupBuilder;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// How to read a data file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Decompress on a separate thread (CSV); parsing stays on the caller's.
    pub threaded_decompression: bool,
    /// Bytes of input consumed so far, for a progress bar.
    pub progress: Option<Arc<AtomicU64>>,
}

/// What reading one data file found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileReport {
    pub dialect: Dialect,
    pub rows: u64,
    /// Rows of other cloud providers in a FOCUS file, not ingested (counted per provider).
    pub other_provider_rows: u64,
}

/// Read a data file at a local path: CSV (plain, gzip, zip) or Parquet,
/// detected from its first bytes. `name` is how errors refer to it.
pub fn read_path(
    name: &str,
    path: &Path,
    builder: &mut RollupBuilder,
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

/// Read a non-seekable CSV stream (plain, gzip or zip). Parquet needs [`read_path`].
pub fn read_stream(
    name: &str,
    input: Box<dyn Read + Send>,
    builder: &mut RollupBuilder,
    opts: &ReadOptions,
) -> Result<FileReport, ReadError> {
    let stream = open_data(name, input, opts)?;
    if stream.compression == Compression::Parquet {
        return Err(ReadError::new(
            name,
            ReadErrorKind::Format,
            Location::File,
            "Parquet data cannot be read from a stream",
            "read Parquet files from a local path or a spooled copy",
        ));
    }
    text::read_csv(name, stream, builder)
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
