//! Ingest the real billing files in ../shared/data and compare with totals
//! computed independently (Python `decimal` for CSV, `math.fsum` over the
//! doubles for Parquet: see tests/expected/compute_expected.py).

mod common;

use common::{ingest_dir, shared_data, summaries};
use curlew::money::{dec, Money};
use std::path::Path;

fn copy_to_temp(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(src.file_name().unwrap());
    std::fs::copy(src, dst).unwrap();
    dir
}

fn close(got: Money, want: &str, tol: f64) {
    let w: f64 = want.parse().unwrap();
    let g: f64 = got.to_string().parse().unwrap();
    assert!(
        (g - w).abs() <= tol * w.abs().max(1.0),
        "got {got}, want {want}"
    );
}

#[test]
fn legacy_cur_csv_totals_are_exact() {
    let Some(file) = shared_data("cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv")
    else {
        return;
    };
    let root = copy_to_temp(&file);
    let out = tempfile::tempdir().unwrap();
    let report = ingest_dir(root.path(), out.path(), |_| {});
    assert!(
        report.warnings.iter().any(|w| w.contains("no manifest")),
        "bare files must warn: {:?}",
        report.warnings
    );
    let s = summaries(&report);
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(s.billing_period, "2023-11");
    assert!(!s.source.vouched_by_manifest);
    assert_eq!(s.rows_read, 1281);
    assert_eq!(s.rows_per_line_item_type["Usage"], 1269);
    assert_eq!(s.rows_per_line_item_type["Tax"], 12);
    // Exact to the last digit (no NetUnblendedCost column: BilledCost = UnblendedCost).
    assert_eq!(s.totals.unblended_cost, Some(dec("1.68230869740")));
    assert_eq!(s.totals.billed_cost, dec("1.68230869740"));
    assert_eq!(s.totals.blended_cost, Some(dec("1.68230869740")));
    assert_eq!(s.totals.effective_cost, dec("1.68230869740"));
    assert_eq!(s.totals.list_cost, dec("3.35617269490"));
    assert_eq!(s.totals.usage_amount, dec("128100.5804537469"));
    assert_eq!(s.totals.net_unblended_cost, None);
    assert_eq!(s.attributed, s.totals);
    assert!(s.unattributed.accounts.is_empty());
}

#[test]
fn legacy_cur_csv_unconnected_accounts_are_counted_not_dropped() {
    let Some(file) = shared_data("cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv")
    else {
        return;
    };
    let root = copy_to_temp(&file);
    let out = tempfile::tempdir().unwrap();
    let report = ingest_dir(root.path(), out.path(), |o| {
        o.accounts = Some(["000000000000".to_string()].into())
    });
    let s = &summaries(&report)[0];
    assert_eq!(s.attributed.rows, 0);
    assert_eq!(s.unattributed.total.billed_cost, dec("1.68230869740"));
    assert_eq!(s.unattributed.total.rows, 1281);
    assert_eq!(s.unattributed.accounts.len(), 1);
}

#[test]
fn focus_sample_ingests_aws_rows_and_reports_other_providers() {
    let Some(file) = shared_data("focus-1.0-sample/focus_sample.csv") else {
        return;
    };
    let root = copy_to_temp(&file);
    let out = tempfile::tempdir().unwrap();
    let s = summaries(&ingest_dir(root.path(), out.path(), |_| {}));
    let sept = s
        .iter()
        .find(|s| s.billing_period == "2024-09")
        .expect("September committed");
    assert_eq!(sept.rows_read, 942);
    assert_eq!(sept.rows_per_line_item_type["Usage"], 941);
    assert_eq!(sept.rows_per_line_item_type["Credit"], 1);
    assert_eq!(sept.totals.billed_cost, dec("18.00663861840"));
    assert_eq!(sept.totals.effective_cost, dec("13.00000000000"));
    assert_eq!(sept.totals.list_cost, dec("18.14931764060"));
    assert_eq!(sept.totals.contracted_cost, Some(dec("13.00000000000")));
    // 58 rows of Microsoft and Oracle are counted, not ingested (one is in the next billing period).
    let skipped: u64 = s
        .iter()
        .flat_map(|s| s.other_providers_skipped.values())
        .map(|p| p.rows)
        .sum();
    let skipped_cost: Money = s
        .iter()
        .flat_map(|s| s.other_providers_skipped.values())
        .map(|p| p.billed_cost)
        .sum();
    assert_eq!(skipped, 58);
    assert_eq!(skipped_cost, dec("2.51358811059"));
    let providers: Vec<&String> = s
        .iter()
        .flat_map(|s| s.other_providers_skipped.keys())
        .collect();
    assert!(
        providers.contains(&&"Microsoft".to_string()) && providers.contains(&&"Oracle".to_string())
    );
    assert_eq!(
        sept.rows_per_line_item_type.len(),
        2,
        "only Usage and Credit charge categories"
    );
}

