//! Every sample format and versioning mode, ingested through discovery and the
//! ledger, must add up exactly to what the generator wrote.

mod common;

use common::{failure, ingest_dir, rt, summaries};
use curlew::ingest::DeliveryStatus;
use curlew::ledger::Ledger;
use curlew::report::{aggregate, load_committed, Dim};
use curlew::rollup::Measure;
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use curlew::store::Store;

fn check(format: SampleFormat, versioning: Versioning) {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(format, 3_000);
    spec.versioning = versioning;
    spec.files = 3;
    let sample = write_sample(&spec, src.path()).unwrap();
    let report = ingest_dir(src.path(), out.path(), |o| o.parallelism = 2);
    assert!(
        report.warnings.is_empty(),
        "{format:?}: {:?}",
        report.warnings
    );
    let s = summaries(&report);
    assert_eq!(s.len(), 1, "{format:?}");
    let s = &s[0];
    let e = &sample.expected;
    assert_eq!(s.billing_period, "2024-01");
    assert!(s.source.vouched_by_manifest);
    assert_eq!(s.input_files.len(), 3);
    assert_eq!(s.rows_read, e.rows, "{format:?} rows");
    assert_eq!(
        s.rows_per_line_item_type, e.rows_per_type,
        "{format:?} rows per type"
    );
    assert_eq!(s.totals.billed_cost, e.billed, "{format:?} BilledCost");
    assert_eq!(
        s.totals.effective_cost, e.effective,
        "{format:?} EffectiveCost (amortized)"
    );
    assert_eq!(s.totals.list_cost, e.list, "{format:?} ListCost");
    assert_eq!(s.totals.usage_amount, e.usage, "{format:?} usage");
    if format != SampleFormat::Focus {
        assert_eq!(
            s.totals.unblended_cost,
            Some(e.unblended),
            "{format:?} unblended"
        );
    }
    // What `curlew report` reads back (through CURRENT) adds up to the same.
    let ledger = Ledger::new(Store::local(out.path()), "");
    let committed = rt().block_on(load_committed(&ledger, "t", None)).unwrap();
    let by_account = aggregate(&committed, &[Dim::Account], Measure::Billed);
    let total: curlew::money::Money = by_account.iter().map(|(_, s)| s.billed_cost).sum();
    assert_eq!(total, e.billed);
    for (k, sums) in &by_account {
        assert_eq!(
            Some(&sums.billed_cost),
            e.billed_per_account.get(&k[0]),
            "account {}",
            k[0]
        );
    }
}

#[test]
fn cur1_csv_overwrite() {
    check(SampleFormat::Cur1Csv, Versioning::Overwrite);
}
#[test]
fn cur1_csv_new_version() {
    check(SampleFormat::Cur1Csv, Versioning::New);
}
#[test]
fn cur1_parquet_athena_layout() {
    check(SampleFormat::Cur1Parquet, Versioning::Overwrite);
}
#[test]
fn cur1_parquet_new_version() {
    check(SampleFormat::Cur1Parquet, Versioning::New);
}
#[test]
fn cur2_parquet_overwrite() {
    check(SampleFormat::Cur2Parquet, Versioning::Overwrite);
}
#[test]
fn cur2_parquet_new_version() {
    check(SampleFormat::Cur2Parquet, Versioning::New);
}
#[test]
fn cur2_csv() {
    check(SampleFormat::Cur2Csv, Versioning::Overwrite);
}
#[test]
fn focus_export() {
    check(SampleFormat::Focus, Versioning::New);
}

