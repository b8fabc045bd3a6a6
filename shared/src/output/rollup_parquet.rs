//! The rollup as Parquet: FOCUS column names, money as DECIMAL(38,18), one
//! file per (tenant, billing period, revision), sorted by key so the bytes are
//! the same for the same input.

use crate::money::Money;
use crate::rollup::{Measure, PeriodRollup, Sums, KEY_COLUMNS};
use arrow_array::builder::{Date32Builder, Decimal128Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::sync::Arc;

const SCALE: u32 = 18;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing the rollup: {0}")]
    Write(String),
    #[error("reading rollup {key}: {problem}. What to do: the file is damaged; re-run `curlew ingest` to rebuild the revision")]
    Read { key: String, problem: String },
}

fn money_type() -> DataType {
    DataType::Decimal128(38, SCALE as i8)
}

fn schema() -> Schema {
    let mut fields = vec![
        Field::new("BillingPeriodStart", DataType::Date32, false),
        Field::new("ChargePeriodStart", DataType::Date32, false),
    ];
    for c in &KEY_COLUMNS[1..] {
        fields.push(Field::new(*c, DataType::Utf8, true));
    }
    for m in Measure::ALL {
        fields.push(Field::new(m.column(), money_type(), true));
    }
    fields.push(Field::new("x_LineItemCount", DataType::Int64, false));
    Schema::new(fields)
}

fn days_of(date: &str) -> Result<i32, OutputError> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| OutputError::Write(format!("bad date {date:?}: {e}")))?;
    Ok((d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
}

/// Rows per array handed to a column writer: bounds the writer's memory.
const BATCH: usize = 65_536;
/// Rows per row group (readers split work by row group).
const ROW_GROUP: usize = 1 << 20;
/// Threads encoding a row group, each a share of the columns (this is most of
/// a commit's time at hundreds of thousands of groups).
const ENCODERS: usize = 2;

/// What one output column holds, in schema order.
#[derive(Clone, Copy)]
enum Column {
    BillingPeriodStart,
    ChargePeriodStart,
    /// `KEY_COLUMNS[i]` (i >= 1).
    Text(usize),
    Money(Measure),
    Count,
}

fn columns() -> Vec<Column> {
    let mut c = vec![Column::BillingPeriodStart, Column::ChargePeriodStart];
    c.extend((1..KEY_COLUMNS.len()).map(Column::Text));
    c.extend(Measure::ALL.iter().map(|m| Column::Money(*m)));
    c.push(Column::Count);
    c
}

fn write_err(e: &dyn std::fmt::Display) -> OutputError {
    OutputError::Write(e.to_string())
}

/// Rows `rows` of one column as an Arrow array. `days` caches the day of each
/// distinct day string (parsed once).
fn column_array(
    col: Column,
    groups: &crate::rollup::Groups,
    rows: std::ops::Range<usize>,
    period_days: i32,
    days: &mut [Option<i32>],
) -> Result<ArrayRef, OutputError> {
    let n = rows.len();
    Ok(match col {
        Column::BillingPeriodStart => {
            let mut b = Date32Builder::with_capacity(n);
            b.append_value_n(period_days, n);
            Arc::new(b.finish())
        }
        Column::ChargePeriodStart => {
            let mut b = Date32Builder::with_capacity(n);
            for i in rows {
                let d = groups.ids(i)[0] as usize;
                let v = match days[d] {
                    Some(v) => v,
                    None => *days[d].insert(days_of(&groups.strings()[d])?),
                };
                b.append_value(v);
            }
            Arc::new(b.finish())
        }
        Column::Text(k) => {
            let strings = groups.strings();
            let mut b = StringBuilder::with_capacity(n, n * 16);
            for i in rows {
                let v = &strings[groups.ids(i)[k] as usize];
                if v.is_empty() {
                    b.append_null();
                } else {
                    b.append_value(v);
                }
            }
            Arc::new(b.finish())
        }
        Column::Money(m) => {
            let mut b = Decimal128Builder::with_capacity(n);
            for i in rows {
                b.append_option(groups.get(i).units(m));
            }
            Arc::new(
                b.finish()
                    .with_precision_and_scale(38, SCALE as i8)
                    .map_err(|e| write_err(&e))?,
            )
        }
        Column::Count => {
            let mut b = Int64Builder::with_capacity(n);
            for i in rows {
                b.append_value(groups.get(i).rows() as i64);
            }
            Arc::new(b.finish())
        }
    })
}

/// Encode one period's attributed groups as Parquet (zstd): row groups of
/// [`ROW_GROUP`] rows, each encoded by [`ENCODERS`] threads that share its
/// columns, [`BATCH`] rows at a time. The bytes depend only on the groups.
pub fn write_rollup(period: &str, r: &PeriodRollup) -> Result<Vec<u8>, OutputError> {
    let schema = Arc::new(schema());
    let period_days = days_of(&format!("{period}-01"))?;
    // zstd level 1: a third of level 3's time on 16-byte decimals, a few percent larger.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .set_created_by("curlew".into());
    // Money and counts are nearly all distinct: no dictionary, no statistics.
    for c in Measure::ALL
        .iter()
        .map(|m| m.column())
        .chain(["x_LineItemCount"])
    {
        props = props
            .set_column_statistics_enabled(
                c.into(),
                parquet::file::properties::EnabledStatistics::None,
            )
            .set_column_dictionary_enabled(c.into(), false);
    }
    let props = props.build();
    let mut buf = Vec::new();
    let (mut file, factory) = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))
        .and_then(|w| w.into_serialized_writer())
        .map_err(|e| write_err(&e))?;
    let cols = columns();
    let groups = &r.groups;
    let n_strings = groups.strings().len();
    for (index, start) in (0..groups.len()).step_by(ROW_GROUP).enumerate() {
        let rows = start..(start + ROW_GROUP).min(groups.len());
        let mut shares: Vec<Vec<(usize, ArrowColumnWriter)>> =
            (0..ENCODERS).map(|_| Vec::new()).collect();
        for (i, w) in factory
            .create_column_writers(index)
            .map_err(|e| write_err(&e))?
            .into_iter()
            .enumerate()
        {
            shares[i % ENCODERS].push((i, w));
        }
        let encode = |share: Vec<(usize, ArrowColumnWriter)>| {
            let mut days = vec![None; n_strings];
            let mut done = Vec::with_capacity(share.len());
            for (i, mut w) in share {
                for lo in rows.clone().step_by(BATCH) {
                    let hi = (lo + BATCH).min(rows.end);
                    let a = column_array(cols[i], groups, lo..hi, period_days, &mut days)?;
                    for leaf in
                        compute_leaves(&schema.fields()[i], &a).map_err(|e| write_err(&e))?
                    {
                        w.write(&leaf).map_err(|e| write_err(&e))?;
                    }
                }
                done.push((i, w.close().map_err(|e| write_err(&e))?));
            }
            Ok::<_, OutputError>(done)
        };
        let mut chunks: Vec<(usize, ArrowColumnChunk)> = std::thread::scope(|s| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|share| s.spawn(|| encode(share)))
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.join().expect("rollup encoder panicked")?);
            }
            Ok::<_, OutputError>(all)
        })?;
        chunks.sort_by_key(|(i, _)| *i);
        let mut rg = file.next_row_group().map_err(|e| write_err(&e))?;
        for (_, c) in chunks {
            c.append_to_row_group(&mut rg).map_err(|e| write_err(&e))?;
        }
        rg.close().map_err(|e| write_err(&e))?;
    }
    file.close().map_err(|e| write_err(&e))?;
    Ok(buf)
}

