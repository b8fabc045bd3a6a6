//! The line-level FOCUS 1.2 export (`curlew::export`) on the shared data and
//! on generated samples of every format: its totals are the rollup's to the
//! last digit, DuckDB reads the Hive-partitioned files as they are, the same
//! input gives the same bytes, the FinOps Foundation's validator passes every
//! column it writes, and focus-converter agrees with it.

mod common;

use common::{ingest_dir, rt, shared_data, summaries};
use curlew::discover::Source;
use curlew::export::{export_focus, units_money, ExportOptions, ExportReport};
use curlew::money::Money;
use curlew::output::Summary;
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use curlew::store::Store;
use std::path::{Path, PathBuf};

fn export(root: &Path, out: &Path) -> ExportReport {
    let source = Source {
        store: Store::local(root),
        prefix: String::new(),
    };
    rt().block_on(export_focus(&source, out, &ExportOptions::default()))
        .expect("export runs")
}

fn copy_to_temp(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src, dir.path().join(src.file_name().unwrap())).unwrap();
    dir
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

fn money(units: i128) -> Money {
    units_money(units).expect("fits")
}

/// The export's totals per period equal the committed rollup's, to the last
/// digit, and so do its row counts.
fn assert_totals_equal(report: &ExportReport, rollups: &[Summary]) {
    // A period of other providers' rows only has a rollup (of nothing) and no export file.
    let rollups: Vec<&Summary> = rollups.iter().filter(|s| s.attributed.rows > 0).collect();
    assert_eq!(
        report.periods.len(),
        rollups.len(),
        "the same periods: {:?}",
        report.periods.keys().collect::<Vec<_>>()
    );
    for s in rollups {
        let t = report
            .periods
            .get(&s.billing_period)
            .unwrap_or_else(|| panic!("{} exported", s.billing_period));
        let p = &s.billing_period;
        assert_eq!(t.rows, s.attributed.rows, "{p} rows");
        assert_eq!(
            money(t.billed),
            s.totals.billed_cost.normalize(),
            "{p} BilledCost"
        );
        assert_eq!(
            money(t.effective),
            s.totals.effective_cost.normalize(),
            "{p} EffectiveCost"
        );
        assert_eq!(
            money(t.list),
            s.totals.list_cost.normalize(),
            "{p} ListCost"
        );
        assert_eq!(
            Some(money(t.contracted)),
            s.totals.contracted_cost.map(|c| c.normalize()),
            "{p} ContractedCost"
        );
        assert_eq!(
            money(t.consumed),
            s.totals.usage_amount.normalize(),
            "{p} ConsumedQuantity"
        );
    }
}

/// DuckDB over the Hive-partitioned output as is: DECIMAL(38,18) money,
/// the partition column, and per period sums equal to curlew's.
fn assert_duckdb_reads(out: &Path, report: &ExportReport) {
    let glob = format!("{}/**/*.parquet", out.display());
    let Some(types) = curlew_testkit::duckdb::query(&format!(
        "select column_name, column_type from (describe select * from read_parquet('{glob}', hive_partitioning = true)) \
         where column_name in ('BilledCost', 'ConsumedQuantity', 'ChargePeriodStart', 'billing_period') order by column_name"
    )) else {
        return;
    };
    let types: Vec<(String, String)> = types
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            ("BilledCost".into(), "DECIMAL(38,18)".into()),
            (
                "ChargePeriodStart".into(),
                "TIMESTAMP WITH TIME ZONE".into()
            ),
            ("ConsumedQuantity".into(), "DECIMAL(38,18)".into()),
            ("billing_period".into(), "VARCHAR".into()),
        ]
    );
    let rows = curlew_testkit::duckdb::query(&format!(
        "select billing_period, count(*)::varchar, sum(BilledCost)::varchar, sum(EffectiveCost)::varchar, \
         sum(ListCost)::varchar, sum(ContractedCost)::varchar, coalesce(sum(ConsumedQuantity), 0)::varchar \
         from read_parquet('{glob}', hive_partitioning = true) group by all order by 1"
    ))
    .expect("duckdb");
    assert_eq!(rows.len(), report.periods.len());
    for (r, (period, t)) in rows.iter().zip(&report.periods) {
        let d = |i: usize| -> Money {
            r[i].as_deref()
                .unwrap()
                .parse::<Money>()
                .unwrap()
                .normalize()
        };
        assert_eq!(r[0].as_deref(), Some(period.as_str()));
        assert_eq!(r[1].as_deref(), Some(t.rows.to_string().as_str()));
        assert_eq!(d(2), money(t.billed), "{period} BilledCost");
        assert_eq!(d(3), money(t.effective), "{period} EffectiveCost");
        assert_eq!(d(4), money(t.list), "{period} ListCost");
        assert_eq!(d(5), money(t.contracted), "{period} ContractedCost");
        assert_eq!(d(6), money(t.consumed), "{period} ConsumedQuantity");
    }
}

/// The number of AWS rows of a source, by DuckDB.
fn duck_count(sql: &str) -> Option<u64> {
    curlew_testkit::duckdb::query(sql).map(|r| r[0][0].as_deref().unwrap().parse().unwrap())
}

