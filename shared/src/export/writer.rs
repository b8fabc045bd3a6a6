//! One export file: rows appended as values of [`COLUMNS`], written as
//! Parquet record batches of [`BATCH`] rows in row groups of at most
//! [`ROW_GROUP`] rows, to a temporary name renamed into place when complete.
//! Memory is bounded by one row group; the bytes depend only on the rows.

use super::columns::{Kind, COLUMNS};
use arrow_array::builder::{Decimal128Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per record batch handed to the Parquet writer.
pub const BATCH: usize = 8192;
/// Rows per row group: the writer holds at most one row group's pages.
pub const ROW_GROUP: usize = 131_072;

/// Decimal places of money and quantities (DECIMAL(38,18), as the rollup).
pub const SCALE: i8 = 18;

/// One value of a row, in [`COLUMNS`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Milliseconds since the epoch, UTC.
    Time(Option<i64>),
    Text(Option<&'a str>),
    /// Units of 1e-18.
    Decimal(Option<i128>),
}

enum Builder {
    Time(TimestampMillisecondBuilder),
    Text(StringBuilder),
    Decimal(Decimal128Builder),
}

/// The export's Arrow schema.
pub fn schema() -> Schema {
    Schema::new(
        COLUMNS
            .iter()
            .map(|c| {
                let t = match c.kind {
                    Kind::Time => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    Kind::Text => DataType::Utf8,
                    Kind::Decimal => DataType::Decimal128(38, SCALE),
                };
                Field::new(c.name, t, c.nullable)
            })
            .collect::<Vec<_>>(),
    )
}

/// A failure to write an export file.
#[derive(Debug, thiserror::Error)]
#[error("writing {}: {problem}. What to do: check the output directory is writable and has space", .path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub problem: String,
}

/// An export file being written.
pub struct ExportFile {
    path: PathBuf,
    tmp: PathBuf,
    schema: Arc<Schema>,
    writer: ArrowWriter<File>,
    builders: Vec<Builder>,
    pending: usize,
    /// Rows appended so far.
    pub rows: u64,
}

fn new_builders() -> Vec<Builder> {
    COLUMNS
        .iter()
        .map(|c| match c.kind {
            Kind::Time => Builder::Time(
                TimestampMillisecondBuilder::with_capacity(BATCH).with_timezone("UTC"),
            ),
            Kind::Text => Builder::Text(StringBuilder::with_capacity(BATCH, BATCH * 16)),
            Kind::Decimal => Builder::Decimal(
                Decimal128Builder::with_capacity(BATCH)
                    .with_data_type(DataType::Decimal128(38, SCALE)),
            ),
        })
        .collect()
}

impl ExportFile {
    /// Start writing `path` (through `path` + `.tmp`; directories created).
    pub fn create(path: &Path) -> Result<ExportFile, WriteError> {
        let err = |e: &dyn std::fmt::Display| WriteError {
            path: path.to_path_buf(),
            problem: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|e| err(&e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(1).map_err(|e| err(&e))?,
            ))
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .set_created_by("curlew".into())
            .build();
        let schema = Arc::new(schema());
        let writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| err(&e))?;
        Ok(ExportFile {
            path: path.to_path_buf(),
            tmp,
            schema,
            writer,
            builders: new_builders(),
            pending: 0,
            rows: 0,
        })
    }

    fn err(&self, e: &dyn std::fmt::Display) -> WriteError {
        WriteError {
            path: self.path.clone(),
            problem: e.to_string(),
        }
    }

    /// Append one row (`values` in [`COLUMNS`] order, each of its column's kind).
    pub fn push(&mut self, values: &[Value<'_>]) -> Result<(), WriteError> {
        debug_assert_eq!(values.len(), COLUMNS.len());
        for (b, v) in self.builders.iter_mut().zip(values) {
            match (b, v) {
                (Builder::Time(b), Value::Time(v)) => b.append_option(*v),
                (Builder::Text(b), Value::Text(v)) => b.append_option(*v),
                (Builder::Decimal(b), Value::Decimal(v)) => b.append_option(*v),
                _ => return Err(self_err(&self.path, &"a value of the wrong kind")),
            }
        }
        self.pending += 1;
        self.rows += 1;
        if self.pending >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Time(b) => Arc::new(b.finish()),
                    Builder::Text(b) => Arc::new(b.finish()),
                    Builder::Decimal(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| self.err(&e))?;
        self.writer.write(&batch).map_err(|e| self.err(&e))?;
        self.pending = 0;
        Ok(())
    }

    /// Write what is left and move the file into place; its path.
    pub fn finish(mut self) -> Result<PathBuf, WriteError> {
        self.flush()?;
        let ExportFile {
            path, tmp, writer, ..
        } = self;
        writer.close().map_err(|e| self_err(&path, &e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self_err(&path, &e))?;
        Ok(path)
    }

    /// Give up: remove the temporary file.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

fn self_err(path: &Path, e: &dyn std::fmt::Display) -> WriteError {
    WriteError {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}
