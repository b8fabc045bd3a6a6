//! Writers for generated rows: gzip CSV and Parquet (snappy), including CUR 2.0 map columns.

use super::SampleError;
use arrow_array::builder::{
    Float64Builder, MapBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use flate2::write::GzEncoder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    F64,
    Ts,
}

/// One output column: a rendered cell (by index) or a map of several.
#[derive(Debug, Clone)]
pub enum OutCol {
    Cell {
        name: String,
        idx: usize,
        kind: Kind,
    },
    Map {
        name: String,
        entries: Vec<(String, usize)>,
    },
}

impl OutCol {
    pub fn text(name: &str, idx: usize) -> Self {
        OutCol::Cell {
            name: name.into(),
            idx,
            kind: Kind::Str,
        }
    }
    pub fn typed(name: &str, idx: usize, numeric: bool, ts: bool) -> Self {
        let kind = if ts {
            Kind::Ts
        } else if numeric {
            Kind::F64
        } else {
            Kind::Str
        };
        OutCol::Cell {
            name: name.into(),
            idx,
            kind,
        }
    }
    fn name(&self) -> &str {
        match self {
            OutCol::Cell { name, .. } | OutCol::Map { name, .. } => name,
        }
    }
}

pub trait RowSink {
    fn write(&mut self, row: &[String]) -> Result<(), SampleError>;
    fn finish(self: Box<Self>) -> Result<(), SampleError>;
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SampleError + '_ {
    move |e| SampleError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

pub struct CsvSink {
    w: csv::Writer<Box<dyn Write>>,
    cols: Vec<OutCol>,
    path: std::path::PathBuf,
    json: String,
}

impl CsvSink {
    pub fn create(path: &Path, cols: &[OutCol], gzip_level: u32) -> Result<Self, SampleError> {
        let f = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io(path))?);
        let inner: Box<dyn Write> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(GzEncoder::new(f, flate2::Compression::new(gzip_level)))
        } else {
            Box::new(f)
        };
        let mut w = csv::WriterBuilder::new()
            .buffer_capacity(1 << 20)
            .from_writer(inner);
        w.write_record(cols.iter().map(OutCol::name))
            .map_err(|e| io(path)(e.into()))?;
        Ok(CsvSink {
            w,
            cols: cols.to_vec(),
            path: path.into(),
            json: String::new(),
        })
    }
}

impl RowSink for CsvSink {
    fn write(&mut self, row: &[String]) -> Result<(), SampleError> {
        for c in &self.cols {
            let r = match c {
                OutCol::Cell { idx, .. } => self.w.write_field(&row[*idx]),
                OutCol::Map { entries, .. } => {
                    let m: serde_json::Map<String, serde_json::Value> = entries
                        .iter()
                        .filter(|(_, i)| !row[*i].is_empty())
                        .map(|(k, i)| (k.clone(), serde_json::Value::String(row[*i].clone())))
                        .collect();
                    self.json = serde_json::to_string(&m).expect("map serialises");
                    self.w.write_field(&self.json)
                }
            };
            r.map_err(|e| io(&self.path)(e.into()))?;
        }
        self.w
            .write_record(None::<&[u8]>)
            .map_err(|e| io(&self.path)(e.into()))
    }

    fn finish(self: Box<Self>) -> Result<(), SampleError> {
        let path = self.path.clone();
        let mut inner = self.w.into_inner().map_err(|e| io(&path)(e.into_error()))?;
        inner.flush().map_err(io(&path))?;
        drop(inner);
        Ok(())
    }
}

enum Builder {
    Str(StringBuilder),
    F64(Float64Builder),
    Ts(TimestampMillisecondBuilder),
    Map(Box<MapBuilder<StringBuilder, StringBuilder>>),
}

pub struct ParquetSink {
    w: ArrowWriter<BufWriter<File>>,
    schema: Arc<Schema>,
    cols: Vec<OutCol>,
    builders: Vec<Builder>,
    pending: usize,
}

const BATCH: usize = 8192;