#[test]
fn shared_legacy_csv_exports_with_the_rollups_totals() {
    let Some(file) = shared_data("cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv")
    else {
        return;
    };
    let root = copy_to_temp(&file);
    let out = tempfile::tempdir().unwrap();
    let report = export(root.path(), out.path());
    let store = tempfile::tempdir().unwrap();
    let rollups = summaries(&ingest_dir(root.path(), store.path(), |_| {}));
    assert_totals_equal(&report, &rollups);
    assert_eq!(report.periods["2023-11"].rows, 1281);
    if let Some(n) = duck_count(&format!(
        "select count(*) from read_csv('{}', all_varchar = true)",
        file.display()
    )) {
        assert_eq!(report.periods["2023-11"].rows, n);
    }
    assert_eq!(
        walk(out.path())
            .iter()
            .map(|p| p.strip_prefix(out.path()).unwrap().to_path_buf())
            .collect::<Vec<_>>(),
        [PathBuf::from(
            "billing_period=2023-11/sample-anonymous-aws-export-dataset.parquet"
        )]
    );
    assert_duckdb_reads(out.path(), &report);
}

#[test]
fn shared_workshop_parquet_exports_with_the_rollups_totals() {
    let Some(dir) = shared_data("cur1-parquet-workshop") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let report = export(&dir, out.path());
    let store = tempfile::tempdir().unwrap();
    let rollups = summaries(&ingest_dir(&dir, store.path(), |_| {}));
    assert_totals_equal(&report, &rollups);
    let pq = dir.join("year=2018/month=10/Oct2018-WorkshopCUR-00001.snappy.parquet");
    if let Some(n) = duck_count(&format!(
        "select count(*) from read_parquet('{}')",
        pq.display()
    )) {
        assert_eq!(report.periods["2018-10"].rows, n);
    }
    assert_eq!(report.files.len(), 1);
    assert_duckdb_reads(out.path(), &report);
}

#[test]
fn shared_focus_sample_exports_aws_rows_and_counts_the_others() {
    let Some(file) = shared_data("focus-1.0-sample/focus_sample.csv") else {
        return;
    };
    let root = copy_to_temp(&file);
    let out = tempfile::tempdir().unwrap();
    let report = export(root.path(), out.path());
    let store = tempfile::tempdir().unwrap();
    let rollups = summaries(&ingest_dir(root.path(), store.path(), |_| {}));
    assert_totals_equal(&report, &rollups);
    let others: u64 = report.other_providers.values().map(|p| p.rows).sum();
    assert_eq!(others, 58, "{:?}", report.other_providers);
    let exported: u64 = report.periods.values().map(|t| t.rows).sum();
    if let Some(n) = duck_count(&format!(
        "select count(*) from read_csv('{}', all_varchar = true) where ProviderName = 'AWS'",
        file.display()
    )) {
        assert_eq!(exported, n);
    }
    assert_duckdb_reads(out.path(), &report);
}

