//! Finality (issue 15, item 1): a committed revision says whether AWS has
//! invoiced the month (every row carries an invoice id) or it is an estimate,
//! and a new revision of a final month says it is a restatement. Expected
//! values come from DuckDB over the source files.

mod common;

use common::{ingest_dir, shared_data, summaries};
use curlew::dimensions::Dimensions;
use curlew::output::Finality;
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use curlew_testkit::duckdb;

/// The shared anonymised legacy CSV has no `bill/InvoiceId` on any row: an
/// estimated month.
#[test]
fn a_month_without_invoice_ids_is_estimated() {
    let Some(file) = shared_data("cur1-csv-anonymised/sample-anonymous-aws-export-dataset.csv")
    else {
        return;
    };
    let Some(want) = duckdb::query(&format!(
        "select count(*) filter (where coalesce(\"bill/InvoiceId\", '') = '')::varchar, \
         count(distinct nullif(\"bill/InvoiceId\", ''))::varchar \
         from read_csv('{}', all_varchar=true)",
        file.display()
    )) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(&file, root.path().join("cur.csv")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let s = &summaries(&ingest_dir(root.path(), out.path(), |_| {}))[0];
    assert_eq!(
        want[0][1].as_deref(),
        Some("0"),
        "no invoice id in the source"
    );
    assert_eq!(
        s.rows_without_invoice.to_string(),
        want[0][0].clone().unwrap()
    );
    assert_eq!(s.finality, Some(Finality::Estimated));
    assert!(s.invoice_ids.is_empty());
}

/// The workshop CUR (Parquet, Athena names) is invoiced: one invoice id on
/// every row. The Parquet fast path and the row-by-row path (taken when a
/// tag dimension is named) say the same.
#[test]
fn an_invoiced_month_is_final_on_both_parquet_paths() {
    let Some(dir) = shared_data("cur1-parquet-workshop") else {
        return;
    };
    let Some(want) = duckdb::query(&format!(
        "select distinct bill_invoice_id from read_parquet('{}/**/*.parquet') order by 1",
        dir.display()
    )) else {
        return;
    };
    let want: Vec<String> = want.into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(want.len(), 1, "{want:?}");
    for tags in [vec![], vec!["environment".to_string()]] {
        let out = tempfile::tempdir().unwrap();
        let s = &summaries(&ingest_dir(&dir, out.path(), |o| {
            o.dimensions = Dimensions::from_args(&tags, &[]).unwrap();
        }))[0];
        assert_eq!(s.finality, Some(Finality::Final), "tags {tags:?}");
        assert_eq!(s.invoice_ids, want, "tags {tags:?}");
        assert_eq!(s.rows_without_invoice, 0, "tags {tags:?}");
    }
}

/// A new revision of a month that was final is a restatement: its summary
/// and its commit notice name the final revision it replaces. The first
/// revision restates nothing.
#[test]
fn a_new_revision_of_a_final_month_is_a_restatement() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let write = |seed: u64| {
        let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, 800);
        spec.seed = seed;
        spec.payer = Some("111122223333".into());
        write_sample(&spec, src.path()).unwrap()
    };
    write(1);
    let first_report = ingest_dir(src.path(), out.path(), |_| {});
    let first = summaries(&first_report);
    assert_eq!(first[0].finality, Some(Finality::Final));
    assert_eq!(restated(&first_report), None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(3);
    let second_report = ingest_dir(src.path(), out.path(), |_| {});
    let second = summaries(&second_report);
    assert_eq!(second[0].finality, Some(Finality::Final));
    assert_eq!(
        restated(&second_report).as_deref(),
        Some(first[0].revision.as_str()),
        "the revision of a final month it replaces"
    );
    // The commit notice (kept in the outbox, marked sent) says so too.
    let notice = curlew_testkit::upload::walk(out.path())
        .into_iter()
        .find(|p| {
            p.to_string_lossy().contains("/_outbox/")
                && p.file_name().unwrap().to_string_lossy()
                    == format!("{}.json", second[0].revision)
        })
        .expect("the second revision's notice in the outbox");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(notice).unwrap()).unwrap();
    assert_eq!(rec["notice"]["finality"], "final", "{rec}");
    assert_eq!(
        rec["notice"]["restates"],
        first[0].revision.as_str(),
        "{rec}"
    );
}

/// What the one committed period of a report restates.
fn restated(r: &curlew::ingest::IngestReport) -> Option<String> {
    match &r.deliveries[0].status {
        curlew::ingest::DeliveryStatus::Committed(c) => c[0].restates.clone(),
        other => panic!("{other:?}"),
    }
}