/// The one CURRENT of tenant `t` (the source's payer and report are the generator's).
fn the_current(out: &std::path::Path) -> std::path::PathBuf {
    let found: Vec<_> = curlew_testkit::upload::walk(out)
        .into_iter()
        .filter(|p| p.ends_with("CURRENT"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn reingest_is_a_no_op_and_since_skips_old_periods() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write_sample(&SampleSpec::new(SampleFormat::Cur1Csv, 500), src.path()).unwrap();
    summaries(&ingest_dir(src.path(), out.path(), |_| {}));
    let current = the_current(out.path());
    assert!(
        current
            .to_string_lossy()
            .contains("tenant=t/billing_period=2024-01/payer="),
        "{current:?}"
    );
    let before = std::fs::read(&current).unwrap();
    let again = ingest_dir(src.path(), out.path(), |_| {});
    assert!(
        matches!(
            again.deliveries[0].status,
            DeliveryStatus::AlreadyCurrent { .. }
        ),
        "{again:?}"
    );
    assert_eq!(before, std::fs::read(&current).unwrap());
    let fresh = tempfile::tempdir().unwrap();
    let since = ingest_dir(src.path(), fresh.path(), |o| {
        o.since = Some("2024-02".into())
    });
    assert!(matches!(
        since.deliveries[0].status,
        DeliveryStatus::BeforeSince
    ));
    assert!(!fresh.path().join("tenant=t").exists());
}

#[test]
fn a_manifest_that_names_a_missing_file_commits_nothing() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Cur2Parquet, 300);
    spec.files = 2;
    let sample = write_sample(&spec, src.path()).unwrap();
    std::fs::remove_file(src.path().join(&sample.data_keys[1])).unwrap();
    let r = ingest_dir(src.path(), out.path(), |_| {});
    let msg = failure(&r);
    assert!(
        msg.contains("do not exist") && msg.contains(&sample.data_keys[1]) && msg.contains("retry"),
        "{msg}"
    );
    assert!(!out.path().join("tenant=t/billing_period=2024-01").exists());
}

#[test]
fn rollup_parquet_is_readable_by_duckdb() {
    if !curlew_testkit::duckdb::available() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let sample = write_sample(&SampleSpec::new(SampleFormat::Cur1Csv, 2_000), src.path()).unwrap();
    summaries(&ingest_dir(src.path(), out.path(), |_| {}));
    let glob = format!(
        "{}/tenant=*/billing_period=*/payer=*/report=*/revision=*/rollup.parquet",
        out.path().display()
    );
    let sql = format!(
        "import duckdb; print(duckdb.sql(\"select sum(BilledCost)::varchar, count(distinct tenant), min(billing_period) from read_parquet('{glob}', hive_partitioning=true)\").fetchall()[0])"
    );
    let o = std::process::Command::new("python3")
        .args(["-c", &sql])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = format!("{:.18}", sample.expected.billed);
    assert!(text.contains(&want), "duckdb said {text}, want {want}");
    assert!(
        text.contains("'2024-01'") || text.contains("2024-01"),
        "{text}"
    );
}