fn ts_millis(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

fn pq_err(e: impl std::fmt::Display) -> SampleError {
    SampleError::Parquet(e.to_string())
}

impl ParquetSink {
    pub fn create(path: &Path, cols: &[OutCol]) -> Result<Self, SampleError> {
        let mut fields = Vec::new();
        let mut builders = Vec::new();
        for c in cols {
            match c {
                OutCol::Cell { name, kind, .. } => {
                    let (dt, b) = match kind {
                        Kind::Str => (DataType::Utf8, Builder::Str(StringBuilder::new())),
                        Kind::F64 => (DataType::Float64, Builder::F64(Float64Builder::new())),
                        Kind::Ts => (
                            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                            Builder::Ts(TimestampMillisecondBuilder::new().with_timezone("UTC")),
                        ),
                    };
                    fields.push(Field::new(name, dt, true));
                    builders.push(b);
                }
                OutCol::Map { name, .. } => {
                    let b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                    let dt = DataType::Map(
                        Arc::new(Field::new(
                            "entries",
                            DataType::Struct(
                                vec![
                                    Field::new("key", DataType::Utf8, false),
                                    Field::new("value", DataType::Utf8, true),
                                ]
                                .into(),
                            ),
                            false,
                        )),
                        false,
                    );
                    fields.push(Field::new(name, dt, true));
                    builders.push(Builder::Map(Box::new(b)));
                }
            }
        }
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(128 * 1024))
            .build();
        let f = BufWriter::new(File::create(path).map_err(io(path))?);
        let w = ArrowWriter::try_new(f, schema.clone(), Some(props)).map_err(pq_err)?;
        Ok(ParquetSink {
            w,
            schema,
            cols: cols.to_vec(),
            builders,
            pending: 0,
        })
    }

    fn flush(&mut self) -> Result<(), SampleError> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| match b {
                Builder::Str(b) => Arc::new(b.finish()) as ArrayRef,
                Builder::F64(b) => Arc::new(b.finish()) as ArrayRef,
                Builder::Ts(b) => Arc::new(b.finish().with_timezone("UTC")) as ArrayRef,
                Builder::Map(b) => Arc::new(b.finish()) as ArrayRef,
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(pq_err)?;
        self.w.write(&batch).map_err(pq_err)?;
        self.pending = 0;
        Ok(())
    }
}

impl RowSink for ParquetSink {
    fn write(&mut self, row: &[String]) -> Result<(), SampleError> {
        for (c, b) in self.cols.iter().zip(self.builders.iter_mut()) {
            match (c, b) {
                (OutCol::Cell { idx, .. }, Builder::Str(b)) => b.append_value(&row[*idx]),
                (OutCol::Cell { idx, .. }, Builder::F64(b)) => {
                    b.append_option(row[*idx].parse::<f64>().ok())
                }
                (OutCol::Cell { idx, .. }, Builder::Ts(b)) => {
                    b.append_option(ts_millis(&row[*idx]))
                }
                (OutCol::Map { entries, .. }, Builder::Map(b)) => {
                    for (k, i) in entries {
                        if !row[*i].is_empty() {
                            b.keys().append_value(k);
                            b.values().append_value(&row[*i]);
                        }
                    }
                    b.append(true).map_err(pq_err)?;
                }
                _ => unreachable!("builder matches its column"),
            }
        }
        self.pending += 1;
        if self.pending == BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), SampleError> {
        self.flush()?;
        self.w.close().map_err(pq_err)?;
        Ok(())
    }
}

/// The Athena layout's `cost_and_usage_data_status.parquet` (one `status` column).
pub fn write_status(path: &Path, status: &str) -> Result<(), SampleError> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "status",
        DataType::Utf8,
        false,
    )]));
    let mut b = StringBuilder::new();
    b.append_value(status);
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(b.finish())]).map_err(pq_err)?;
    let f = File::create(path).map_err(io(path))?;
    let mut w = ArrowWriter::try_new(f, schema, None).map_err(pq_err)?;
    w.write(&batch).map_err(pq_err)?;
    w.close().map_err(pq_err)?;
    Ok(())
}
