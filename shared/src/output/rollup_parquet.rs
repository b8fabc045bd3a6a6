//! The rollup as Parquet: FOCUS column names, money as DECIMAL(38,18), one
//! file per (tenant, billing period, revision), sorted by key so the bytes are
//! the same for the same input.

use crate::money::Money;
use crate::rollup::{Measure, PeriodRollup, Sums, KEY_COLUMNS};
use arrow_array::builder::{Date32Builder, Decimal128Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
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

/// Rows per record batch (and so per Parquet page run): bounds the writer's memory.
const BATCH: usize = 65_536;

/// Encode one period's attributed groups as Parquet (zstd), a batch at a time.
pub fn write_rollup(period: &str, r: &PeriodRollup) -> Result<Vec<u8>, OutputError> {
    let schema = Arc::new(schema());
    let period_days = days_of(&format!("{period}-01"))?;
    let write_err = |e: &dyn std::fmt::Display| OutputError::Write(e.to_string());
    // zstd level 1: a third of level 3's time on 16-byte decimals, a few percent larger.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("zstd level"),
        ))
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
    let mut w =
        ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).map_err(|e| write_err(&e))?;
    // The day of each distinct day string, parsed once.
    let mut days: Vec<Option<i32>> = vec![None; r.groups.strings().len()];
    let mut groups = r.groups.iter().enumerate().peekable();
    while groups.peek().is_some() {
        let n = BATCH.min(r.groups.len());
        let mut bp = Date32Builder::with_capacity(n);
        let mut day = Date32Builder::with_capacity(n);
        let mut text: Vec<StringBuilder> = (1..KEY_COLUMNS.len())
            .map(|_| StringBuilder::with_capacity(n, n * 16))
            .collect();
        let mut money: Vec<Decimal128Builder> = Measure::ALL
            .iter()
            .map(|_| Decimal128Builder::with_capacity(n))
            .collect();
        let mut count = Int64Builder::with_capacity(n);
        for (i, g) in groups.by_ref().take(BATCH) {
            bp.append_value(period_days);
            let d = r.groups.ids(i)[0] as usize;
            let v = match days[d] {
                Some(v) => v,
                None => *days[d].insert(days_of(g.key[0])?),
            };
            day.append_value(v);
            for (b, v) in text.iter_mut().zip(&g.key[1..]) {
                if v.is_empty() {
                    b.append_null();
                } else {
                    b.append_value(v);
                }
            }
            for (b, m) in money.iter_mut().zip(Measure::ALL) {
                b.append_option(g.units(m));
            }
            count.append_value(g.rows() as i64);
        }
        let mut cols: Vec<ArrayRef> = vec![Arc::new(bp.finish()), Arc::new(day.finish())];
        cols.extend(text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        for mut b in money {
            let a = b
                .finish()
                .with_precision_and_scale(38, SCALE as i8)
                .map_err(|e| write_err(&e))?;
            cols.push(Arc::new(a));
        }
        cols.push(Arc::new(count.finish()));
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| write_err(&e))?;
        w.write(&batch).map_err(|e| write_err(&e))?;
    }
    w.close().map_err(|e| write_err(&e))?;
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