#[test]
fn an_athena_report_being_updated_is_held_back() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let sample =
        write_sample(&SampleSpec::new(SampleFormat::Cur1Parquet, 300), src.path()).unwrap();
    let status = src.path().join(format!(
        "cur/{}/cost_and_usage_data_status/cost_and_usage_data_status.parquet",
        sample.report
    ));
    assert!(status.exists(), "the Athena layout has a status table");
    curlew::sample::write_status(&status, "UPDATING").unwrap();
    let r = ingest_dir(src.path(), out.path(), |_| {});
    assert_eq!(r.deliveries.len(), 1, "{r:?}");
    match &r.deliveries[0].status {
        DeliveryStatus::Held(why) => {
            assert!(
                why.contains("status UPDATING") && why.contains("held back"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(!r.failed(), "a hold is not a failure");
    assert!(!out
        .path()
        .join("tenant=t")
        .join("billing_period=2018-10")
        .exists());
    curlew::sample::write_status(&status, "READY").unwrap();
    assert_eq!(
        summaries(&ingest_dir(src.path(), out.path(), |_| {})).len(),
        1
    );
}

/// `--cardinality high`: the month fans out into many more groups (60
/// accounts, hundreds of usage types), still adds up exactly, and CSV and
/// Parquet of the same rows commit the same groups (several files: the
/// commit merges parts).
#[test]
fn high_cardinality_months_fan_out_and_add_up_exactly() {
    use curlew::sample::Cardinality;
    let mut groups = std::collections::BTreeMap::new();
    for card in [Cardinality::Low, Cardinality::High] {
        for format in [SampleFormat::Cur1Csv, SampleFormat::Cur1Parquet] {
            let src = tempfile::tempdir().unwrap();
            let out = tempfile::tempdir().unwrap();
            let mut spec = SampleSpec::new(format, 40_000);
            spec.files = 3;
            spec.cardinality = card;
            let sample = write_sample(&spec, src.path()).unwrap();
            let report = ingest_dir(src.path(), out.path(), |o| o.parallelism = 2);
            let s = &summaries(&report)[0];
            let e = &sample.expected;
            assert_eq!(s.rows_read, e.rows, "{card:?} {format:?}");
            assert_eq!(s.totals.billed_cost, e.billed, "{card:?} {format:?}");
            assert_eq!(s.totals.effective_cost, e.effective, "{card:?} {format:?}");
            assert_eq!(s.totals.usage_amount, e.usage, "{card:?} {format:?}");
            let ledger = Ledger::new(Store::local(out.path()), "");
            let committed = rt().block_on(load_committed(&ledger, "t", None)).unwrap();
            let accounts = aggregate(&committed, &[Dim::Account], Measure::Billed).len();
            let usage_types = aggregate(&committed, &[Dim::UsageType], Measure::Billed).len();
            let total: curlew::money::Money =
                aggregate(&committed, &[Dim::Day, Dim::UsageType], Measure::Billed)
                    .iter()
                    .map(|(_, s)| s.billed_cost)
                    .sum();
            assert_eq!(total, e.billed, "{card:?} {format:?} read back");
            match card {
                Cardinality::Low => assert!(accounts <= 40 && usage_types < 100),
                Cardinality::High => {
                    assert_eq!(accounts, 60, "{format:?}");
                    assert!(usage_types > 400, "{format:?}: {usage_types} usage types");
                }
            }
            groups.insert((format!("{card:?}"), format!("{format:?}")), s.rollup_rows);
        }
    }
    let g = |c: &str, f: &str| groups[&(c.to_string(), f.to_string())];
    assert_eq!(g("High", "Cur1Csv"), g("High", "Cur1Parquet"));
    assert_eq!(g("Low", "Cur1Csv"), g("Low", "Cur1Parquet"));
    assert!(g("High", "Cur1Csv") > 3 * g("Low", "Cur1Csv"), "{groups:?}");
}

/// The rollup is FOCUS 1.2 by name, type and value (the README lists the
/// deviations), as DuckDB reads it: Date/Time columns are UTC timestamps with
/// exclusive ends, the mandatory columns are never null, categories are the
/// spec's values (written out here from the spec, not from curlew), RegionName
/// is null exactly when RegionId is, credits are Credit, and ContractedCost is
/// the unblended cost of a CUR.
#[test]
fn the_rollup_is_focus_1_2_by_name_type_and_value() {
    if !curlew_testkit::duckdb::available() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write_sample(&SampleSpec::new(SampleFormat::Cur1Csv, 5_000), src.path()).unwrap();
    summaries(&ingest_dir(src.path(), out.path(), |_| {}));
    let file = format!(
        "read_parquet('{}/tenant=*/billing_period=*/payer=*/report=*/revision=*/rollup.parquet')",
        out.path().display()
    );
    let q = |sql: String| curlew_testkit::duckdb::query(&sql).expect("duckdb");
    let one = |sql: String| q(sql)[0][0].clone().unwrap_or_default();

    let types: std::collections::BTreeMap<String, String> = q(format!(
        "select column_name, column_type from (describe select * from {file})"
    ))
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
    .collect();
    for c in [
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargePeriodStart",
        "ChargePeriodEnd",
    ] {
        assert_eq!(types[c], "TIMESTAMP WITH TIME ZONE", "{c}");
    }
    for c in ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost"] {
        assert_eq!(types[c], "DECIMAL(38,18)", "{c}");
    }
    for c in [
        "BillingAccountId",
        "SubAccountId",
        "ProviderName",
        "PublisherName",
        "InvoiceIssuerName",
        "ServiceName",
        "ServiceCategory",
        "RegionId",
        "RegionName",
        "ChargeCategory",
        "ChargeClass",
        "BillingCurrency",
    ] {
        assert_eq!(types[c], "VARCHAR", "{c}");
    }

    let mandatory = [
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "BillingAccountId",
        "ProviderName",
        "PublisherName",
        "InvoiceIssuerName",
        "ServiceName",
        "ServiceCategory",
        "ChargeCategory",
        "BillingCurrency",
        "BilledCost",
        "EffectiveCost",
        "ListCost",
        "ContractedCost",
    ];
    for c in mandatory {
        assert_eq!(
            one(format!("select count(*) from {file} where \"{c}\" is null")),
            "0",
            "{c} has nulls"
        );
    }
    let bad_time = one(format!(
        "select count(*) from {file} where ChargePeriodEnd <> ChargePeriodStart + interval 1 day \
         or BillingPeriodEnd <> BillingPeriodStart + interval 1 month \
         or date_trunc('month', ChargePeriodStart) <> BillingPeriodStart \
         or strftime(ChargePeriodStart at time zone 'UTC', '%H:%M:%S') <> '00:00:00'"
    ));
    assert_eq!(bad_time, "0");
    let categories = one(format!(
        "select count(*) from {file} where ChargeCategory not in ('Usage', 'Purchase', 'Tax', 'Credit', 'Adjustment') \
         or ServiceCategory not in ('AI and Machine Learning', 'Analytics', 'Business Applications', 'Compute', \
         'Databases', 'Developer Tools', 'Multicloud', 'Identity', 'Integration', 'Internet of Things', \
         'Management and Governance', 'Media', 'Migration', 'Mobile', 'Networking', 'Security', 'Storage', 'Web', 'Other') \
         or coalesce(ChargeClass, 'Correction') <> 'Correction'"
    ));
    assert_eq!(categories, "0");
    assert_eq!(
        one(format!(
            "select count(*) from {file} where (RegionId is null) <> (RegionName is null)"
        )),
        "0"
    );
    assert_eq!(
        q(format!(
            "select distinct ChargeCategory from {file} where x_LineItemType = 'Credit'"
        )),
        [[Some("Credit".to_owned())]]
    );
    assert_eq!(
        one(format!(
            "select (sum(ContractedCost) = sum(x_UnblendedCost))::varchar from {file}"
        )),
        "true"
    );
    assert_eq!(
        one(format!(
            "select string_agg(distinct ProviderName || '|' || PublisherName || '|' || InvoiceIssuerName) from {file}"
        )),
        "AWS|Amazon Web Services|Amazon Web Services"
    );
}

/// The FinOps Foundation's focus_validator (1.0.0: FOCUS 1.0 rules, 133
/// checks) passes every column the rollup has. What it reports are exactly
/// the columns a rollup leaves out by design (the README's deviations: per
/// line item, or account names the CUR lacks) and four checks that still use
/// pre-1.0 column names. A wrong value is caught (ServiceCategory `Bogus`).
#[test]
fn the_focus_validator_passes_every_column_the_rollup_has() {
    let Some(python) = curlew_testkit::focus::venv_python() else {
        return;
    };
    if !curlew_testkit::duckdb::available() {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write_sample(&SampleSpec::new(SampleFormat::Cur1Csv, 5_000), src.path()).unwrap();
    // With a tag dimension, so that Tags holds JSON objects (and nulls) to check.
    summaries(&ingest_dir(src.path(), out.path(), |o| {
        o.dimensions = curlew::dimensions::Dimensions::from_args(&["team".into()], &[]).unwrap()
    }));
    let rollup = walk_files(out.path())
        .into_iter()
        .find(|p| p.ends_with("rollup.parquet"))
        .expect("a rollup");
    let v = curlew_testkit::focus::validate(&python, &rollup, None);
    assert_eq!(v.tests, 133, "{v:?}");
    // Absent by design (README: the rollup's deviations).
    let absent_by_design = [
        "BillingAccountName",
        "SubAccountName",
        "ChargeDescription",
        "CommitmentDiscountCategory",
        "CommitmentDiscountId",
        "CommitmentDiscountName",
        "CommitmentDiscountStatus",
        "CommitmentDiscountType",
        "ConsumedUnit",
        "ContractedUnitPrice",
        "ListUnitPrice",
        "PricingCategory",
        "PricingQuantity",
        "PricingUnit",
        "ResourceName",
        "ResourceType",
        "SkuId",
        "SkuPriceId",
    ];
    // Besides, the validator's own mistakes (pre-1.0 names).
    let allowed = curlew_testkit::focus::allowed_failures(&absent_by_design);
    assert_eq!(v.failed, allowed, "anything else is a real failure");

    let broken = curlew_testkit::focus::validate(&python, &rollup, Some("ServiceCategory=Bogus"));
    assert!(
        broken.failed.iter().any(|f| f == "ServiceCategory_Enum"),
        "{broken:?}"
    );
}

fn walk_files(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
