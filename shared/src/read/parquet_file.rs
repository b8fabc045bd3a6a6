//! Parquet billing files: schema -> dialect -> projection of only the needed
//! columns, then record batches through the same normaliser as CSV. A local
//! file is read through parquet's file reader; an object by byte ranges
//! ([`super::ranged`]) through the same [`Projection`] and [`consume`].

use super::error::{quoted, Location, ReadError, ReadErrorKind};
use super::items::{BadField, Normaliser, RowAccess, RowSink};
use super::parquet_groups::CurGroups;
use super::ranged::RangedError;
use super::{FileReport, ReadOptions};
use crate::dimensions::{Dimension, Dimensions};
use crate::fields::{display_name, map_of, ColumnMap, Dialect, Field, DIMS, MAP_FALLBACKS};
use crate::money::{from_f64, parse_money, BadNumber, Money};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, MapArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::ProjectionMask;
use std::convert::Infallible;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(super) enum TextCol {
    None,
    Str(StringArray),
    /// Dictionary-encoded text read as such: no per-row string copies.
    Dict(arrow_array::Int32Array, StringArray),
    /// Per row an index into the batch's distinct values ([`NO_VALUE`] when
    /// null): dates as `YYYY-MM-DD`, values out of a map column.
    Indexed(Vec<u32>, Vec<Box<[u8]>>),
}

impl TextCol {
    /// Row `i`'s text, `b""` when null or absent.
    #[inline]
    pub(super) fn value(&self, i: usize) -> &[u8] {
        match self {
            TextCol::None => b"",
            TextCol::Str(a) => {
                if a.is_null(i) {
                    b""
                } else {
                    a.value(i).as_bytes()
                }
            }
            TextCol::Dict(keys, values) => {
                if keys.is_null(i) {
                    b""
                } else {
                    values.value(keys.value(i) as usize).as_bytes()
                }
            }
            TextCol::Indexed(idx, values) => match idx[i] {
                NO_VALUE => b"",
                j => &values[j as usize],
            },
        }
    }

    /// Whether some row of the first `n` is empty or null.
    fn has_empty(&self, n: usize) -> bool {
        match self {
            TextCol::None => n > 0,
            TextCol::Dict(keys, values) => {
                keys.null_count() > 0 || (0..values.len()).any(|v| values.value(v).is_empty())
            }
            _ => (0..n).any(|i| self.value(i).is_empty()),
        }
    }

    /// Per row, this column's value, or `alt`'s where this one is empty or
    /// null (the per-row fallback of [`ColumnMap::alternate`]).
    fn or_else(self, alt: &TextCol, n: usize) -> TextCol {
        if !self.has_empty(n) {
            return self;
        }
        let mut seen: hashbrown::HashMap<&[u8], u32> = hashbrown::HashMap::new();
        let mut values: Vec<Box<[u8]>> = Vec::new();
        let idx = (0..n)
            .map(|i| {
                let own = self.value(i);
                let v = if own.is_empty() { alt.value(i) } else { own };
                if v.is_empty() {
                    return NO_VALUE;
                }
                *seen.entry(v).or_insert_with(|| {
                    values.push(v.into());
                    (values.len() - 1) as u32
                })
            })
            .collect();
        TextCol::Indexed(idx, values)
    }
}

/// The index of a null in [`TextCol::Indexed`].
pub(super) const NO_VALUE: u32 = u32::MAX;

pub(super) enum NumCol {
    None,
    F64(arrow_array::Float64Array),
    F32(arrow_array::Float32Array),
    Dec(arrow_array::Decimal128Array, u32),
    I64(arrow_array::Int64Array),
    I32(arrow_array::Int32Array),
    Str(StringArray),
}

pub(super) struct BatchRow<'a> {
    pub text: &'a [TextCol],
    pub num: &'a [NumCol],
    pub row: usize,
}