#[test]
fn workshop_parquet_totals_match_within_1e9() {
    let Some(dir) = shared_data("cur1-parquet-workshop") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let s = summaries(&ingest_dir(&dir, out.path(), |_| {}));
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(s.billing_period, "2018-10");
    assert_eq!(s.rows_read, 119_307);
    assert_eq!(s.rows_per_line_item_type["Usage"], 110_953);
    assert_eq!(s.rows_per_line_item_type["DiscountedUsage"], 8_345);
    assert_eq!(s.rows_per_line_item_type["RIFee"], 9);
    close(s.totals.unblended_cost.unwrap(), "4064.4831315379", 1e-9);
    close(s.totals.blended_cost.unwrap(), "4064.4831300796", 1e-9);
    close(s.totals.effective_cost, "4195.9571093179", 1e-9);
    close(s.totals.list_cost, "4237.6817354175", 1e-9);
    close(s.totals.usage_amount, "18406679.5089076", 1e-9);
    assert_eq!(s.input_files.len(), 1);
    assert_eq!(s.input_files[0].rows, 119_307);
}

/// BilledCost and ListCost per RegionId of the rollups committed under `out`
/// (DuckDB reading curlew's output), at 12 decimals.
fn rollup_by_region(out: &Path) -> Vec<Vec<Option<String>>> {
    let glob = format!(
        "{}/tenant=*/billing_period=*/payer=*/report=*/revision=*/rollup.parquet",
        out.display()
    );
    curlew_testkit::duckdb::query(&format!(
        "select RegionId, sum(BilledCost)::DECIMAL(38,12)::varchar, sum(ListCost)::DECIMAL(38,12)::varchar \
         from read_parquet('{glob}') group by RegionId order by RegionId nulls last"
    ))
    .expect("duckdb")
}

/// Region per row: a legacy CUR row whose `product/regionCode` is empty takes
/// `product/region` (in the shared CSV 460 such rows: inter-region data
/// transfer of S3, CloudShell, SQS, SNS and Step Functions, and CloudWatch
/// dashboards in `global`); only the tax rows, where both are empty, have no
/// region. CSV and the same data as Parquet alike. Expected: DuckDB over the
/// source with exact DECIMAL sums.
#[test]
fn legacy_cur_region_falls_back_per_row_to_product_region() {
    let Some(file) = shared_data("cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv")
    else {
        return;
    };
    let src = format!("read_csv('{}', all_varchar=true)", file.display());
    let Some(want) = curlew_testkit::duckdb::query(&format!(
        "select coalesce(nullif(\"product/regionCode\", ''), nullif(\"product/region\", '')) r, \
         sum(\"lineItem/UnblendedCost\"::DECIMAL(38,12))::varchar, \
         sum(\"pricing/publicOnDemandCost\"::DECIMAL(38,12))::varchar \
         from {src} group by r order by r nulls last"
    )) else {
        return;
    };
    let row = |region: Option<&str>| {
        want.iter()
            .find(|r| r[0].as_deref() == region)
            .unwrap_or_else(|| panic!("{region:?} in {want:?}"))
            .clone()
    };
    assert_eq!(row(Some("global"))[2].as_deref(), Some("1.733333347200"));
    assert_eq!(row(None)[1].as_deref(), Some("0.080000000000"), "tax only");

    let root = copy_to_temp(&file);
    let out = tempfile::tempdir().unwrap();
    summaries(&ingest_dir(root.path(), out.path(), |_| {}));
    assert_eq!(rollup_by_region(out.path()), want, "CSV");

    let pq = tempfile::tempdir().unwrap();
    curlew_testkit::duckdb::execute(&format!(
        "copy (select * from {src}) to '{}' (format parquet)",
        pq.path().join("anon.parquet").display()
    ));
    let out = tempfile::tempdir().unwrap();
    summaries(&ingest_dir(pq.path(), out.path(), |_| {}));
    assert_eq!(rollup_by_region(out.path()), want, "Parquet");
}

