//! Restatement diffs (issue 15, item 2): what changed between two revisions
//! of a month, per group, exactly; the commit notice carries the total delta
//! and the top changes; gc keeps the replaced revision for its grace period.
//! Expected values come from DuckDB over the two revisions' source files.

mod common;

use common::{ingest_dir, summaries};
use curlew::diff::{diff_revisions, notice_dims, Between, DiffError};
use curlew::ledger::{Ledger, SourceId};
use curlew::money::{dec, Money};
use curlew::report::Dim;
use curlew::rollup::Measure;
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use curlew::store::Store;
use curlew_testkit::duckdb;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PAYER: &str = "111122223333";

/// Two deliveries of one month (generator seeds 1 and 3, same payer and
/// report), each ingested in turn; returns the copies of each revision's
/// data files and the summaries' revisions.
struct TwoRevisions {
    _src: tempfile::TempDir,
    out: tempfile::TempDir,
    _copies: tempfile::TempDir,
    files: [Vec<PathBuf>; 2],
    revisions: [String; 2],
    notices: curlew::ingest::IngestReport,
}

fn two_revisions(format: SampleFormat) -> TwoRevisions {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let copies = tempfile::tempdir().unwrap();
    let mut files: [Vec<PathBuf>; 2] = Default::default();
    let mut revisions: [String; 2] = Default::default();
    let mut last = None;
    for (i, seed) in [1u64, 3].into_iter().enumerate() {
        if i == 1 {
            // Revisions are ordered by time to the second.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        let mut spec = SampleSpec::new(format, 3_000);
        spec.seed = seed;
        spec.payer = Some(PAYER.into());
        let sample = write_sample(&spec, src.path()).unwrap();
        for (j, k) in sample.data_keys.iter().enumerate() {
            let name = Path::new(k).file_name().unwrap().to_string_lossy();
            let copy = copies.path().join(format!("r{i}-{j}-{name}"));
            std::fs::copy(sample.root.join(k), &copy).unwrap();
            files[i].push(copy);
        }
        let report = ingest_dir(src.path(), out.path(), |_| {});
        revisions[i] = summaries(&report)[0].revision.clone();
        last = Some(report);
    }
    TwoRevisions {
        _src: src,
        out,
        _copies: copies,
        files,
        revisions,
        notices: last.unwrap(),
    }
}

fn ledger(out: &Path) -> Ledger {
    Ledger::new(Store::local(out), "")
}

/// BilledCost per usage account of each revision's source files, by DuckDB
/// (AWS's billed amount: net unblended cost where the row has it, else unblended).
fn source_by_account(format: SampleFormat, files: &[PathBuf]) -> BTreeMap<String, Money> {
    let list: Vec<String> = files.iter().map(|f| format!("'{}'", f.display())).collect();
    let list = list.join(", ");
    let sql = match format {
        SampleFormat::Cur1Csv => format!(
            "select \"lineItem/UsageAccountId\", sum(coalesce(nullif(\"lineItem/NetUnblendedCost\", ''), \"lineItem/UnblendedCost\")::DECIMAL(38,12))::varchar \
             from read_csv([{list}], all_varchar=true) group by 1"
        ),
        SampleFormat::Cur2Parquet => format!(
            "select line_item_usage_account_id, sum(coalesce(line_item_net_unblended_cost, line_item_unblended_cost)::DECIMAL(38,12))::varchar \
             from read_parquet([{list}]) group by 1"
        ),
        other => panic!("{other:?}"),
    };
    duckdb::query(&sql)
        .expect("duckdb")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), dec(r[1].as_deref().unwrap())))
        .collect()
}