impl RowAccess for BatchRow<'_> {
    #[inline]
    fn text(&self, f: Field) -> &[u8] {
        self.text[f as usize].value(self.row)
    }

    #[inline]
    fn number(&self, f: Field) -> Result<Option<Money>, BadNumber> {
        let i = self.row;
        let conv = |v: f64| {
            from_f64(v)
                .ok_or_else(|| BadNumber(v.to_string()))
                .map(Some)
        };
        match &self.num[f as usize] {
            NumCol::None => Ok(None),
            NumCol::F64(a) => {
                if a.is_valid(i) {
                    conv(a.value(i))
                } else {
                    Ok(None)
                }
            }
            NumCol::F32(a) => {
                if a.is_valid(i) {
                    conv(f64::from(a.value(i)))
                } else {
                    Ok(None)
                }
            }
            NumCol::Dec(a, scale) => {
                if a.is_valid(i) {
                    Money::try_from_i128_with_scale(a.value(i), *scale)
                        .map(Some)
                        .map_err(|_| {
                            BadNumber(format!("{} (scale {scale}) exceeds 28 digits", a.value(i)))
                        })
                } else {
                    Ok(None)
                }
            }
            NumCol::I64(a) => Ok(a.is_valid(i).then(|| Money::from(a.value(i)))),
            NumCol::I32(a) => Ok(a.is_valid(i).then(|| Money::from(a.value(i)))),
            NumCol::Str(a) => {
                if a.is_null(i) {
                    Ok(None)
                } else {
                    parse_money(a.value(i).as_bytes())
                }
            }
        }
    }
}

/// A row in export mode: a [`BatchRow`] and the batch's legacy tag columns.
struct ExportRow<'a> {
    row: BatchRow<'a>,
    tags: &'a [(String, TextCol)],
}

impl RowAccess for ExportRow<'_> {
    #[inline]
    fn text(&self, f: Field) -> &[u8] {
        self.row.text(f)
    }

    #[inline]
    fn number(&self, f: Field) -> Result<Option<Money>, BadNumber> {
        self.row.number(f)
    }

    fn legacy_tags(&self, each: &mut dyn FnMut(&str, &[u8])) {
        for (name, col) in self.tags {
            let v = col.value(self.row.row);
            if !v.is_empty() {
                each(name, v);
            }
        }
    }
}

pub(super) fn corrupt(name: &str, e: impl std::fmt::Display) -> ReadError {
    ReadError::new(
        name,
        ReadErrorKind::Corrupt,
        Location::File,
        format!("corrupt Parquet file: {e}"),
        "re-download the file; it may be truncated or still uploading",
    )
}

/// How rows reach the [`RollupBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    /// CUR batches whose group columns are dictionaries (or indexed values)
    /// go through [`CurGroups`]; anything else row by row.
    Grouped,
    /// Every row through [`Normaliser::add_row`] (for comparison in tests).
    #[cfg_attr(not(test), allow(dead_code))]
    RowByRow,
}

/// Read a Parquet file into `builder`, decoding only the columns curlew uses.
pub fn read_parquet<S: RowSink>(
    name: &str,
    file: File,
    builder: &mut S,
    opts: &ReadOptions,
) -> Result<FileReport, ReadError> {
    read_parquet_by(name, file, builder, opts, Path::Grouped)
}

/// Rows per record batch.
pub(super) const BATCH_ROWS: usize = 8192;

pub(super) fn read_parquet_by<S: RowSink>(
    name: &str,
    file: File,
    builder: &mut S,
    opts: &ReadOptions,
    path: Path,
) -> Result<FileReport, ReadError> {
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| corrupt(name, e))?;
    let p = Projection::of(name, meta, builder.export(), builder.dimensions())?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, p.meta.clone())
        .with_projection(p.mask.clone())
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| corrupt(name, e))?;
    let unwrap = |e: RangedError<Infallible>| match e {
        RangedError::Read(e) => e,
        RangedError::Source(never) => match never {},
    };
    let batches = reader.map(|b| b.map_err(|e| RangedError::Read(corrupt(name, e))));
    decoded_ahead(opts, batches, |batches| {
        consume::<Infallible, S>(name, &p, size, batches, builder, opts, path)
    })
    .map_err(unwrap)
}

