//! Tag and cost category dimensions (issue 14, item 3): in every format the
//! rollup's spend per tag value equals DuckDB's over the source, untagged
//! spend is its own value, and nothing is dropped. Expected values come from
//! DuckDB reading the source files (exact DECIMAL sums), never from curlew.

mod common;

use common::{ingest_dir, shared_data, summaries};
use curlew::dimensions::Dimensions;
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use curlew_testkit::duckdb;
use std::path::Path;

const UNTAGGED: &str = "(untagged)";

fn dims(tags: &[&str], cost_categories: &[&str]) -> Dimensions {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Dimensions::from_args(&s(tags), &s(cost_categories)).unwrap()
}

/// `(value, sum)` rows of the rollups under `out`, grouped by one key of a
/// JSON column (`Tags` or `x_CostCategories`), untagged as [`UNTAGGED`].
fn rollup_by(out: &Path, column: &str, key: &str, measure: &str) -> Vec<Vec<Option<String>>> {
    let glob = format!(
        "{}/tenant=*/billing_period=*/payer=*/report=*/revision=*/rollup.parquet",
        out.display()
    );
    duckdb::query(&format!(
        "select coalesce(json_extract_string({column}, '$.\"{key}\"'), '{UNTAGGED}') v, \
         sum({measure})::DECIMAL(38,10)::varchar from read_parquet('{glob}') \
         group by v order by v"
    ))
    .expect("duckdb")
}

/// DuckDB over the source: `value_sql` is the source's tag value (NULL or ''
/// when untagged).
fn source_by(from: &str, value_sql: &str, measure_sql: &str) -> Vec<Vec<Option<String>>> {
    duckdb::query(&format!(
        "select coalesce(nullif({value_sql}, ''), '{UNTAGGED}') v, \
         sum({measure_sql})::DECIMAL(38,10)::varchar from {from} group by v order by v"
    ))
    .expect("duckdb")
}

fn data_files(s: &curlew::sample::SampleOutput) -> String {
    let list: Vec<String> = s
        .data_keys
        .iter()
        .map(|k| format!("'{}'", s.root.join(k).display()))
        .collect();
    format!("[{}]", list.join(", "))
}

/// The generator's tags in each format: legacy CSV columns
/// (`resourceTags/user:team`), legacy Parquet columns
/// (`resource_tags_user_team`), CUR 2.0's `resource_tags` map (Parquet) and
/// JSON text (CSV). `--tag team --tag environment` gives each the same spend
/// per value as DuckDB's over the source, exactly, untagged included.
#[test]
fn user_tags_are_dimensions_in_every_cur_format() {
    if !duckdb::available() {
        return;
    }
    for format in [
        SampleFormat::Cur1Csv,
        SampleFormat::Cur1Parquet,
        SampleFormat::Cur2Csv,
        SampleFormat::Cur2Parquet,
    ] {
        let src = tempfile::tempdir().unwrap();
        let mut spec = SampleSpec::new(format, 20_000);
        spec.files = 2;
        let sample = write_sample(&spec, src.path()).unwrap();
        let files = data_files(&sample);
        let (from, team, env, unblended) = match format {
            SampleFormat::Cur1Csv => (
                format!("read_csv({files}, all_varchar=true)"),
                "\"resourceTags/user:team\"",
                "\"resourceTags/user:environment\"",
                "\"lineItem/UnblendedCost\"::DECIMAL(38,12)",
            ),
            SampleFormat::Cur1Parquet => (
                format!("read_parquet({files})"),
                "resource_tags_user_team",
                "resource_tags_user_environment",
                "line_item_unblended_cost::DECIMAL(38,12)",
            ),
            SampleFormat::Cur2Csv => (
                format!("read_csv({files}, all_varchar=true)"),
                "json_extract_string(resource_tags, '$.user_team')",
                "json_extract_string(resource_tags, '$.user_environment')",
                "line_item_unblended_cost::DECIMAL(38,12)",
            ),
            SampleFormat::Cur2Parquet => (
                format!("read_parquet({files})"),
                "resource_tags['user_team']",
                "resource_tags['user_environment']",
                "line_item_unblended_cost::DECIMAL(38,12)",
            ),
            SampleFormat::Focus => unreachable!(),
        };
        let out = tempfile::tempdir().unwrap();
        let s = summaries(&ingest_dir(src.path(), out.path(), |o| {
            o.dimensions = dims(&["team", "environment"], &[]);
        }));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].dimensions, dims(&["team", "environment"], &[]));
        for (key, value_sql) in [("team", team), ("environment", env)] {
            let want = source_by(&from, value_sql, unblended);
            assert!(
                want.len() >= 3 && want.iter().any(|r| r[0].as_deref() == Some(UNTAGGED)),
                "{format:?}: the sample has several values and untagged rows: {want:?}"
            );
            let got = rollup_by(out.path(), "Tags", key, "x_UnblendedCost");
            assert_eq!(got, want, "{format:?} by tag {key}");
        }
        // The same totals with and without dimensions (the generator's tags
        // mostly follow account and service, so they split few groups).
        let plain = tempfile::tempdir().unwrap();
        let p = summaries(&ingest_dir(src.path(), plain.path(), |_| {}));
        assert_eq!(p[0].totals, s[0].totals, "{format:?}");
        assert!(s[0].rollup_rows >= p[0].rollup_rows, "{format:?}");
    }
}

