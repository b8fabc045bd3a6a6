//! SQL that reads exactly what CURRENT names, without curlew: a DuckDB view
//! and an Athena table over the tenant's index `tenant=T/_current/symlink.txt`
//! (one absolute location a line, rewritten by every commit; see
//! `pipeline::index`). The column lists come from the same constants as the
//! rollup Parquet schema, so the SQL cannot drift from the file.

use crate::output::{output_columns, ColumnKind as Kind};

/// Precision and scale of the money columns (DECIMAL(38,18) in rollup.parquet;
/// 38 is also Athena's maximum precision).
const MONEY_PRECISION: u8 = 38;
const MONEY_SCALE: u8 = 18;

/// The Hive partition columns of a rollup file's path, in path order.
pub const HIVE_COLUMNS: [&str; 5] = ["tenant", "billing_period", "payer", "report", "revision"];

/// The DuckDB session variable that holds the list of current files.
const FILES_VAR: &str = "curlew_current_files";

/// The columns of rollup.parquet in file order (the writer's own list).
fn columns() -> Vec<(&'static str, Kind)> {
    output_columns()
}

/// A single-quoted SQL string literal, quotes doubled (DuckDB, Trino/Athena DML).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A string literal for Athena DDL, which is parsed as Hive: backslash escapes,
/// and `'a''b'` would be two adjacent literals that concatenate to `ab`.
fn hive_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A double-quoted identifier (DuckDB).
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A backquoted identifier (Athena DDL), backquotes doubled.
fn hive_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn duckdb_type(k: Kind) -> String {
    match k {
        Kind::Time => "TIMESTAMPTZ".into(),
        Kind::Text => "VARCHAR".into(),
        Kind::Money => format!("DECIMAL({MONEY_PRECISION},{MONEY_SCALE})"),
        Kind::Count => "BIGINT".into(),
    }
}

fn athena_type(k: Kind) -> String {
    match k {
        Kind::Time => "timestamp".into(),
        Kind::Text => "string".into(),
        Kind::Money => format!("decimal({MONEY_PRECISION},{MONEY_SCALE})"),
        Kind::Count => "bigint".into(),
    }
}

/// DuckDB statements (1.1 or later) that define the view `curlew_rollup` over
/// exactly the files the index at `index_url` (an absolute path, or
/// `s3://bucket/key`) lists, with the Hive partition columns as VARCHAR.
pub fn duckdb(index_url: &str) -> String {
    let cols = columns();
    let file_cols: Vec<String> = cols.iter().map(|(c, _)| ident(c)).collect();
    let hive_cols: Vec<String> = HIVE_COLUMNS.iter().map(|c| ident(c)).collect();
    let read = format!(
        // union_by_name: revisions written before the columns followed FOCUS
        // 1.2 (DATE periods, fewer columns) read beside new ones, their
        // missing columns NULL.
        "SELECT {}, {} FROM read_parquet(getvariable({}), hive_partitioning = true, hive_types_autocast = false, union_by_name = true)",
        file_cols.join(", "),
        hive_cols.join(", "),
        literal(FILES_VAR)
    );
    let empty_cols: Vec<String> = cols
        .iter()
        .map(|(c, k)| format!("NULL::{} AS {}", duckdb_type(*k), ident(c)))
        .chain(
            HIVE_COLUMNS
                .iter()
                .map(|c| format!("NULL::VARCHAR AS {}", ident(c))),
        )
        .collect();
    let empty = format!("SELECT {} WHERE false", empty_cols.join(", "));
    let missing = format!(
        "curlew: no index at {index_url}. What to do: check the location; the index is written by the tenant's first commit"
    );
    let unset = format!(
        "curlew: {FILES_VAR} is not set in this session. What to do: run the SET VARIABLE statement first"
    );
    let url = literal(index_url);
    format!(
        "-- curlew: the view curlew_rollup reads exactly the rollup files that the index\n\
         -- named in read_text below lists (the revision each CURRENT names), with the\n\
         -- partition columns tenant, billing_period, payer, report, revision (VARCHAR).\n\
         -- SET VARIABLE reads the index once (a snapshot): re-run it after new commits;\n\
         -- the view follows the variable and need not be re-created. The variable lives\n\
         -- in the session only: in a new session run both statements again.\n\
         -- An empty index gives an empty view; a missing index is an error.\n\
         -- For s3:// locations, first run: CREATE SECRET (TYPE s3, PROVIDER credential_chain)\n\
         SET VARIABLE {FILES_VAR} = (\n  \
           SELECT CASE WHEN count(*) = 0 THEN error({missing})\n    \
           ELSE coalesce(list(f) FILTER (WHERE f <> ''), []::VARCHAR[]) END\n  \
           FROM (SELECT unnest(string_split(content, chr(10))) AS f FROM read_text({url}))\n\
         );\n\
         CREATE OR REPLACE VIEW curlew_rollup AS SELECT * FROM query(CASE\n  \
           WHEN getvariable({var}) IS NULL THEN error({unset})\n  \
           WHEN len(getvariable({var})) = 0 THEN {empty}\n  \
           ELSE {read}\n\
         END);\n",
        missing = literal(&missing),
        unset = literal(&unset),
        var = literal(FILES_VAR),
        empty = literal(&empty),
        read = literal(&read),
    )
}