/// `then(batches)`, with the batches (pages read, decompressed and decoded)
/// made on a thread of their own, two ahead of the grouping (the other core's
/// share of a file), when `opts` asks for threaded decompression. An early
/// return drops the receiver, which ends that thread.
pub(super) fn decoded_ahead<T: Send, R>(
    opts: &ReadOptions,
    batches: impl Iterator<Item = T> + Send,
    then: impl FnOnce(&mut dyn Iterator<Item = T>) -> R,
) -> R {
    if !opts.threaded_decompression {
        let mut batches = batches;
        return then(&mut batches);
    }
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        s.spawn(move || {
            for b in batches {
                if tx.send(b).is_err() {
                    break;
                }
            }
        });
        then(&mut rx.into_iter())
    })
}

/// What a file's schema says to read: its dialect, the columns curlew uses
/// and the projection of only those (however the bytes are fetched).
pub(super) struct Projection {
    names: Vec<String>,
    dialect: Dialect,
    columns: ColumnMap,
    /// Root columns read, sorted: the projection, in batch column order.
    roots: Vec<usize>,
    /// Fields read out of a map column instead (field, root, keys).
    fallbacks: Vec<(Field, usize, &'static [&'static str])>,
    /// Dimensions read out of a map column (field, root, dimension).
    dim_maps: Vec<(Field, usize, Dimension)>,
    /// Export mode: the export's fields, legacy tag columns and whole timestamps.
    export: bool,
    /// Legacy tag columns read (export mode only): (name, root).
    tags: Vec<(String, usize)>,
    /// The file's metadata, text columns hinted to arrive as dictionaries.
    pub(super) meta: ArrowReaderMetadata,
    pub(super) mask: ProjectionMask,
    row_group_rows: Vec<i64>,
}

