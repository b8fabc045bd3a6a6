//! The rollup as Parquet: FOCUS column names, money as DECIMAL(38,18), one
//! file per (tenant, billing period, revision), sorted by key so the bytes are
//! the same for the same input.

use crate::focus;
use crate::money::Money;
use crate::rollup::{Measure, PeriodRollup, Sums, KEY_COLUMNS};
use arrow_array::builder::{Decimal128Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, TimestampMillisecondType};
use arrow_array::{ArrayRef, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowColumnWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// FOCUS Date/Time: UTC instants, milliseconds (as AWS's own FOCUS export).
pub(crate) fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The type of an output column, as SQL over the file declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A UTC instant (FOCUS Date/Time).
    Time,
    Text,
    /// DECIMAL(38,18).
    Money,
    Count,
}

/// What one output column holds, in schema order.
#[derive(Debug, Clone, Copy)]
enum Column {
    BillingPeriodStart,
    /// Exclusive: the first instant of the next billing period.
    BillingPeriodEnd,
    ChargePeriodStart,
    /// Exclusive: the next day (the rollup's grain is the day).
    ChargePeriodEnd,
    /// `KEY_COLUMNS[i]` (i >= 1).
    Text(usize),
    /// The same value on every row.
    Constant(&'static str, &'static str),
    /// [`focus::service_category`] of the row's x_ServiceCode.
    ServiceCategory,
    /// [`focus::region_name`] of the row's RegionId.
    RegionName,
    /// [`focus::charge_class`] of the row's line item type and day.
    ChargeClass,
    Money(Measure),
    Count,
}

fn key_index(name: &str) -> usize {
    KEY_COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("a key column")
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::BillingPeriodStart => "BillingPeriodStart",
            Column::BillingPeriodEnd => "BillingPeriodEnd",
            Column::ChargePeriodStart => "ChargePeriodStart",
            Column::ChargePeriodEnd => "ChargePeriodEnd",
            Column::Text(k) => KEY_COLUMNS[k],
            Column::Constant(name, _) => name,
            Column::ServiceCategory => "ServiceCategory",
            Column::RegionName => "RegionName",
            Column::ChargeClass => "ChargeClass",
            Column::Money(m) => m.column(),
            Column::Count => "x_LineItemCount",
        }
    }

    fn kind(self) -> ColumnKind {
        match self {
            Column::BillingPeriodStart
            | Column::BillingPeriodEnd
            | Column::ChargePeriodStart
            | Column::ChargePeriodEnd => ColumnKind::Time,
            Column::Money(_) => ColumnKind::Money,
            Column::Count => ColumnKind::Count,
            _ => ColumnKind::Text,
        }
    }

    /// Whether the column may hold nulls (FOCUS: the periods, names,
    /// categories and costs never do; a key column is null only where the
    /// input lacks it, as a minimal CSV without a currency column).
    fn nullable(self) -> bool {
        match self {
            Column::Text(_) | Column::RegionName | Column::ChargeClass => true,
            Column::Money(m) => !matches!(
                m,
                Measure::Billed | Measure::Effective | Measure::List | Measure::Contracted
            ),
            _ => false,
        }
    }
}

fn columns() -> Vec<Column> {
    let text = |name: &str| Column::Text(key_index(name));
    let mut c = vec![
        Column::BillingPeriodStart,
        Column::BillingPeriodEnd,
        Column::ChargePeriodStart,
        Column::ChargePeriodEnd,
        text("BillingAccountId"),
        text("SubAccountId"),
        Column::Constant("ProviderName", focus::PROVIDER_NAME),
        Column::Constant("PublisherName", focus::PUBLISHER_NAME),
        Column::Constant("InvoiceIssuerName", focus::INVOICE_ISSUER_NAME),
        text("x_ServiceCode"),
        text("ServiceName"),
        Column::ServiceCategory,
        text("RegionId"),
        Column::RegionName,
        text("ChargeCategory"),
        Column::ChargeClass,
        text("x_LineItemType"),
        text("x_UsageType"),
        text("BillingCurrency"),
        text("Tags"),
        text("x_CostCategories"),
    ];
    c.extend(Measure::ALL.iter().map(|m| Column::Money(*m)));
    c.push(Column::Count);
    c
}