/// Athena DDL for the table `database.table` over the index folder
/// `index_dir_s3_url` (`s3://bucket/prefix/tenant=T/_current/`, the folder
/// holding symlink.txt; a trailing `/` is added if missing).
pub fn athena(database: &str, table: &str, index_dir_s3_url: &str) -> String {
    let mut location = index_dir_s3_url.to_owned();
    if !location.ends_with('/') {
        location.push('/');
    }
    let cols: Vec<String> = columns()
        .iter()
        .map(|(c, k)| format!("  {} {}", hive_ident(c), athena_type(*k)))
        .collect();
    format!(
        "-- curlew: exactly the rollup files that symlink.txt in LOCATION lists (the\n\
         -- revision each CURRENT names). Every commit rewrites the index, so the table\n\
         -- follows new commits without new DDL.\n\
         -- The Hive partition columns (tenant, billing_period, payer, report, revision)\n\
         -- are not available through a symlink table: the table is one tenant's, and\n\
         -- BillingPeriodStart (the billing period's first instant, UTC) and BillingAccountId\n\
         -- (the payer) are columns inside the file.\n\
         CREATE EXTERNAL TABLE {}.{} (\n{}\n)\n\
         ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n\
         STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'\n\
         OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n\
         LOCATION {};\n",
        hive_ident(database),
        hive_ident(table),
        cols.join(",\n"),
        hive_literal(&location),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Layout, SourceId};
    use crate::output::write_rollup;
    use crate::rollup::{Measure, PeriodRollup};
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// FOCUS 1.2 columns first, then curlew's and AWS's own (`x_`).
    const ALL_COLUMNS: [&str; 30] = [
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "BillingAccountId",
        "SubAccountId",
        "ProviderName",
        "PublisherName",
        "InvoiceIssuerName",
        "x_ServiceCode",
        "ServiceName",
        "ServiceCategory",
        "RegionId",
        "RegionName",
        "ChargeCategory",
        "ChargeClass",
        "x_LineItemType",
        "x_UsageType",
        "BillingCurrency",
        "Tags",
        "x_CostCategories",
        "BilledCost",
        "EffectiveCost",
        "ListCost",
        "ContractedCost",
        "x_UnblendedCost",
        "x_NetUnblendedCost",
        "x_BlendedCost",
        "ConsumedQuantity",
        "x_LineItemCount",
    ];

    /// Asserts that every one of `needles` occurs in `hay`, each after the previous one.
    fn in_order(hay: &str, needles: &[String]) {
        let mut at = 0;
        for n in needles {
            match hay[at..].find(n.as_str()) {
                Some(i) => at += i + n.len(),
                None => panic!("{n:?} missing or out of order in:\n{hay}"),
            }
        }
    }

    #[test]
    fn columns_match_the_written_parquet_schema() {
        let bytes = write_rollup("2024-01", &PeriodRollup::default()).expect("write");
        let schema = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .expect("read")
            .schema()
            .clone();
        let cols = columns();
        assert_eq!(schema.fields().len(), cols.len());
        for (f, (name, kind)) in schema.fields().iter().zip(&cols) {
            assert_eq!(f.name(), name);
            let want = match kind {
                Kind::Time => {
                    DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, Some("UTC".into()))
                }
                Kind::Text => DataType::Utf8,
                Kind::Money => DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE as i8),
                Kind::Count => DataType::Int64,
            };
            assert_eq!(f.data_type(), &want, "column {name}");
        }
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        assert_eq!(names, ALL_COLUMNS);
    }

    #[test]
    fn hive_columns_match_the_layout() {
        let dir = Layout::new("out/").revision_dir(
            &SourceId::new("acme", "123456789012", "cur2"),
            "2024-01",
            "r1",
        );
        let names: Vec<&str> = dir
            .split('/')
            .filter_map(|s| s.split_once('=').map(|(k, _)| k))
            .collect();
        assert_eq!(names, HIVE_COLUMNS);
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(hive_literal(r"s3://b/it's\x/"), r"'s3://b/it\'s\\x/'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(hive_ident("a`b"), "`a``b`");
    }

    #[test]
    fn duckdb_reads_the_index_into_a_view() {
        let sql = duckdb("/data/o'brien/tenant=acme/_current/symlink.txt");
        assert!(sql.starts_with("-- curlew: "), "{sql}");
        assert!(sql.contains("re-run it after new commits"), "{sql}");
        let body: String = sql
            .lines()
            .filter(|l| !l.starts_with("--"))
            .map(|l| format!("{l}\n"))
            .collect();
        let stmts: Vec<&str> = body.split(";\n").filter(|s| !s.trim().is_empty()).collect();
        assert_eq!(stmts.len(), 2, "{sql}");
        assert!(stmts[0].starts_with("SET VARIABLE curlew_current_files = ("));
        assert!(stmts[0].contains("read_text('/data/o''brien/tenant=acme/_current/symlink.txt')"));
        assert!(stmts[0].contains(
            "error('curlew: no index at /data/o''brien/tenant=acme/_current/symlink.txt."
        ));
        assert!(stmts[1]
            .starts_with("CREATE OR REPLACE VIEW curlew_rollup AS SELECT * FROM query(CASE"));
        assert!(stmts[1].contains(
            "FROM read_parquet(getvariable(''curlew_current_files''), hive_partitioning = true, hive_types_autocast = false, union_by_name = true)"
        ));
        // Both branches name every column, in file order, then the partition columns.
        let mut read: Vec<String> = ALL_COLUMNS.iter().map(|c| format!("\"{c}\"")).collect();
        read.extend(HIVE_COLUMNS.iter().map(|c| format!("\"{c}\"")));
        let read_part = &stmts[1][stmts[1].find("ELSE 'SELECT ").expect("else")..];
        in_order(read_part, &read);
        let mut empty: Vec<String> = columns()
            .iter()
            .map(|(c, k)| format!("NULL::{} AS \"{c}\"", duckdb_type(*k)))
            .collect();
        empty.extend(
            HIVE_COLUMNS
                .iter()
                .map(|c| format!("NULL::VARCHAR AS \"{c}\"")),
        );
        in_order(stmts[1], &empty);
        assert!(stmts[1].contains("NULL::DECIMAL(38,18) AS \"BilledCost\""));
        assert!(stmts[1].contains("NULL::BIGINT AS \"x_LineItemCount\""));
        assert!(stmts[1].contains(" WHERE false'"));
    }

    #[test]
    fn athena_ddl_is_a_symlink_parquet_table() {
        let ddl = athena(
            "bill`ing",
            "rollup",
            "s3://bucket/it's/tenant=acme/_current",
        );
        assert!(ddl.starts_with("-- curlew: "), "{ddl}");
        assert!(ddl.contains("partition columns"), "{ddl}");
        assert!(ddl.contains("BillingPeriodStart") && ddl.contains("BillingAccountId"));
        assert!(
            ddl.contains("CREATE EXTERNAL TABLE `bill``ing`.`rollup` (\n"),
            "{ddl}"
        );
        let cols: Vec<String> = columns()
            .iter()
            .map(|(c, k)| format!("  `{c}` {}", athena_type(*k)))
            .collect();
        assert!(
            ddl.contains(&format!("(\n{}\n)\n", cols.join(",\n"))),
            "{ddl}"
        );
        assert_eq!(ddl.matches(" decimal(38,18)").count(), Measure::ALL.len());
        assert!(ddl.contains("  `BillingPeriodStart` timestamp,\n"));
        assert!(ddl.contains("  `BillingAccountId` string,\n"));
        assert!(ddl.contains("  `x_LineItemCount` bigint\n)"));
        assert!(ddl.ends_with(
            ")\nROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n\
             STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'\n\
             OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n\
             LOCATION 's3://bucket/it\\'s/tenant=acme/_current/';\n"
        ), "{ddl}");
        // A location that already ends in `/` keeps a single one.
        assert!(athena("d", "t", "s3://b/p/").contains("LOCATION 's3://b/p/';"));
    }
}
