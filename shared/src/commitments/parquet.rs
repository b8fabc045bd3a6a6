//! `commitments.parquet`: one row per commitment (utilization) and per usage
//! account (coverage), money and ratios as DECIMAL(38,18) like the rollup,
//! sorted, so the same input gives the same bytes.

use super::{CommitmentSums, Commitments, Coverage, Kind, Utilization};
use crate::money::{to_sum_units_rounded, Money};
use crate::output::rollup_parquet::{from_i128, period_bounds, time_type, MS_PER_DAY};
use crate::output::OutputError;
use arrow_array::builder::{
    Decimal128Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::sync::Arc;

/// `x_Kind` of a coverage row.
pub const COVERAGE: &str = "Coverage";

/// The text columns, in file order.
const TEXT: [&str; 4] = [
    "x_Kind",
    "BillingAccountId",
    "CommitmentDiscountId",
    "SubAccountId",
];

/// The DECIMAL(38,18) columns, in file order.
const MONEY: [&str; 11] = [
    "x_UsedQuantity",
    "x_UnusedQuantity",
    "x_UsedCommitment",
    "x_UnusedCommitment",
    "x_TotalCommitment",
    "x_Utilization",
    "x_UtilizationByQuantity",
    "x_ReservationCoveredCost",
    "x_SavingsPlanCoveredCost",
    "x_EligibleCost",
    "x_Coverage",
];

fn schema() -> Schema {
    let mut f = vec![Field::new("BillingPeriodStart", time_type(), false)];
    f.extend(
        TEXT.iter()
            .map(|n| Field::new(*n, DataType::Utf8, !matches!(*n, "x_Kind"))),
    );
    f.extend(
        MONEY
            .iter()
            .map(|n| Field::new(*n, DataType::Decimal128(38, 18), true)),
    );
    f.push(Field::new("x_LineItemCount", DataType::Int64, false));
    Schema::new(f)
}

/// One output row: its texts and money values, by [`TEXT`] and [`MONEY`].
struct Row<'a> {
    text: [Option<&'a str>; 4],
    money: [Option<Money>; 11],
    rows: u64,
}

fn util_row<'a>(id: &'a str, u: &'a Utilization) -> Row<'a> {
    Row {
        text: [Some(u.kind.as_str()), Some(&u.payer), Some(id), None],
        money: [
            u.used_quantity,
            u.unused_quantity,
            Some(u.used_cost),
            Some(u.unused_cost),
            Some(u.commitment_cost),
            u.utilization(),
            u.utilization_by_quantity(),
            None,
            None,
            None,
            None,
        ],
        rows: u.rows,
    }
}

fn coverage_row<'a>(account: &'a str, c: &'a Coverage) -> Row<'a> {
    let mut money = [None; 11];
    money[7] = Some(c.reservation_cost);
    money[8] = Some(c.savings_plan_cost);
    money[9] = Some(c.eligible_cost);
    money[10] = c.coverage();
    Row {
        text: [Some(COVERAGE), Some(&c.payer), None, Some(account)],
        money,
        rows: c.rows,
    }
}

fn write_err(e: &dyn std::fmt::Display) -> OutputError {
    OutputError::Write(e.to_string())
}

/// Encode one period's commitments as Parquet (zstd).
pub fn write_commitments(period: &str, s: &CommitmentSums) -> Result<Vec<u8>, OutputError> {
    let c = Commitments::from_sums(period, s);
    let rows: Vec<Row> = c
        .utilization
        .iter()
        .map(|(id, u)| util_row(id, u))
        .chain(c.coverage.iter().map(|(a, cv)| coverage_row(a, cv)))
        .collect();
    let (start, _) = period_bounds(period)?;
    let schema = Arc::new(schema());
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut t = TimestampMillisecondBuilder::with_capacity(rows.len());
    for _ in &rows {
        t.append_value(i64::from(start) * MS_PER_DAY);
    }
    cols.push(Arc::new(t.finish().with_timezone("UTC")));
    for i in 0..TEXT.len() {
        let mut b = StringBuilder::new();
        for r in &rows {
            b.append_option(r.text[i]);
        }
        cols.push(Arc::new(b.finish()));
    }
    for (i, name) in MONEY.iter().enumerate() {
        let mut b = Decimal128Builder::with_capacity(rows.len());
        for r in &rows {
            let v = r.money[i]
                .map(|m| {
                    to_sum_units_rounded(m).ok_or_else(|| {
                        OutputError::Write(format!(
                            "{name} = {m} is beyond DECIMAL(38,18). What to do: check the input for a corrupt amount"
                        ))
                    })
                })
                .transpose()?;
            b.append_option(v);
        }
        cols.push(Arc::new(
            b.finish()
                .with_precision_and_scale(38, 18)
                .map_err(|e| write_err(&e))?,
        ));
    }
    let mut n = Int64Builder::with_capacity(rows.len());
    for r in &rows {
        n.append_value(r.rows as i64);
    }
    cols.push(Arc::new(n.finish()));
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| write_err(&e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).map_err(|e| write_err(&e))?,
        ))
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(|e| write_err(&e))?;
    w.write(&batch).map_err(|e| write_err(&e))?;
    w.close().map_err(|e| write_err(&e))?;
    Ok(buf)
}