/// Every column of rollup.parquet in file order, with its kind: what SQL
/// over the file declares (`crate::sql`), from the one list the writer uses.
pub fn output_columns() -> Vec<(&'static str, ColumnKind)> {
    columns()
        .into_iter()
        .map(|c| (c.name(), c.kind()))
        .collect()
}

fn schema() -> Schema {
    Schema::new(
        columns()
            .into_iter()
            .map(|c| {
                let t = match c.kind() {
                    ColumnKind::Time => time_type(),
                    ColumnKind::Text => DataType::Utf8,
                    ColumnKind::Money => money_type(),
                    ColumnKind::Count => DataType::Int64,
                };
                Field::new(c.name(), t, c.nullable())
            })
            .collect::<Vec<_>>(),
    )
}

pub(crate) const MS_PER_DAY: i64 = 86_400_000;

fn days_of(date: &str) -> Result<i32, OutputError> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| OutputError::Write(format!("bad date {date:?}: {e}")))?;
    Ok((d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
}

/// The billing period's bounds in days since the epoch: its first day and
/// the first day of the next.
pub(crate) fn period_bounds(period: &str) -> Result<(i32, i32), OutputError> {
    let start = days_of(&format!("{period}-01"))?;
    let first = chrono::NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d")
        .map_err(|e| OutputError::Write(format!("bad period {period:?}: {e}")))?;
    let next = first + chrono::Months::new(1);
    Ok((start, days_of(&next.format("%Y-%m-%d").to_string())?))
}

/// Rows per array handed to a column writer: bounds the writer's memory.
const BATCH: usize = 65_536;
/// Rows per row group (readers split work by row group). A row group's
/// encoded columns are held until it is closed, beside the file so far: at
/// 626k groups one row group of all of them took about 30 MB more peak RSS
/// than this size.
const ROW_GROUP: usize = 1 << 17;
/// Threads encoding a row group, each taking the next column left (this is
/// most of a commit's time at hundreds of thousands of groups).
const ENCODERS: usize = 2;

/// The order the encoders take a row group's columns in: the costliest
/// first (money, then the key text columns, then the rest), so that the last
/// columns taken are short and neither encoder waits long for the other.
fn encode_order(cols: &[Column]) -> Vec<usize> {
    let cost = |c: &Column| match c {
        Column::Money(_) => 0,
        Column::Text(_) => 1,
        Column::Count => 2,
        _ => 3,
    };
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&i| cost(&cols[i]));
    order
}

fn write_err(e: &dyn std::fmt::Display) -> OutputError {
    OutputError::Write(e.to_string())
}

/// A text column of `rows`, each row's value from `value` (`None`: null).
fn texts<'s>(rows: std::ops::Range<usize>, value: impl Fn(usize) -> Option<&'s str>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
    for i in rows {
        b.append_option(value(i));
    }
    Arc::new(b.finish())
}

/// What every column of one period's file needs: its groups, the period and
/// its bounds in days since the epoch.
struct Context<'a> {
    groups: &'a crate::rollup::Groups,
    period: &'a str,
    period_days: (i32, i32),
}

/// What the derived columns make of each distinct key string, computed once
/// per string (a rollup has far fewer strings than rows).
struct PerString<'s> {
    /// Days since the epoch of a `YYYY-MM-DD` day.
    day: Vec<Option<i32>>,
    /// FOCUS RegionName of a region code.
    region_name: Vec<Option<Option<&'s str>>>,
    /// FOCUS ServiceCategory of a service code.
    category: Vec<Option<&'static str>>,
}

impl PerString<'_> {
    fn new(strings: usize) -> Self {
        PerString {
            day: vec![None; strings],
            region_name: vec![None; strings],
            category: vec![None; strings],
        }
    }
}