/// Real AWS data in the Athena Parquet layout: the workshop CUR's
/// `resource_tags_user_environment` and the AWS-generated
/// `resource_tags_aws_created_by` (named `aws:createdBy`, as AWS writes it).
/// Doubles in the source: equal within 1e-9 of each value's sum.
#[test]
fn workshop_parquet_by_user_and_aws_tags() {
    let Some(dir) = shared_data("cur1-parquet-workshop") else {
        return;
    };
    if !duckdb::available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let s = summaries(&ingest_dir(&dir, out.path(), |o| {
        o.dimensions = dims(&["environment", "aws:createdBy"], &[]);
    }));
    assert_eq!(s.len(), 1);
    let from = format!("read_parquet('{}/**/*.parquet')", dir.display());
    for (key, column) in [
        ("environment", "resource_tags_user_environment"),
        ("aws:createdBy", "resource_tags_aws_created_by"),
    ] {
        let want = source_by(&from, column, "line_item_unblended_cost");
        let got = rollup_by(out.path(), "Tags", key, "x_UnblendedCost");
        assert_eq!(
            got.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
            want.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
            "the same values of {key}"
        );
        assert!(want.len() >= 2, "{key}: {want:?}");
        for (g, w) in got.iter().zip(&want) {
            let (g, w): (f64, f64) = (
                g[1].as_deref().unwrap().parse().unwrap(),
                w[1].as_deref().unwrap().parse().unwrap(),
            );
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{key}: {g} vs {w}"
            );
        }
    }
}