impl Projection {
    pub(super) fn of(
        name: &str,
        meta: ArrowReaderMetadata,
        export: bool,
        dims: &Dimensions,
    ) -> Result<Projection, ReadError> {
        let schema = meta.schema().clone();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let (dialect, mut columns) =
            super::columns_of(name, &names, dims, export, Location::File, || {
                format!(
                    "the schema is not CUR, CUR 2.0 or FOCUS (first columns: {})",
                    names
                        .iter()
                        .take(4)
                        .map(|n| quoted(n.as_bytes()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        // A dimension in a map column (CUR 2.0 `resource_tags`): read per row
        // out of the map, as if it were a column of its own.
        let mut dim_maps: Vec<(Field, usize, Dimension)> = Vec::new();
        for (i, d) in dims.iter().enumerate() {
            let field = DIMS[i];
            if columns.get(field).is_none() {
                if let Some(m) = map_of(d.kind, &columns).and_then(|f| columns.get(f)) {
                    if matches!(schema.field(m).data_type(), DataType::Map(..)) {
                        columns.set(field, m);
                        dim_maps.push((field, m, d.clone()));
                    }
                }
            }
        }
        let mut roots = columns.used_columns_for(export);
        let tags = if export {
            super::legacy_tag_columns(&names)
        } else {
            Vec::new()
        };
        roots.extend(tags.iter().map(|(_, i)| *i));
        let mut fallbacks: Vec<(Field, usize, &'static [&'static str])> = Vec::new();
        for (field, map_col, keys) in MAP_FALLBACKS {
            if columns.get(*field).is_none() {
                if let Some(i) = names.iter().position(|n| n == map_col) {
                    if matches!(schema.field(i).data_type(), DataType::Map(..)) {
                        fallbacks.push((*field, i, keys));
                        roots.push(i);
                    }
                }
            }
        }
        roots.sort_unstable();
        roots.dedup();
        // Read the text columns we use as dictionaries: CUR text is dictionary-encoded
        // in Parquet, so this skips materialising a string per row.
        let text_roots: Vec<usize> = Field::ALL
            .iter()
            .filter(|f| !f.is_numeric() && (export || !f.is_export_only()))
            .flat_map(|f| [columns.get(*f), columns.alternate(*f)])
            .flatten()
            .collect();
        let hinted = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    if text_roots.contains(&i) && f.data_type() == &DataType::Utf8 {
                        Arc::new(f.as_ref().clone().with_data_type(DataType::Dictionary(
                            Box::new(DataType::Int32),
                            Box::new(DataType::Utf8),
                        )))
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>(),
        ));
        let meta = ArrowReaderMetadata::try_new(
            meta.metadata().clone(),
            ArrowReaderOptions::new().with_schema(hinted),
        )
        .unwrap_or(meta);
        let row_group_rows: Vec<i64> = meta
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        let mask = ProjectionMask::roots(meta.parquet_schema(), roots.iter().copied());
        Ok(Projection {
            names,
            dialect,
            columns,
            roots,
            fallbacks,
            dim_maps,
            export,
            tags,
            meta,
            mask,
            row_group_rows,
        })
    }
}

/// The projected record batches of a file (of `size` bytes) into `builder`.
pub(super) fn consume<E, S: RowSink>(
    name: &str,
    p: &Projection,
    size: u64,
    batches: impl Iterator<Item = Result<RecordBatch, RangedError<E>>>,
    builder: &mut S,
    opts: &ReadOptions,
    path: Path,
) -> Result<FileReport, RangedError<E>> {
    let Projection {
        names,
        dialect,
        columns,
        roots: projected,
        fallbacks,
        dim_maps,
        row_group_rows,
        export,
        tags: tag_roots,
        ..
    } = p;
    let dialect = *dialect;
    let export = *export;
    let mut norm = Normaliser::new(dialect, columns, builder.dimensions());
    let dimensions = builder.dimensions().len();
    let mut groups = (path == Path::Grouped && !dialect.is_focus() && builder.rollup().is_some())
        .then(|| CurGroups::new(dimensions));
    let mut rows_done: u64 = 0;
    let mut grouped_rows: u64 = 0;
    let total_rows: i64 = row_group_rows.iter().sum();
    for batch in batches {
        let batch: RecordBatch = batch?;
        let col_of = |root: usize| -> ArrayRef {
            let pos = projected
                .iter()
                .position(|r| *r == root)
                .expect("projected column");
            batch.column(pos).clone()
        };
        let mut text: Vec<TextCol> = Vec::with_capacity(Field::ALL.len());
        let mut num: Vec<NumCol> = Vec::with_capacity(Field::ALL.len());
        for f in Field::ALL {
            let (t, n) = match columns.get(*f) {
                Some(_) if f.is_export_only() && !export => (TextCol::None, NumCol::None),
                Some(root) => {
                    let a = col_of(root);
                    if f.is_numeric() {
                        (TextCol::None, num_col(&a))
                    } else if export {
                        (export_text_col(&a), NumCol::None)
                    } else {
                        (text_col(&a), NumCol::None)
                    }
                }
                None => (TextCol::None, NumCol::None),
            };
            text.push(t);
            num.push(n);
        }
        for (field, alt) in columns.with_alternates() {
            if !field.is_numeric() && (export || !field.is_export_only()) {
                let own = std::mem::replace(&mut text[field as usize], TextCol::None);
                text[field as usize] = own.or_else(&text_col(&col_of(alt)), batch.num_rows());
            }
        }
        for (field, root, keys) in fallbacks {
            let a = col_of(*root);
            text[*field as usize] = map_values(a.as_map(), |k| {
                keys.iter()
                    .position(|want| k == *want)
                    .map(|p| u8::MAX - p as u8)
            });
        }
        for (field, root, dim) in dim_maps {
            let a = col_of(*root);
            text[*field as usize] = map_values(a.as_map(), |k| {
                Some(dim.map_key_match(k)).filter(|m| *m > 0)
            });
        }
        let tags: Vec<(String, TextCol)> = tag_roots
            .iter()
            .map(|(name, root)| (name.clone(), export_text_col(&col_of(*root))))
            .collect();
        let n = batch.num_rows();
        let taken = groups.as_mut().is_some_and(|g| g.takes(&text));
        if taken {
            grouped_rows += n as u64;
        }
        let added = match (groups.as_mut(), builder.rollup()) {
            (Some(g), Some(rollup)) if taken => g.add_batch(&mut norm, rollup, &text, &num, n),
            _ => add_rows(&mut norm, &text, &num, &tags, n, builder),
        };
        if let Err((row, BadField { field, problem })) = added {
            let abs = rows_done + row as u64;
            let (rg, in_rg) = locate(row_group_rows, abs);
            let column = columns
                .get(field)
                .map_or_else(|| display_name(field, dialect), |i| names[i].clone());
            return Err(RangedError::Read(ReadError::new(
                name,
                ReadErrorKind::BadData,
                Location::RowGroup {
                    row_group: rg,
                    row: in_rg,
                    column,
                },
                problem,
                "fix or remove that row, then re-run",
            )));
        }
        rows_done += batch.num_rows() as u64;
        if let Some(p) = &opts.progress {
            let share = size.saturating_mul(batch.num_rows() as u64) / (total_rows.max(1) as u64);
            p.fetch_add(share, Ordering::Relaxed);
        }
    }
    drop(groups);
    tracing::debug!(file = name, rows = rows_done, grouped_rows, "parquet read");
    Ok(FileReport {
        dialect,
        rows: rows_done - norm.other_provider_rows,
        other_provider_rows: norm.other_provider_rows,
        grouped_rows,
    })
}

/// Rows `0..n` of a batch, one by one; on a bad value, its row and field.
fn add_rows<S: RowSink>(
    norm: &mut Normaliser,
    text: &[TextCol],
    num: &[NumCol],
    tags: &[(String, TextCol)],
    n: usize,
    sink: &mut S,
) -> Result<(), (usize, BadField)> {
    for row in 0..n {
        let r = ExportRow {
            row: BatchRow { text, num, row },
            tags,
        };
        sink.row(norm, &r).map_err(|e| (row, e))?;
    }
    Ok(())
}

/// A text column as the export reads it: timestamps whole (ISO 8601, UTC,
/// milliseconds), a map<string, string> as a JSON object (keys sorted),
/// everything else as [`text_col`] does.
fn export_text_col(a: &ArrayRef) -> TextCol {
    match a.data_type() {
        DataType::Timestamp(..) => {
            let ms = match arrow_cast::cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None)) {
                Ok(c) => c,
                Err(_) => return TextCol::None,
            };
            let t = ms.as_primitive::<TimestampMillisecondType>();
            let mut seen: hashbrown::HashMap<i64, u32> = hashbrown::HashMap::new();
            let mut values: Vec<Box<[u8]>> = Vec::new();
            let idx = (0..t.len())
                .map(|i| {
                    if t.is_null(i) {
                        return NO_VALUE;
                    }
                    let v = t.value(i);
                    *seen.entry(v).or_insert_with(|| {
                        values.push(format_ms(v).into_bytes().into());
                        (values.len() - 1) as u32
                    })
                })
                .collect();
            TextCol::Indexed(idx, values)
        }
        DataType::Map(..) => map_json(a.as_map()),
        _ => text_col(a),
    }
}

/// Milliseconds since the epoch -> `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let day = format_day(i32::try_from(days).unwrap_or(0));
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        String::from_utf8_lossy(&day),
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Per row, a map<string, string> column as a JSON object (keys sorted;
/// null and empty values left out; an empty map is null).
fn map_json(m: &MapArray) -> TextCol {
    map_rows(m, |entries| {
        let pairs: std::collections::BTreeMap<&str, &str> =
            entries.map(|(_, k, v)| (k, v)).collect();
        (!pairs.is_empty()).then(|| serde_json::to_string(&pairs).unwrap_or_default())
    })
}

/// Per row of a map<string, string> column, what `pick` makes of the row's
/// entries with a non-empty value (entry index, key, value; in map order),
/// interned into an indexed column (`None`, a null map: no value). The one
/// walk over a map column's rows, for [`map_json`] and [`map_values`].
fn map_rows<'a, V>(
    m: &'a MapArray,
    mut pick: impl FnMut(&mut dyn Iterator<Item = (usize, &'a str, &'a str)>) -> Option<V>,
) -> TextCol
where
    V: AsRef<[u8]> + Eq + std::hash::Hash,
{
    let (Some(k), Some(v)) = (
        m.keys().as_string_opt::<i32>(),
        m.values().as_string_opt::<i32>(),
    ) else {
        return TextCol::None;
    };
    let offsets = m.value_offsets();
    let mut idx = Vec::with_capacity(m.len());
    let mut seen: hashbrown::HashMap<V, u32> = hashbrown::HashMap::new();
    let mut values: Vec<Box<[u8]>> = Vec::new();
    for row in 0..m.len() {
        let found = if m.is_null(row) {
            None
        } else {
            let (s, e) = (offsets[row] as usize, offsets[row + 1] as usize);
            let mut entries = (s..e)
                .filter(|j| v.is_valid(*j) && !v.value(*j).is_empty())
                .map(|j| (j, k.value(j), v.value(j)));
            pick(&mut entries)
        };
        idx.push(match found {
            None => NO_VALUE,
            Some(val) => *seen.entry(val).or_insert_with_key(|val| {
                values.push(val.as_ref().into());
                (values.len() - 1) as u32
            }),
        });
    }
    TextCol::Indexed(idx, values)
}

/// Row group index and row within it of absolute row `abs`.
fn locate(row_groups: &[i64], abs: u64) -> (usize, u64) {
    let mut start = 0u64;
    for (i, n) in row_groups.iter().enumerate() {
        let n = *n as u64;
        if abs < start + n {
            return (i, abs - start);
        }
        start += n;
    }
    (row_groups.len().saturating_sub(1), abs - start)
}

fn text_col(a: &ArrayRef) -> TextCol {
    match a.data_type() {
        DataType::Utf8 => TextCol::Str(a.as_string::<i32>().clone()),
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = a.as_dictionary::<Int32Type>();
            TextCol::Dict(d.keys().clone(), d.values().as_string::<i32>().clone())
        }
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => {
                let t = a.as_primitive::<TimestampSecondType>();
                days_col::<86_400>(t.values().iter().copied(), a)
            }
            TimeUnit::Millisecond => {
                let t = a.as_primitive::<TimestampMillisecondType>();
                days_col::<86_400_000>(t.values().iter().copied(), a)
            }
            TimeUnit::Microsecond => {
                let t = a.as_primitive::<TimestampMicrosecondType>();
                days_col::<86_400_000_000>(t.values().iter().copied(), a)
            }
            TimeUnit::Nanosecond => {
                let t = a.as_primitive::<TimestampNanosecondType>();
                days_col::<86_400_000_000_000>(t.values().iter().copied(), a)
            }
        },
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>();
            days_col::<1>(d.values().iter().map(|v| i64::from(*v)), a)
        }
        DataType::Map(..) | DataType::Struct(..) | DataType::List(..) => TextCol::None,
        _ => match arrow_cast::cast(a, &DataType::Utf8) {
            Ok(s) => TextCol::Str(s.as_string::<i32>().clone()),
            Err(_) => TextCol::None,
        },
    }
}

