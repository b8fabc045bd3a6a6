//! `curlew commitments` end to end: sample, ingest, then utilization and
//! coverage as JSON (exact decimals as strings) and as a table, checked
//! against the formulas run in DuckDB over the source CSV.

mod common;

use curlew_testkit::duckdb;

use common::{curlew, run};

fn dec(v: &serde_json::Value) -> curlew::money::Money {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a decimal string"))
        .parse()
        .unwrap()
}

fn dec_of(s: &Option<String>) -> curlew::money::Money {
    s.as_deref().unwrap().parse().unwrap()
}

#[test]
fn commitments_as_json_and_table_match_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("billing"), dir.path().join("out"));
    run(curlew()
        .args([
            "sample",
            "--rows",
            "4000",
            "--payer",
            "123456789012",
            "--out",
        ])
        .arg(&src));
    run(curlew()
        .arg("ingest")
        .arg(&src)
        .args(["--tenant", "acme", "--store"])
        .arg(&out));
    let csv: Vec<String> = common::walk(&src)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".csv.gz"))
        .map(|p| format!("'{}'", p.display()))
        .collect();
    assert!(!csv.is_empty());
    let n = |c: &str| format!("coalesce(cast(nullif(\"{c}\", '') as decimal(38,18)), 0)");
    let Some(want) = duckdb::query(&format!(
        "select \
           count(distinct \"savingsPlan/SavingsPlanARN\") filter (where \"lineItem/LineItemType\" = 'SavingsPlanRecurringFee')::varchar, \
           sum({used}) filter (where \"lineItem/LineItemType\" = 'SavingsPlanRecurringFee')::varchar, \
           sum({total}) filter (where \"lineItem/LineItemType\" = 'SavingsPlanRecurringFee')::varchar, \
           count(distinct \"reservation/ReservationARN\") filter (where \"lineItem/LineItemType\" in ('RIFee', 'DiscountedUsage'))::varchar, \
           sum({pod}) filter (where \"lineItem/LineItemType\" in ('DiscountedUsage', 'SavingsPlanCoveredUsage'))::varchar, \
           sum({pod}) filter (where \"lineItem/LineItemType\" in ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage'))::varchar, \
           count(distinct \"lineItem/UsageAccountId\") filter (where \"lineItem/LineItemType\" in ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage'))::varchar \
         from read_csv([{files}], all_varchar=true)",
        used = n("savingsPlan/UsedCommitment"),
        total = n("savingsPlan/TotalCommitmentToDate"),
        pod = n("pricing/publicOnDemandCost"),
        files = csv.join(", ")
    )) else {
        return;
    };
    let w = &want[0];
    let json = run(curlew()
        .args([
            "commitments",
            "--tenant",
            "acme",
            "--period",
            "2024-01",
            "--format",
            "json",
            "--store",
        ])
        .arg(&out));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sp = &v["totals"]["savings_plans"];
    assert_eq!(dec(&sp["used_cost"]), dec_of(&w[1]));
    assert_eq!(dec(&sp["commitment_cost"]), dec_of(&w[2]));
    assert_eq!(
        dec(&sp["unused_cost"]),
        dec_of(&w[2]) - dec_of(&w[1]),
        "unused = the difference"
    );
    let count = |kind: &str| {
        v["utilization"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["kind"] == kind)
            .count()
            .to_string()
    };
    assert_eq!(Some(count("SavingsPlan")), w[0]);
    assert_eq!(Some(count("Reservation")), w[3]);
    let cov = &v["totals"]["coverage"];
    assert_eq!(dec(&cov["covered_cost"]), dec_of(&w[4]));
    assert_eq!(dec(&cov["eligible_cost"]), dec_of(&w[5]));
    let ratio: f64 = cov["coverage"].as_str().unwrap().parse().unwrap();
    let want_ratio: f64 = w[4].as_deref().unwrap().parse::<f64>().unwrap()
        / w[5].as_deref().unwrap().parse::<f64>().unwrap();
    assert!(
        (ratio - want_ratio).abs() < 1e-12,
        "{ratio} vs {want_ratio}"
    );
    assert_eq!(
        Some(v["coverage"].as_array().unwrap().len().to_string()),
        w[6]
    );
    // The table names every commitment and account, with totals.
    let table = run(curlew()
        .args([
            "commitments",
            "--tenant",
            "acme",
            "--period",
            "2024-01",
            "--store",
        ])
        .arg(&out));
    for u in v["utilization"].as_array().unwrap() {
        assert!(
            table.contains(u["commitment_id"].as_str().unwrap()),
            "{table}"
        );
    }
    for c in v["coverage"].as_array().unwrap() {
        assert!(table.contains(c["account"].as_str().unwrap()), "{table}");
    }
    assert!(table.contains("TOTAL        SavingsPlan"), "{table}");
    assert!(table.contains("TOTAL        Reservation"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("TOTAL ")), "{table}");
    // A period without commitments, and a bad format: one line saying what to do.
    for (args, says) in [
        (
            vec!["--period", "2023-05"],
            "no commitments committed for tenant \"acme\" and period 2023-05",
        ),
        (
            vec!["--period", "2024-01", "--format", "csv"],
            "--format \"csv\" is not known; use table or json",
        ),
        (vec!["--period", "2024-13"], "is not a billing period"),
    ] {
        let o = curlew()
            .args(["commitments", "--tenant", "acme", "--store"])
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