/// `curlew diff` by account equals DuckDB's per-account difference of the two
/// deliveries' sources, exactly, groups only one side has included; the
/// total delta too; and the commit notice of the second ingest carries the
/// same total delta and the largest changes by account and service.
#[test]
fn a_revision_diff_by_account_is_exact_against_duckdb() {
    if !duckdb::available() {
        return;
    }
    for format in [SampleFormat::Cur1Csv, SampleFormat::Cur2Parquet] {
        let t = two_revisions(format);
        let before = source_by_account(format, &t.files[0]);
        let after = source_by_account(format, &t.files[1]);
        let mut want: BTreeMap<String, Money> = BTreeMap::new();
        for k in before.keys().chain(after.keys()) {
            let d = after.get(k).copied().unwrap_or_default()
                - before.get(k).copied().unwrap_or_default();
            if !d.is_zero() || !before.contains_key(k) || !after.contains_key(k) {
                want.insert(k.clone(), d.normalize());
            }
        }
        let want_total: Money = want.values().copied().sum();
        assert!(!want.is_empty(), "{format:?}: the two seeds differ");

        let rt = tokio::runtime::Runtime::new().unwrap();
        let ledger = ledger(t.out.path());
        let source = SourceId::new("t", PAYER, &source_report(&t.out));
        let d = rt
            .block_on(diff_revisions(
                &ledger,
                &source,
                "2024-01",
                &Between::default(),
                &[Dim::Account],
                Measure::Billed,
            ))
            .unwrap();
        assert_eq!(d.from.revision, t.revisions[0], "{format:?}");
        assert_eq!(d.to.revision, t.revisions[1], "{format:?}");
        let got: BTreeMap<String, Money> = d
            .comparison
            .changes
            .iter()
            .map(|c| (c.key[0].clone(), c.delta))
            .collect();
        assert_eq!(got, want, "{format:?}");
        assert_eq!(
            d.comparison.total_delta,
            want_total.normalize(),
            "{format:?}"
        );
        let deltas: Vec<Money> = d.comparison.changes.iter().map(|c| c.delta.abs()).collect();
        assert!(deltas.windows(2).all(|w| w[0] >= w[1]), "largest first");

        // The commit notice: same total, top changes as `diff --by account --by service`.
        let committed = match &t.notices.deliveries[0].status {
            curlew::ingest::DeliveryStatus::Committed(c) => c[0].clone(),
            other => panic!("{other:?}"),
        };
        let changes = committed
            .changes
            .expect("the second revision replaced the first");
        assert_eq!(changes.against, t.revisions[0]);
        assert_eq!(changes.total_delta, want_total.normalize(), "{format:?}");
        let full = rt
            .block_on(diff_revisions(
                &ledger,
                &source,
                "2024-01",
                &Between::default(),
                &notice_dims(),
                Measure::Billed,
            ))
            .unwrap();
        assert_eq!(changes.groups_changed, full.comparison.changes.len());
        assert_eq!(
            changes.top_changes,
            full.comparison.changes[..changes.top_changes.len()],
        );
        assert_eq!(
            changes.top_changes.len(),
            full.comparison.changes.len().min(curlew::diff::NOTICE_TOP)
        );
        // ...and so does the notice in the outbox.
        let notice = curlew_testkit::upload::walk(t.out.path())
            .into_iter()
            .find(|p| {
                p.to_string_lossy().contains("/_outbox/")
                    && p.file_name().unwrap().to_string_lossy()
                        == format!("{}.json", t.revisions[1])
            })
            .expect("the second revision's notice");
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(notice).unwrap()).unwrap();
        assert_eq!(
            rec["notice"]["changes"]["total_delta"],
            want_total.normalize().to_string(),
            "{rec}"
        );
    }
}

/// The report name the generator gave the source (read from the store).
fn source_report(out: &tempfile::TempDir) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sources = rt
        .block_on(ledger(out.path()).sources("t", Some("2024-01")))
        .unwrap();
    assert_eq!(sources.len(), 1, "{sources:?}");
    sources[0].1.report.clone()
}

/// Named revisions: the reverse diff negates every delta; an unknown
/// revision and a first revision (nothing replaced) are errors that name
/// what the store keeps; after gc's grace has passed the replaced revision
/// is gone and the default diff says so.
#[test]
fn named_revisions_reverse_and_errors_name_what_is_kept() {
    let t = two_revisions(SampleFormat::Cur1Csv);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ledger = ledger(t.out.path());
    let source = SourceId::new("t", PAYER, &source_report(&t.out));
    let diff = |from: Option<&str>, to: Option<&str>| {
        rt.block_on(diff_revisions(
            &ledger,
            &source,
            "2024-01",
            &Between {
                from: from.map(str::to_owned),
                to: to.map(str::to_owned),
            },
            &[Dim::Service],
            Measure::Billed,
        ))
    };
    let [r1, r2] = [t.revisions[0].as_str(), t.revisions[1].as_str()];
    let forward = diff(None, None).unwrap();
    let named = diff(Some(&format!("revision={r1}")), Some(r2)).unwrap();
    assert_eq!(named.comparison, forward.comparison);
    let reverse = diff(Some(r2), Some(r1)).unwrap();
    assert_eq!(
        reverse.comparison.total_delta,
        -forward.comparison.total_delta
    );
    let negated: BTreeMap<Vec<String>, Money> = forward
        .comparison
        .changes
        .iter()
        .map(|c| (c.key.clone(), -c.delta))
        .collect();
    let rev: BTreeMap<Vec<String>, Money> = reverse
        .comparison
        .changes
        .iter()
        .map(|c| (c.key.clone(), c.delta))
        .collect();
    assert_eq!(rev, negated);
    // The first revision replaced nothing.
    let e = diff(None, Some(r1)).unwrap_err();
    assert!(matches!(e, DiffError::NoEarlier(_)), "{e}");
    assert!(e.to_string().contains("name one with --from"), "{e}");
    let e = diff(Some("20990101T000000Z-nope"), None).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("revisions kept: {r1}, {r2}")),
        "{e}"
    );
    // gc inside the grace keeps the base; past it the base is gone.
    let grace = chrono::Duration::hours(3);
    let now = chrono::Utc::now();
    rt.block_on(curlew::gc::gc(&ledger, "t", grace, now))
        .unwrap();
    assert!(diff(None, None).is_ok(), "kept within the grace period");
    let r = rt
        .block_on(curlew::gc::gc(
            &ledger,
            "t",
            grace,
            now + chrono::Duration::hours(4),
        ))
        .unwrap();
    assert_eq!(r.deleted_revisions.len(), 1, "{r:?}");
    let e = diff(None, None).unwrap_err();
    assert!(matches!(e, DiffError::UnknownRevision(_)), "{e}");
    assert!(e.to_string().contains("gc deletes"), "{e}");
}