/// The FOCUS sample's `Tags` JSON: AWS rows only (other providers are counted
/// apart, as ever), exact.
#[test]
fn focus_tags_json_by_key_exactly() {
    let Some(file) = shared_data("focus-1.0-sample/focus_sample.csv") else {
        return;
    };
    if !duckdb::available() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(&file, root.path().join("focus_sample.csv")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let s = summaries(&ingest_dir(root.path(), out.path(), |o| {
        o.dimensions = dims(&["environment", "application", "business_unit"], &[]);
    }));
    assert!(!s.is_empty());
    let from = format!(
        "(select * from read_csv('{}', all_varchar=true, nullstr='NULL') where ProviderName = 'AWS')",
        file.display()
    );
    for key in ["environment", "application", "business_unit"] {
        let want = source_by(
            &from,
            &format!("json_extract_string(Tags, '$.\"{key}\"')"),
            "BilledCost::DECIMAL(38,12)",
        );
        assert!(want.len() >= 2, "{key}: {want:?}");
        assert_eq!(
            rollup_by(out.path(), "Tags", key, "BilledCost"),
            want,
            "by tag {key}"
        );
    }
}

/// Cost categories: legacy `costCategory/NAME` columns and CUR 2.0's
/// `cost_category` JSON, in `x_CostCategories`, beside a tag; the report
/// re-aggregates by both (`--by cost-category:Env`, `--by tag:team`).
#[test]
fn cost_categories_are_dimensions_too() {
    if !duckdb::available() {
        return;
    }
    let legacy = "identity/LineItemId,bill/PayerAccountId,lineItem/UsageAccountId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UsageType,lineItem/UnblendedCost,lineItem/UsageAmount,costCategory/Env,resourceTags/user:team\n\
        a,111111111111,222222222222,Usage,2024-03-01T00:00:00Z,AmazonEC2,BoxUsage,1.10,1,prod,payments\n\
        b,111111111111,222222222222,Usage,2024-03-01T00:00:00Z,AmazonEC2,BoxUsage,2.20,1,dev,payments\n\
        c,111111111111,222222222222,Usage,2024-03-02T00:00:00Z,AmazonEC2,BoxUsage,0.30,1,,search\n\
        d,111111111111,222222222222,Usage,2024-03-02T00:00:00Z,AmazonS3,Requests,4.00,1,prod,\n";
    let cur2 = "line_item_line_item_type,bill_payer_account_id,line_item_usage_account_id,line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_unblended_cost,line_item_usage_amount,cost_category,resource_tags\n\
        Usage,111111111111,222222222222,2024-03-01T00:00:00Z,AmazonEC2,BoxUsage,1.10,1,\"{\"\"env\"\":\"\"prod\"\"}\",\"{\"\"user_team\"\":\"\"payments\"\"}\"\n\
        Usage,111111111111,222222222222,2024-03-01T00:00:00Z,AmazonEC2,BoxUsage,2.20,1,\"{\"\"env\"\":\"\"dev\"\"}\",\"{\"\"user_team\"\":\"\"payments\"\"}\"\n\
        Usage,111111111111,222222222222,2024-03-02T00:00:00Z,AmazonEC2,BoxUsage,0.30,1,{},\"{\"\"user_team\"\":\"\"search\"\"}\"\n\
        Usage,111111111111,222222222222,2024-03-02T00:00:00Z,AmazonS3,Requests,4.00,1,\"{\"\"env\"\":\"\"prod\"\"}\",{}\n";
    for (name, text, env_sql, team_sql) in [
        (
            "legacy.csv",
            legacy,
            "\"costCategory/Env\"",
            "\"resourceTags/user:team\"",
        ),
        (
            "cur2.csv",
            cur2,
            "json_extract_string(cost_category, '$.env')",
            "json_extract_string(resource_tags, '$.user_team')",
        ),
    ] {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = tempfile::tempdir().unwrap();
        let s = summaries(&ingest_dir(root.path(), out.path(), |o| {
            o.dimensions = dims(&["team"], &["Env"]);
        }));
        let from = format!("read_csv('{}', all_varchar=true)", file.display());
        let unblended = if name == "legacy.csv" {
            "\"lineItem/UnblendedCost\"::DECIMAL(38,12)"
        } else {
            "line_item_unblended_cost::DECIMAL(38,12)"
        };
        let want_env = source_by(&from, env_sql, unblended);
        assert_eq!(
            want_env,
            [
                [Some("(untagged)".into()), Some("0.3000000000".into())],
                [Some("dev".into()), Some("2.2000000000".into())],
                [Some("prod".into()), Some("5.1000000000".into())],
            ],
            "{name}: DuckDB reads the source as written"
        );
        assert_eq!(
            rollup_by(out.path(), "x_CostCategories", "Env", "x_UnblendedCost"),
            want_env,
            "{name}"
        );
        assert_eq!(
            rollup_by(out.path(), "Tags", "team", "x_UnblendedCost"),
            source_by(&from, team_sql, unblended),
            "{name}"
        );
        // The report's re-aggregation reads the same columns.
        let ledger = curlew::ledger::Ledger::new(curlew::store::Store::local(out.path()), "");
        let committed = common::rt()
            .block_on(curlew::report::load_committed(&ledger, "t", None))
            .unwrap();
        let by = curlew::report::aggregate(
            &committed,
            &[
                curlew::report::Dim::parse("cost-category:Env").unwrap(),
                curlew::report::Dim::parse("tag:team").unwrap(),
            ],
            curlew::rollup::Measure::Billed,
        );
        let rows: Vec<(Vec<String>, String)> = by
            .iter()
            .map(|(k, v)| (k.clone(), v.billed_cost.normalize().to_string()))
            .collect();
        let row = |e: &str, t: &str, v: &str| (vec![e.to_string(), t.to_string()], v.to_string());
        assert_eq!(
            rows,
            [
                row("prod", UNTAGGED, "4"),
                row("dev", "payments", "2.2"),
                row("prod", "payments", "1.1"),
                row(UNTAGGED, "search", "0.3"),
            ],
            "{name}"
        );
        assert_eq!(s[0].totals.rows, 4);
    }
}