/// Read `commitments.parquet` back: the sums (ratios follow from them).
pub fn read_commitments(key: &str, bytes: Vec<u8>) -> Result<CommitmentSums, OutputError> {
    let err = |e: &dyn std::fmt::Display| OutputError::Read {
        key: key.into(),
        problem: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| err(&e))?
        .build()
        .map_err(|e| err(&e))?;
    let mut out = CommitmentSums::default();
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| err(&format!("column {name} missing")))
        };
        let text: Vec<_> = TEXT
            .iter()
            .map(|n| col(n).map(|a| a.as_string::<i32>().clone()))
            .collect::<Result<_, _>>()?;
        let money: Vec<_> = MONEY
            .iter()
            .map(|n| col(n).map(|a| a.as_primitive::<Decimal128Type>().clone()))
            .collect::<Result<_, _>>()?;
        let count = col("x_LineItemCount")?.as_primitive::<Int64Type>().clone();
        for i in 0..batch.num_rows() {
            let t = |c: usize| {
                if text[c].is_valid(i) {
                    text[c].value(i).to_owned()
                } else {
                    String::new()
                }
            };
            let m = |c: usize| -> Result<Option<Money>, OutputError> {
                if !money[c].is_valid(i) {
                    return Ok(None);
                }
                from_i128(money[c].value(i))
                    .map(Some)
                    .ok_or_else(|| err(&format!("{} in row {i} is beyond a decimal", MONEY[c])))
            };
            let z = |v: Option<Money>| v.unwrap_or_default();
            let kind = t(0);
            if kind == COVERAGE {
                out.coverage.insert(
                    t(3),
                    Coverage {
                        payer: t(1),
                        rows: count.value(i) as u64,
                        reservation_cost: z(m(7)?),
                        savings_plan_cost: z(m(8)?),
                        eligible_cost: z(m(9)?),
                    },
                );
                continue;
            }
            let kind = Kind::parse(&kind).ok_or_else(|| err(&format!("x_Kind {kind:?}")))?;
            out.utilization.insert(
                t(2),
                Utilization {
                    kind,
                    payer: t(1),
                    rows: count.value(i) as u64,
                    used_quantity: m(0)?,
                    unused_quantity: m(1)?,
                    used_cost: z(m(2)?),
                    unused_cost: z(m(3)?),
                    commitment_cost: z(m(4)?),
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitments::{CommitmentsBuilder, Role, UtilRow};
    use crate::money::dec;

    #[test]
    fn round_trips_every_sum() {
        let mut b = CommitmentsBuilder::default();
        b.add_utilization(&UtilRow {
            id: b"arn:sp",
            payer: b"9",
            kind: Kind::SavingsPlan,
            used_quantity: None,
            unused_quantity: None,
            used_cost: dec("9000000001.123456789012345678"),
            unused_cost: dec("-1"),
            commitment_cost: dec("3"),
        });
        b.add_utilization(&UtilRow {
            id: b"arn:ri",
            payer: b"9",
            kind: Kind::Reservation,
            used_quantity: Some(dec("5")),
            unused_quantity: Some(dec("0")),
            used_cost: dec("1"),
            unused_cost: dec("0"),
            commitment_cost: dec("1"),
        });
        let s = b.coverage_slot(b"9", b"1", Role::SavingsPlan);
        b.add_coverage(s, dec("0.000000000000000001"));
        let sums = b.finish();
        let bytes = write_commitments("2024-01", &sums).unwrap();
        assert_eq!(read_commitments("k", bytes.clone()).unwrap(), sums);
        assert_eq!(write_commitments("2024-01", &sums).unwrap(), bytes);
    }
}