/// Rows `rows` of one column as an Arrow array.
fn column_array<'s>(
    col: Column,
    cx: &Context<'s>,
    rows: std::ops::Range<usize>,
    per: &mut PerString<'s>,
) -> Result<ArrayRef, OutputError> {
    let n = rows.len();
    let groups = cx.groups;
    let strings = groups.strings();
    let text_of = |i: usize, k: usize| strings[groups.ids(i)[k] as usize].as_str();
    let (code, region, line_item_type) = (
        key_index("x_ServiceCode"),
        key_index("RegionId"),
        key_index("x_LineItemType"),
    );
    let time = |days: i32| i64::from(days) * MS_PER_DAY;
    let times = |values: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
    };
    Ok(match col {
        Column::BillingPeriodStart => times(vec![time(cx.period_days.0); n]),
        Column::BillingPeriodEnd => times(vec![time(cx.period_days.1); n]),
        Column::ChargePeriodStart | Column::ChargePeriodEnd => {
            let end = matches!(col, Column::ChargePeriodEnd);
            let mut v = Vec::with_capacity(n);
            for i in rows {
                let d = groups.ids(i)[0] as usize;
                let day = match per.day[d] {
                    Some(v) => v,
                    None => *per.day[d].insert(days_of(&strings[d])?),
                };
                v.push(time(day + i32::from(end)));
            }
            times(v)
        }
        Column::Text(k) => texts(rows, |i| {
            let v = strings[groups.ids(i)[k] as usize].as_str();
            (!v.is_empty()).then_some(v)
        }),
        Column::Constant(_, value) => texts(rows, |_| Some(value)),
        Column::ServiceCategory => {
            let category = &mut per.category;
            let mut b = StringBuilder::with_capacity(n, n * 16);
            for i in rows {
                let id = groups.ids(i)[code] as usize;
                b.append_value(
                    *category[id].get_or_insert_with(|| focus::service_category(&strings[id])),
                );
            }
            Arc::new(b.finish())
        }
        Column::RegionName => {
            let name = &mut per.region_name;
            let mut b = StringBuilder::with_capacity(n, n * 16);
            for i in rows {
                let id = groups.ids(i)[region] as usize;
                b.append_option(*name[id].get_or_insert_with(|| focus::region_name(&strings[id])));
            }
            Arc::new(b.finish())
        }
        Column::ChargeClass => texts(rows, |i| {
            focus::charge_class(text_of(i, line_item_type), text_of(i, 0), cx.period)
        }),
        Column::Money(m) => {
            let mut b = Decimal128Builder::with_capacity(n);
            for i in rows {
                let g = groups.values(i);
                let units = |m: Measure| {
                    g.units(m).map_err(|v| {
                        OutputError::Write(format!(
                            "{} of the group {:?} is {v}: beyond DECIMAL(38,18), the rollup's type for money and quantities. What to do: check the input for a corrupt amount",
                            m.column(),
                            groups.get(i).key
                        ))
                    })
                };
                let mut v = units(m)?;
                if v.is_none() && !col.nullable() {
                    // FOCUS: never null. Every reader sets these; a group
                    // without one (none yet) states what was billed.
                    v = Some(units(Measure::Billed)?.unwrap_or(0));
                }
                b.append_option(v);
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
                b.append_value(groups.values(i).rows() as i64);
            }
            Arc::new(b.finish())
        }
    })
}

/// Bytes reserved per group for the encoded rollup: more than it takes.
const RESERVE_PER_GROUP: usize = 96;

/// Encode one period's attributed groups as Parquet (zstd): row groups of
/// [`ROW_GROUP`] rows, each encoded by [`ENCODERS`] threads that take its
/// columns in [`encode_order`], [`BATCH`] rows at a time. The bytes depend only on the groups.
pub fn write_rollup(period: &str, r: &PeriodRollup) -> Result<Vec<u8>, OutputError> {
    write_rollup_in(period, r, ROW_GROUP, BATCH)
}