/// One row of a committed rollup, as `curlew report` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// KEY_COLUMNS[1..] values (empty for null).
    pub key: Vec<String>,
    pub sums: Sums,
}

fn from_i128(v: i128) -> Money {
    let mut m = Money::from_i128_with_scale(v, SCALE);
    m = m.normalize();
    m
}

/// Decode a rollup file written by [`write_rollup`].
pub fn read_rollup(key: &str, bytes: Vec<u8>) -> Result<Vec<RollupRow>, OutputError> {
    let err = |e: &dyn std::fmt::Display| OutputError::Read {
        key: key.into(),
        problem: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| err(&e))?
        .build()
        .map_err(|e| err(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| err(&format!("column {name} missing")))
        };
        let day = col("ChargePeriodStart")?
            .as_primitive::<Date32Type>()
            .clone();
        let texts: Vec<_> = KEY_COLUMNS[1..]
            .iter()
            .map(|c| col(c).map(|a| a.as_string::<i32>().clone()))
            .collect::<Result<_, _>>()?;
        let money: Vec<_> = Measure::ALL
            .iter()
            .map(|m| col(m.column()).map(|a| a.as_primitive::<Decimal128Type>().clone()))
            .collect::<Result<_, _>>()?;
        let count = col("x_LineItemCount")?.as_primitive::<Int64Type>().clone();
        for i in 0..batch.num_rows() {
            let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                + chrono::Duration::days(i64::from(day.value(i)));
            let get = |m: Measure| {
                let a = &money[Measure::ALL.iter().position(|x| *x == m).expect("measure")];
                arrow_array::Array::is_valid(a, i).then(|| from_i128(a.value(i)))
            };
            out.push(RollupRow {
                day: d.format("%Y-%m-%d").to_string(),
                key: texts
                    .iter()
                    .map(|t| {
                        if arrow_array::Array::is_valid(t, i) {
                            t.value(i).to_owned()
                        } else {
                            String::new()
                        }
                    })
                    .collect(),
                sums: Sums::from_measures(count.value(i) as u64, get),
            });
        }
    }
    Ok(out)
}