/// Every generated format (legacy CSV and Parquet, CUR 2.0 CSV and Parquet,
/// FOCUS) with manifests: the rollup's totals, one output file per input
/// file, and the same bytes from a second export.
#[test]
fn every_format_exports_with_the_rollups_totals_one_file_per_input_same_bytes() {
    for format in [
        SampleFormat::Cur1Csv,
        SampleFormat::Cur1Parquet,
        SampleFormat::Cur2Csv,
        SampleFormat::Cur2Parquet,
        SampleFormat::Focus,
    ] {
        let src = tempfile::tempdir().unwrap();
        let mut spec = SampleSpec::new(format, 20_000);
        spec.files = 3;
        write_sample(&spec, src.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let report = export(src.path(), out.path());
        let store = tempfile::tempdir().unwrap();
        let rollups = summaries(&ingest_dir(src.path(), store.path(), |_| {}));
        assert_totals_equal(&report, &rollups);
        let inputs = report.files.len();
        assert_eq!(inputs, 3, "{format:?}");
        let written = walk(out.path());
        assert_eq!(written.len(), inputs, "{format:?}: one file per input file");
        let again = tempfile::tempdir().unwrap();
        export(src.path(), again.path());
        let second = walk(again.path());
        assert_eq!(second.len(), written.len());
        for (a, b) in written.iter().zip(&second) {
            assert_eq!(
                a.strip_prefix(out.path()).unwrap(),
                b.strip_prefix(again.path()).unwrap()
            );
            assert!(
                std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
                "{a:?}: same bytes"
            );
        }
        assert_duckdb_reads(out.path(), &report);
    }
}

/// Tags (FOCUS 1.2: a JSON object): the same generated rows as legacy CSV
/// (`resourceTags/user:team` columns), legacy Parquet
/// (`resource_tags_user_team`) and CUR 2.0 Parquet (the `resource_tags`
/// map) give the same Tags, keyed as CUR 2.0 keys them (`user_team`).
/// Expected values: DuckDB over the CUR 2.0 source's map.
#[test]
fn tags_have_one_key_whatever_the_input_format() {
    let mut tags = Vec::new();
    for format in [
        SampleFormat::Cur1Csv,
        SampleFormat::Cur1Parquet,
        SampleFormat::Cur2Parquet,
    ] {
        let src = tempfile::tempdir().unwrap();
        write_sample(&SampleSpec::new(format, 3_000), src.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        export(src.path(), out.path());
        let Some(t) = curlew_testkit::duckdb::query(&format!(
            "select Tags, count(*)::varchar from read_parquet('{}/**/*.parquet') group by all order by all",
            out.path().display()
        )) else {
            return;
        };
        if format == SampleFormat::Cur2Parquet {
            let source = walk(src.path())
                .into_iter()
                .find(|p| p.extension().is_some_and(|e| e == "parquet"))
                .unwrap();
            let want = curlew_testkit::duckdb::query(&format!(
                "select case when cardinality(resource_tags) = 0 then null else to_json(map_from_entries(list_sort(map_entries(resource_tags))))::varchar end t, \
                 count(*)::varchar from read_parquet('{}/**/*.parquet') group by all order by all",
                source.parent().unwrap().display()
            ))
            .unwrap();
            assert_eq!(t, want, "CUR 2.0 map -> Tags");
        }
        assert!(
            t.iter().any(|r| r[0]
                .as_deref()
                .is_some_and(|j| j.contains("\"user_team\":"))),
            "{format:?}: {t:?}"
        );
        tags.push(t);
    }
    assert_eq!(tags[0], tags[1], "legacy CSV and Parquet");
    assert_eq!(tags[0], tags[2], "legacy and CUR 2.0");
}

/// The FinOps Foundation's focus_validator (1.0.0: FOCUS 1.0 rules) passes
/// every column the export writes, on the shared legacy CSV and on generated
/// CUR 2.0 Parquet. What it reports are columns the export does not write
/// (README: the export's deviations) and its checks that still use pre-1.0
/// names. A wrong value is caught.
#[test]
fn the_focus_validator_passes_every_column_the_export_writes() {
    let Some(python) = curlew_testkit::focus::venv_python() else {
        return;
    };
    if !curlew_testkit::duckdb::available() {
        return;
    }
    let Some(file) = shared_data("cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv")
    else {
        return;
    };
    let shared = copy_to_temp(&file);
    let generated = tempfile::tempdir().unwrap();
    write_sample(
        &SampleSpec::new(SampleFormat::Cur2Parquet, 5_000),
        generated.path(),
    )
    .unwrap();
    // Not written (README: the export's deviations): names the CUR lacks,
    // and columns with no CUR source.
    let not_written = [
        "BillingAccountName",
        "SubAccountName",
        "CommitmentDiscountCategory",
        "CommitmentDiscountName",
        "CommitmentDiscountStatus",
        "CommitmentDiscountType",
        "ContractedUnitPrice",
        "PricingCategory",
        "ResourceName",
        "ResourceType",
        "SkuPriceId",
    ];
    // Besides, the validator's own mistakes (pre-1.0 names).
    let allowed = curlew_testkit::focus::allowed_failures(&not_written);
    for root in [shared.path(), generated.path()] {
        let out = tempfile::tempdir().unwrap();
        export(root, out.path());
        let file = walk(out.path()).into_iter().next().expect("an export file");
        let v = curlew_testkit::focus::validate(&python, &file, None);
        assert!(v.tests > 100, "{v:?}");
        assert_eq!(
            v.failed, allowed,
            "{root:?}: anything else is a real failure"
        );
    }
    let out = tempfile::tempdir().unwrap();
    export(shared.path(), out.path());
    let file = walk(out.path()).into_iter().next().unwrap();
    let broken = curlew_testkit::focus::validate(&python, &file, Some("ChargeFrequency=Sometimes"));
    assert!(
        broken.failed.iter().any(|f| f == "ChargeFrequency_Enum"),
        "{broken:?}"
    );
}

/// A peer nobody here wrote: the FinOps Foundation's focus-converter 1.0.0
/// on the shared legacy CSV agrees with curlew's export by ChargeCategory,
/// service (its ServiceName is the product code, the export's
/// x_ServiceCode), SubAccountId, RegionId and day, within 1e-6 (it sums
/// doubles; its ListCost is rate x amount), row for row in count. The shared
/// CSV has no credits or refunds, where the two deliberately differ (README:
/// Credit vs its Adjustment).
#[test]
fn focus_converter_agrees_with_the_export_by_category_service_account_region_and_day() {
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
    export(root.path(), out.path());
    let ours = format!(
        "read_parquet('{}/**/*.parquet', hive_partitioning = true)",
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
           count(*) filter (where c.n <> p.n), \
           (select sum(n) from c)::VARCHAR, (select sum(n) from p)::VARCHAR \
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
    assert_eq!(
        r[4].as_deref(),
        Some("0"),
        "the same rows in every group: {r:?}"
    );
    assert_eq!(r[5].as_deref(), Some("1281"), "{r:?}");
    assert_eq!(r[5], r[6], "{r:?}");
}