/// A peer nobody here wrote: the FinOps Foundation's focus-converter 1.0.0
/// on the shared legacy CSV agrees with curlew's rollup by ChargeCategory,
/// service (its ServiceName is the product code, curlew's x_ServiceCode),
/// SubAccountId, RegionId and day, within 1e-6 (it sums doubles, and its
/// ListCost is rate x amount where curlew sums publicOnDemandCost). The
/// shared CSV has no credits or refunds, where the two deliberately differ
/// (README: Credit vs its Adjustment).
#[test]
fn focus_converter_agrees_with_the_rollup_by_category_service_account_region_and_day() {
    let Some(file) = shared_data("cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv")
    else {
        return;
    };
    let Some(python) = curlew_testkit::focus::venv_python() else {
        return;
    };
    if !curlew_testkit::duckdb::available() {
        return;
    }
    let converted = tempfile::tempdir().unwrap();
    curlew_testkit::focus::convert_cur_csv(&python, &file, converted.path());
    let root = copy_to_temp(&file);
    let out = tempfile::tempdir().unwrap();
    summaries(&ingest_dir(root.path(), out.path(), |_| {}));
    let ours = format!(
        "read_parquet('{}/tenant=*/billing_period=*/payer=*/report=*/revision=*/rollup.parquet', hive_partitioning = false)",
        out.path().display()
    );
    let theirs = format!("read_parquet('{}/*.parquet')", converted.path().display());
    let key = "ChargeCategory, service, account, coalesce(RegionId, '') AS region, usage_day";
    let sql = format!(
        "with c as (select {key}, sum(BilledCost::DOUBLE) b, sum(EffectiveCost::DOUBLE) e, sum(ListCost::DOUBLE) l, count(*) n from \
           (select *, x_ServiceCode AS service, SubAccountId AS account, cast(timezone('UTC', ChargePeriodStart) as date) AS usage_day from {ours}) group by all), \
         p as (select {key}, sum(BilledCost::DOUBLE) b, sum(EffectiveCost::DOUBLE) e, sum(ListCost::DOUBLE) l, count(*) n from \
           (select *, ServiceName AS service, SubAccountId::VARCHAR AS account, cast(timezone('UTC', ChargePeriodStart) as date) AS usage_day from {theirs}) group by all) \
         select (select count(*) from c), (select count(*) from p), \
           count(*) filter (where c.b is null or p.b is null), \
           max(greatest(abs(c.b - p.b), abs(c.e - p.e), abs(c.l - p.l)))::VARCHAR, \
           (select sum(b)::VARCHAR from p) \
         from c full outer join p using (ChargeCategory, service, account, region, usage_day)"
    );
    let r = &curlew_testkit::duckdb::query(&sql).expect("duckdb")[0];
    let groups: u64 = r[0].as_deref().unwrap().parse().unwrap();
    assert!(groups > 100, "{r:?}");
    assert_eq!(r[1], r[0], "as many groups on both sides: {r:?}");
    assert_eq!(
        r[2].as_deref(),
        Some("0"),
        "every group on both sides: {r:?}"
    );
    let worst: f64 = r[3].as_deref().unwrap().parse().unwrap();
    assert!(worst <= 1e-6, "largest difference {worst}: {r:?}");
    close(dec("1.68230869740"), r[4].as_deref().unwrap(), 1e-9);
}