/// Timestamps in units of `1/PER_DAY` day -> [`TextCol::Indexed`] days.
/// Consecutive rows of the same day cost a comparison each; days near the
/// first one are found in a table, others in a map.
fn days_col<const PER_DAY: i64>(values: impl Iterator<Item = i64>, array: &dyn Array) -> TextCol {
    const NEAR: i64 = 64;
    let has_nulls = array.null_count() > 0;
    let mut idx = Vec::with_capacity(array.len());
    let mut days: Vec<Box<[u8]>> = Vec::new();
    let mut near = [NO_VALUE; NEAR as usize];
    let mut far: hashbrown::HashMap<i64, u32> = hashbrown::HashMap::new();
    let mut base = None;
    // The current day: timestamps in lo..hi have index `cur`.
    let (mut lo, mut hi, mut cur) = (1i64, 0i64, 0u32);
    for (i, v) in values.enumerate() {
        if has_nulls && array.is_null(i) {
            idx.push(NO_VALUE);
            continue;
        }
        if v < lo || v >= hi {
            let d = v.div_euclid(PER_DAY);
            (lo, hi) = d
                .checked_mul(PER_DAY)
                .and_then(|lo| Some((lo, lo.checked_add(PER_DAY)?)))
                .unwrap_or((1, 0));
            let mut new_day = || {
                days.push(Box::new(format_day(d as i32)));
                (days.len() - 1) as u32
            };
            let base = *base.get_or_insert(d.saturating_sub(NEAR / 2));
            cur = match d.checked_sub(base) {
                Some(off @ 0..NEAR) => {
                    let j = &mut near[off as usize];
                    if *j == NO_VALUE {
                        *j = new_day();
                    }
                    *j
                }
                _ => *far.entry(d).or_insert_with(new_day),
            };
        }
        idx.push(cur);
    }
    TextCol::Indexed(idx, days)
}