fn write_rollup_in(
    period: &str,
    r: &PeriodRollup,
    row_group: usize,
    batch: usize,
) -> Result<Vec<u8>, OutputError> {
    let schema = Arc::new(schema());
    let cx = Context {
        groups: &r.groups,
        period,
        period_days: period_bounds(period)?,
    };
    // zstd level 1: a third of level 3's time on 16-byte decimals, a few percent larger.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("zstd level"),
        ))
        .set_max_row_group_row_count(Some(row_group))
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
    // Reserved once (rollups take about 60 bytes a group; pages not written
    // to are never touched): growing by doubling copied the file over again.
    let mut buf = Vec::with_capacity(r.groups.len() * RESERVE_PER_GROUP + (64 << 10));
    let (mut file, factory) = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))
        .and_then(|w| w.into_serialized_writer())
        .map_err(|e| write_err(&e))?;
    let cols = columns();
    let groups = &r.groups;
    let n_strings = groups.strings().len();
    for (index, start) in (0..groups.len()).step_by(row_group).enumerate() {
        let rows = start..(start + row_group).min(groups.len());
        // The encoders take the next column left, largest first, so that
        // neither waits on the other at the row group's end.
        let writers: Vec<Mutex<Option<ArrowColumnWriter>>> = factory
            .create_column_writers(index)
            .map_err(|e| write_err(&e))?
            .into_iter()
            .map(|w| Mutex::new(Some(w)))
            .collect();
        let order = encode_order(&cols);
        let next = AtomicUsize::new(0);
        let encode = || {
            let mut per = PerString::new(n_strings);
            let mut done = Vec::new();
            while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut w = writers[i]
                    .lock()
                    .expect("column writer lock")
                    .take()
                    .expect("each column is taken once");
                for lo in rows.clone().step_by(batch) {
                    let hi = (lo + batch).min(rows.end);
                    let a = column_array(cols[i], &cx, lo..hi, &mut per)?;
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
            let handles: Vec<_> = (0..ENCODERS).map(|_| s.spawn(encode)).collect();
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

/// A DECIMAL(38,18) value as a decimal: integer and fraction apart, since a
/// decimal's 96-bit mantissa cannot hold 18 decimals of a value >= 8e10.
/// `None` when the value has more significant digits than a decimal holds
/// (curlew never writes one: its sums are decimals).
pub(crate) fn from_i128(v: i128) -> Option<Money> {
    let unit = 10i128.pow(SCALE);
    let int = Money::try_from_i128_with_scale(v / unit, 0).ok()?;
    let frac = Money::from_i128_with_scale(v % unit, SCALE).normalize();
    Some(int.checked_add(frac)?.normalize())
}

/// Days since the epoch of each row of a ChargePeriodStart column: a UTC
/// timestamp (ms), or a DATE in rollups written before the columns followed
/// FOCUS 1.2 (stores keep those revisions; they must still read).
fn epoch_days(a: &ArrayRef) -> Result<Vec<i64>, String> {
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(a
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .iter()
            .map(|v| v.div_euclid(MS_PER_DAY))
            .collect()),
        DataType::Date32 => Ok(a
            .as_primitive::<Date32Type>()
            .values()
            .iter()
            .map(|v| i64::from(*v))
            .collect()),
        other => Err(format!(
            "ChargePeriodStart is {other}, neither a timestamp (ms) nor a date"
        )),
    }
}

/// Decode a rollup file written by [`write_rollup`] (or by a version of
/// curlew whose periods were DATE columns).
pub fn read_rollup(key: &str, bytes: Vec<u8>) -> Result<Vec<RollupRow>, OutputError> {
    let mut out = Vec::new();
    for_each_rollup_row(key, bytes, |r| out.push(r))?;
    Ok(out)
}

/// Decode a rollup file row by row, handing each to `visit` (memory: one
/// batch, not the file's rows: how a diff re-aggregates a large rollup).
pub fn for_each_rollup_row(
    key: &str,
    bytes: impl Into<bytes::Bytes>,
    mut visit: impl FnMut(RollupRow),
) -> Result<(), OutputError> {
    let err = |e: &dyn std::fmt::Display| OutputError::Read {
        key: key.into(),
        problem: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.into())
        .map_err(|e| err(&e))?
        .build()
        .map_err(|e| err(&e))?;
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| err(&format!("column {name} missing")))
        };
        let day = epoch_days(col("ChargePeriodStart")?).map_err(|e| err(&e))?;
        // Tags and x_CostCategories came with dimensions: a rollup written
        // before them has neither (no dimension: null).
        let texts: Vec<_> = KEY_COLUMNS[1..]
            .iter()
            .map(|c| match batch.column_by_name(c) {
                None if matches!(*c, "Tags" | "x_CostCategories") => {
                    Ok(arrow_array::StringArray::new_null(batch.num_rows()))
                }
                _ => col(c).map(|a| a.as_string::<i32>().clone()),
            })
            .collect::<Result<_, _>>()?;
        let money: Vec<_> = Measure::ALL
            .iter()
            .map(|m| col(m.column()).map(|a| a.as_primitive::<Decimal128Type>().clone()))
            .collect::<Result<_, _>>()?;
        let count = col("x_LineItemCount")?.as_primitive::<Int64Type>().clone();
        for (i, days) in day.iter().enumerate() {
            let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                + chrono::Duration::days(*days);
            let mut values = [None; Measure::ALL.len()];
            for (v, (a, m)) in values.iter_mut().zip(money.iter().zip(Measure::ALL)) {
                if arrow_array::Array::is_valid(a, i) {
                    *v = Some(from_i128(a.value(i)).ok_or_else(|| {
                        err(&format!(
                            "{} = {}e-18 in row {i} has more digits than a decimal holds",
                            m.column(),
                            a.value(i)
                        ))
                    })?);
                }
            }
            let get =
                |m: Measure| values[Measure::ALL.iter().position(|x| *x == m).expect("measure")];
            visit(RollupRow {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charge::Measures;
    use crate::money::dec;
    use crate::rollup::{GroupKey, LineItem, RollupBuilder};

    /// 23 groups over several days and accounts, money with 18 decimals and
    /// past the fixed-point range, one measure absent.
    fn rollup() -> PeriodRollup {
        let mut b = RollupBuilder::new(None);
        let days: Vec<String> = (1..=5).map(|d| format!("2024-01-{d:02}")).collect();
        let accounts = [
            "111111111111",
            "222222222222",
            "333333333333",
            "444444444444",
            "",
        ];
        for i in 0..23usize {
            let cost = match i % 3 {
                0 => format!("{i}.123456789012345678"),
                1 => format!("9{i}000000000.5"),
                _ => format!("-{i}.25"),
            };
            b.add(&LineItem {
                group: GroupKey {
                    period: b"2024-01",
                    day: days[i % 5].as_bytes(),
                    payer: b"999999999999",
                    account: accounts[(i / 5) % 5].as_bytes(),
                    service_code: [&b"AmazonEC2"[..], b"AmazonS3", b"AWSNewThing"][i % 3],
                    service_name: b"Amazon Elastic Compute Cloud",
                    region: [&b"us-east-1"[..], b"eu-west-1", b"", b"xx-north-9"][i % 4],
                    charge_category: b"Usage",
                    line_item_type: b"Usage",
                    usage_type: b"BoxUsage:t3.micro",
                    currency: b"USD",
                    tags: b"",
                    cost_categories: b"",
                },
                measures: Measures {
                    billed: dec(&cost),
                    effective: dec(&cost),
                    contracted: Some(dec(&cost)),
                    unblended: (i % 2 == 0).then(|| dec(&cost)),
                    ..Measures::default()
                },
            });
        }
        b.finish().remove("2024-01").expect("period")
    }

    #[test]
    fn row_groups_and_batches_change_the_layout_not_the_rows() {
        let r = rollup();
        assert_eq!(r.groups.len(), 23);
        let one = write_rollup("2024-01", &r).expect("write");
        let split = write_rollup_in("2024-01", &r, 4, 3).expect("write");
        let groups_of = |b: &[u8]| {
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(b.to_vec()))
                .expect("parquet")
                .metadata()
                .num_row_groups()
        };
        assert_eq!(groups_of(&one), 1);
        assert_eq!(groups_of(&split), 6);
        let rows = read_rollup("one", one.clone()).expect("read");
        // The encoders take columns in whatever order they finish; the file
        // is the same every time.
        for _ in 0..8 {
            assert_eq!(write_rollup_in("2024-01", &r, 4, 3).expect("write"), split);
        }
        assert_eq!(rows, read_rollup("split", split).expect("read"));
        // What was summed is what is read back, group by group, exactly.
        let want: Vec<_> = r.groups.iter().map(|g| g.sums()).collect();
        let got: Vec<_> = rows.iter().map(|row| row.sums.clone()).collect();
        assert_eq!(got, want);
        // Deterministic: the same groups, the same bytes.
        assert_eq!(write_rollup("2024-01", &r).expect("write"), one);
    }

    /// RegionName and ServiceCategory, derived once per distinct string, are
    /// each row's own across batches and row groups (unknown region: its code;
    /// no region: null; unknown service: Other).
    #[test]
    fn derived_columns_follow_each_row() {
        let r = rollup();
        let bytes = write_rollup_in("2024-01", &r, 4, 3).expect("write");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .expect("parquet")
            .build()
            .expect("reader");
        let mut seen = std::collections::BTreeSet::new();
        for batch in reader {
            let batch = batch.expect("batch");
            let text = |name: &str| {
                let a = batch
                    .column_by_name(name)
                    .expect(name)
                    .as_string::<i32>()
                    .clone();
                a.iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>()
            };
            let (region, name) = (text("RegionId"), text("RegionName"));
            let (code, category) = (text("x_ServiceCode"), text("ServiceCategory"));
            for i in 0..batch.num_rows() {
                let id = region[i].clone().unwrap_or_default();
                assert_eq!(name[i].as_deref(), focus::region_name(&id), "row {i}");
                let c = code[i].clone().unwrap_or_default();
                assert_eq!(category[i].as_deref(), Some(focus::service_category(&c)));
                seen.insert((name[i].clone(), category[i].clone()));
            }
        }
        let names: std::collections::BTreeSet<_> = seen.iter().map(|s| s.0.clone()).collect();
        assert_eq!(
            names,
            [
                None,
                Some("Europe (Ireland)".to_owned()),
                Some("US East (N. Virginia)".to_owned()),
                Some("xx-north-9".to_owned())
            ]
            .into_iter()
            .collect()
        );
        let categories: std::collections::BTreeSet<_> = seen.iter().map(|s| s.1.clone()).collect();
        assert_eq!(categories.len(), 3, "{categories:?}");
    }

    /// A revision written before the periods were FOCUS Date/Time (DATE
    /// columns, no derived columns) still reads, with the same rows.
    #[test]
    fn a_rollup_with_date_columns_of_an_older_version_still_reads() {
        use arrow_array::builder::Date32Builder;
        let r = rollup();
        let rows = read_rollup("new", write_rollup("2024-01", &r).expect("write")).unwrap();
        let groups = &r.groups;
        let n = groups.len();
        let mut fields = vec![
            Field::new("BillingPeriodStart", DataType::Date32, false),
            Field::new("ChargePeriodStart", DataType::Date32, false),
        ];
        let mut arrays: Vec<ArrayRef> = Vec::new();
        let mut bp = Date32Builder::new();
        bp.append_value_n(days_of("2024-01-01").unwrap(), n);
        arrays.push(Arc::new(bp.finish()));
        let mut cp = Date32Builder::new();
        for i in 0..n {
            cp.append_value(days_of(&groups.strings()[groups.ids(i)[0] as usize]).unwrap());
        }
        arrays.push(Arc::new(cp.finish()));
        for (k, c) in KEY_COLUMNS.iter().enumerate().skip(1) {
            fields.push(Field::new(*c, DataType::Utf8, true));
            arrays.push(texts(0..n, |i| {
                let v = groups.strings()[groups.ids(i)[k] as usize].as_str();
                (!v.is_empty()).then_some(v)
            }));
        }
        for m in Measure::ALL {
            fields.push(Field::new(m.column(), money_type(), true));
            let mut b = Decimal128Builder::new();
            for i in 0..n {
                b.append_option(groups.get(i).units(m).unwrap());
            }
            arrays.push(Arc::new(
                b.finish().with_precision_and_scale(38, 18).unwrap(),
            ));
        }
        fields.push(Field::new("x_LineItemCount", DataType::Int64, false));
        let mut c = Int64Builder::new();
        for i in 0..n {
            c.append_value(groups.get(i).rows() as i64);
        }
        arrays.push(Arc::new(c.finish()));
        let schema = Arc::new(Schema::new(fields));
        let batch = arrow_array::RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let mut old = Vec::new();
        let mut w = ArrowWriter::try_new(&mut old, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        assert_eq!(read_rollup("old", old).unwrap(), rows);
    }

    #[test]
    fn a_sum_beyond_decimal_38_18_is_an_error_naming_it() {
        let mut b = RollupBuilder::new(None);
        let big = dec("123456789012345678901.5");
        b.add(&LineItem {
            group: GroupKey {
                period: b"2024-01",
                day: b"2024-01-01",
                payer: b"999999999999",
                account: b"111111111111",
                service_code: b"AmazonS3",
                service_name: b"Amazon Simple Storage Service",
                region: b"us-east-1",
                charge_category: b"Usage",
                line_item_type: b"Usage",
                usage_type: b"Requests-Tier1",
                currency: b"USD",
                tags: br#"{"team":"a"}"#,
                cost_categories: b"",
            },
            measures: Measures {
                usage_amount: big,
                ..Measures::default()
            },
        });
        let r = b.finish().remove("2024-01").expect("period");
        let e = write_rollup("2024-01", &r).unwrap_err().to_string();
        assert!(e.contains("ConsumedQuantity"), "{e}");
        assert!(
            e.contains("123456789012345678901.5") && e.contains("DECIMAL(38,18)"),
            "{e}"
        );
    }
}