/// Days since 1970-01-01 -> `YYYY-MM-DD`.
fn format_day(days: i32) -> [u8; 10] {
    // Howard Hinnant's civil_from_days: no allocation, no formatting machinery.
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out = *b"0000-00-00";
    let y = y.clamp(0, 9999) as u32;
    for (i, div) in [1000, 100, 10, 1].into_iter().enumerate() {
        out[i] = b'0' + (y / div % 10) as u8;
    }
    out[5] = b'0' + (m / 10) as u8;
    out[6] = b'0' + (m % 10) as u8;
    out[8] = b'0' + (d / 10) as u8;
    out[9] = b'0' + (d % 10) as u8;
    out
}

fn num_col(a: &ArrayRef) -> NumCol {
    match a.data_type() {
        DataType::Float64 => NumCol::F64(a.as_primitive::<Float64Type>().clone()),
        DataType::Float32 => NumCol::F32(a.as_primitive::<Float32Type>().clone()),
        DataType::Decimal128(_, s) if *s >= 0 => NumCol::Dec(
            a.as_primitive::<Decimal128Type>().clone(),
            u32::try_from(*s).unwrap_or(0),
        ),
        DataType::Int64 => NumCol::I64(a.as_primitive::<Int64Type>().clone()),
        DataType::Int32 => NumCol::I32(a.as_primitive::<Int32Type>().clone()),
        DataType::Utf8 => NumCol::Str(a.as_string::<i32>().clone()),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            match arrow_cast::cast(a, &DataType::Utf8) {
                Ok(s) => NumCol::Str(s.as_string::<i32>().clone()),
                Err(_) => NumCol::None,
            }
        }
        _ => NumCol::None,
    }
}

/// Per row, the non-empty value of the best-ranked key of a map<string,string>
/// column (`rank`: `None` for a key that does not count, higher is better;
/// between equals, the first).
fn map_values(m: &MapArray, rank: impl Fn(&str) -> Option<u8>) -> TextCol {
    map_rows(m, |entries| {
        entries
            .filter_map(|(j, k, v)| rank(k).map(|r| (r, j, v)))
            .min_by_key(|(r, j, _)| (u8::MAX - r, *j))
            .map(|(_, _, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_row_groups() {
        assert_eq!(&format_day(0), b"1970-01-01");
        assert_eq!(&format_day(17805), b"2018-10-01");
        assert_eq!(&format_day(19782), b"2024-02-29");
        assert_eq!(&format_day(-1), b"1969-12-31");
        assert_eq!(&format_day(11016), b"2000-02-29");
        assert_eq!(locate(&[10, 5], 0), (0, 0));
        assert_eq!(locate(&[10, 5], 12), (1, 2));
    }
}
