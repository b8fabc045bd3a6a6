//! The source-scoped ledger: a tenant's sources (payer account, report) never
//! replace each other, a period two reports claim is refused until one is
//! named, rows of another period are counted and never committed there, the
//! tenant's index is what DuckDB reads, and `curlew migrate` moves a store of
//! the old period-scoped layout.

mod common;

use common::{ingest_dir, rt, summaries};
use curlew::ingest::DeliveryStatus;
use curlew::ledger::{CommitOutcome, Current, Ledger, SourceId};
use curlew::migrate::{migrate, MigrateOptions};
use curlew::money::{dec, Money};
use curlew::pipeline::index::{current_files, url_of};
use curlew::report::load_committed;
use curlew::sample::{write_sample, SampleFormat, SampleOutput, SampleSpec};
use curlew::store::Store;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const PAYER_A: &str = "111122223333";
const PAYER_B: &str = "444455556666";

fn sample(dir: &Path, format: SampleFormat, payer: &str, report: &str, seed: u64) -> SampleOutput {
    let mut spec = SampleSpec::new(format, 600 + seed * 100);
    spec.payer = Some(payer.into());
    spec.report = Some(report.into());
    spec.seed = seed;
    write_sample(&spec, dir).unwrap()
}

fn ledger(out: &Path) -> Ledger {
    Ledger::new(Store::local(out), "")
}

/// Every CURRENT object below `out`.
fn currents(out: &Path) -> Vec<PathBuf> {
    if !out.exists() {
        return Vec::new();
    }
    curlew_testkit::upload::walk(out)
        .into_iter()
        .filter(|p| p.ends_with("CURRENT"))
        .collect()
}

/// Every file below `dir` with its bytes, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    curlew_testkit::upload::walk(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn billed(committed: &[curlew::report::Committed]) -> Money {
    committed
        .iter()
        .flat_map(|c| c.rows.iter())
        .map(|r| r.sums.billed_cost)
        .sum()
}

/// S3 and file timestamps of two deliveries must differ visibly.
fn later() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn two_payers_of_one_tenant_are_two_sources() {
    let (src_a, src_b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = sample(src_a.path(), SampleFormat::Cur1Csv, PAYER_A, "cur", 1);
    let b = sample(src_b.path(), SampleFormat::Cur1Csv, PAYER_B, "cur", 2);
    summaries(&ingest_dir(src_a.path(), out.path(), |_| {}));
    summaries(&ingest_dir(src_b.path(), out.path(), |_| {}));
    let cur_of = |payer: &str| {
        out.path().join(format!(
            "tenant=t/billing_period=2024-01/payer={payer}/report=cur/CURRENT"
        ))
    };
    assert_eq!(currents(out.path()), vec![cur_of(PAYER_A), cur_of(PAYER_B)]);

    let l = ledger(out.path());
    let committed = rt().block_on(load_committed(&l, "t", None)).unwrap();
    let sources: Vec<&SourceId> = committed.iter().map(|c| &c.source).collect();
    assert_eq!(
        sources,
        vec![
            &SourceId::new("t", PAYER_A, "cur"),
            &SourceId::new("t", PAYER_B, "cur")
        ]
    );
    assert_eq!(billed(&committed), a.expected.billed + b.expected.billed);
    for c in &committed {
        assert!(c.rows.iter().all(|r| r.key[0] == c.source.payer), "{c:?}");
    }

    // A new revision of payer A replaces A only.
    let b_before = std::fs::read(cur_of(PAYER_B)).unwrap();
    let a_before = std::fs::read(cur_of(PAYER_A)).unwrap();
    later();
    let a2 = sample(src_a.path(), SampleFormat::Cur1Csv, PAYER_A, "cur", 3);
    let again = ingest_dir(src_a.path(), out.path(), |_| {});
    let s = summaries(&again);
    assert_eq!(s.len(), 1);
    match &again.deliveries[0].status {
        DeliveryStatus::Committed(c) => assert!(
            matches!(c[0].outcome, CommitOutcome::Committed { previous: Some(_) }),
            "{c:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_ne!(a_before, std::fs::read(cur_of(PAYER_A)).unwrap());
    assert_eq!(b_before, std::fs::read(cur_of(PAYER_B)).unwrap());
    let committed = rt().block_on(load_committed(&l, "t", None)).unwrap();
    assert_eq!(committed.len(), 2);
    assert_eq!(billed(&committed), a2.expected.billed + b.expected.billed);
}

#[test]
fn a_legacy_cur_and_a_cur2_export_of_one_payer_need_the_report_named() {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    sample(src.path(), SampleFormat::Cur1Csv, PAYER_A, "legacy-cur", 1);
    let cur2 = sample(
        src.path(),
        SampleFormat::Cur2Parquet,
        PAYER_A,
        "export-two",
        2,
    );

    let r = ingest_dir(src.path(), out.path(), |_| {});
    assert_eq!(r.deliveries.len(), 2, "{r:?}");
    for d in &r.deliveries {
        match &d.status {
            DeliveryStatus::Failed(rec) => {
                assert!(
                    rec.error.contains("legacy-cur")
                        && rec.error.contains("export-two")
                        && rec.error.contains("--report"),
                    "{}",
                    rec.error
                );
                assert_eq!(rec.billing_period, "2024-01");
                assert_eq!(rec.payer_account, PAYER_A);
            }
            other => panic!("{} {other:?}", d.report),
        }
    }
    assert!(r.failed());
    assert_eq!(currents(out.path()), Vec::<PathBuf>::new());

    let r = ingest_dir(src.path(), out.path(), |o| {
        o.report = Some("export-two".into())
    });
    assert_eq!(r.deliveries.len(), 2, "{r:?}");
    for d in &r.deliveries {
        match (d.report.as_str(), &d.status) {
            ("export-two", DeliveryStatus::Committed(c)) => {
                assert_eq!(c.len(), 1);
                assert_eq!(c[0].summary.totals.billed_cost, cur2.expected.billed);
            }
            ("legacy-cur", DeliveryStatus::OtherReport) => {}
            (report, other) => panic!("{report}: {other:?}"),
        }
    }
    assert_eq!(
        currents(out.path()),
        vec![out.path().join(format!(
            "tenant=t/billing_period=2024-01/payer={PAYER_A}/report=export-two/CURRENT"
        ))]
    );
}

const HEADER: &str = "lineItem/LineItemType,identity/LineItemId,bill/PayerAccountId,lineItem/UsageAccountId,lineItem/UsageStartDate,lineItem/ProductCode,lineItem/LineItemDescription,lineItem/UnblendedCost";

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A hand-written legacy CUR delivery (overwrite layout) of `report` for
/// `period` (`YYYY-MM`) under `root`: one gzip CSV of `rows` (payer, usage
/// start, unblended cost) and its manifest, which names `PAYER_A` as account.
fn legacy_delivery(root: &Path, report: &str, period: &str, rows: &[(&str, &str, &str)]) {
    let (y, m): (i32, u32) = (period[..4].parse().unwrap(), period[5..].parse().unwrap());
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let dir = format!("cur/{report}/{y:04}{m:02}01-{ny:04}{nm:02}01/");
    let data = format!("{dir}{report}-00001.csv.gz");
    let mut csv = String::from(HEADER);
    for (i, (payer, start, cost)) in rows.iter().enumerate() {
        csv.push_str(&format!(
            "\nUsage,id{i},{payer},222222222222,{start},AmazonEC2,desc,{cost}"
        ));
    }
    csv.push('\n');
    std::fs::create_dir_all(root.join(&dir)).unwrap();
    std::fs::write(root.join(&data), gz(csv.as_bytes())).unwrap();
    let manifest = serde_json::json!({
        "assemblyId": format!("asm-{period}"),
        "reportName": report,
        "account": PAYER_A,
        "billingPeriod": {
            "start": format!("{y:04}{m:02}01T000000.000Z"),
            "end": format!("{ny:04}{nm:02}01T000000.000Z"),
        },
        "reportKeys": [data],
    });
    std::fs::write(
        root.join(format!("{dir}{report}-Manifest.json")),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

const FEBRUARY: [(&str, &str, &str); 3] = [
    (PAYER_A, "2024-02-03T00:00:00Z", "1.25"),
    (PAYER_A, "2024-01-31T23:00:00Z", "0.75"),
    (PAYER_A, "2024-02-10T05:00:00Z", "2.5"),
];

/// CURRENT of `period` of the hand-written source, with the rollup and summary it names.
fn committed_bytes(out: &Path, period: &str) -> Vec<Vec<u8>> {
    let dir = out.join(format!(
        "tenant=t/billing_period={period}/payer={PAYER_A}/report=offp"
    ));
    let cur = std::fs::read(dir.join("CURRENT")).unwrap();
    let c: Current = serde_json::from_slice(&cur).unwrap();
    vec![
        cur,
        std::fs::read(out.join(&c.rollup_key)).unwrap(),
        std::fs::read(out.join(&c.summary_key)).unwrap(),
    ]
}

#[test]
fn a_row_of_another_period_is_counted_and_not_committed() {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    legacy_delivery(src.path(), "offp", "2024-02", &FEBRUARY);
    let s = summaries(&ingest_dir(src.path(), out.path(), |_| {}));
    assert_eq!(s.len(), 1, "{s:?}");
    let s = &s[0];
    assert_eq!(s.billing_period, "2024-02");
    assert_eq!(s.off_period.len(), 1, "{:?}", s.off_period);
    let off = &s.off_period["2024-01"];
    assert_eq!((off.rows, off.billed_cost), (1, dec("0.75")));
    assert_eq!(s.rows_read, 2);
    assert_eq!(s.totals.billed_cost, dec("3.75"));
    assert_eq!(s.attributed.billed_cost, dec("3.75"));
    let committed = rt()
        .block_on(load_committed(&ledger(out.path()), "t", None))
        .unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].period, "2024-02");
    assert_eq!(billed(&committed), dec("3.75"));
    assert!(
        committed[0]
            .rows
            .iter()
            .all(|r| r.day.starts_with("2024-02")),
        "{:?}",
        committed[0].rows
    );
    assert!(!out.path().join("tenant=t/billing_period=2024-01").exists());
    assert_eq!(currents(out.path()).len(), 1);
}

#[test]
fn a_stray_row_does_not_touch_the_period_it_names() {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    legacy_delivery(
        src.path(),
        "offp",
        "2024-01",
        &[
            (PAYER_A, "2024-01-05T00:00:00Z", "10.5"),
            (PAYER_A, "2024-01-31T23:00:00Z", "4"),
        ],
    );
    summaries(&ingest_dir(src.path(), out.path(), |_| {}));
    let january = committed_bytes(out.path(), "2024-01");
    legacy_delivery(src.path(), "offp", "2024-02", &FEBRUARY);
    let r = ingest_dir(src.path(), out.path(), |_| {});
    assert!(!r.failed(), "{r:?}");
    for d in &r.deliveries {
        match (d.period.as_deref(), &d.status) {
            (Some("2024-01"), DeliveryStatus::AlreadyCurrent { .. }) => {}
            (Some("2024-02"), DeliveryStatus::Committed(c)) => {
                assert_eq!(c.len(), 1);
                assert_eq!(c[0].period, "2024-02");
                assert_eq!(c[0].summary.off_period["2024-01"].rows, 1);
            }
            (p, other) => panic!("{p:?}: {other:?}"),
        }
    }
    assert_eq!(january, committed_bytes(out.path(), "2024-01"));
    let jan = rt()
        .block_on(load_committed(&ledger(out.path()), "t", Some("2024-01")))
        .unwrap();
    assert_eq!(billed(&jan), dec("14.5"));
}

/// Run the generated DuckDB SQL for `index` through the checker; its JSON answer.
fn duckdb_check(index: &str, expected: Money) -> serde_json::Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/support/duckdb_index_check.py"
    );
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(index)
        .arg(expected.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(curlew::sql::duckdb(index).as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "duckdb check failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn duckdb_reads_exactly_what_the_index_lists() {
    if !curlew_testkit::duckdb::available() {
        return;
    }
    let (src_a, src_b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = sample(src_a.path(), SampleFormat::Cur1Csv, PAYER_A, "cur", 1);
    let b = sample(src_b.path(), SampleFormat::Cur2Parquet, PAYER_B, "cur2", 2);
    summaries(&ingest_dir(src_a.path(), out.path(), |_| {}));
    summaries(&ingest_dir(src_b.path(), out.path(), |_| {}));
    let l = ledger(out.path());
    let index = url_of(&l.store, &l.layout.current_index("t"));
    assert!(Path::new(&index).is_absolute(), "{index}");
    let before = rt().block_on(current_files(&l, "t")).unwrap();
    assert_eq!(before.len(), 2, "{before:?}");
    let answer = duckdb_check(&index, a.expected.billed + b.expected.billed);
    assert!(answer["rows"].as_u64().unwrap() > 0, "{answer}");

    // A second revision of source A: the index is rewritten, and the old
    // revision's rollup (still on disk, no gc ran) is no longer read.
    later();
    let a2 = sample(src_a.path(), SampleFormat::Cur1Csv, PAYER_A, "cur", 3);
    summaries(&ingest_dir(src_a.path(), out.path(), |_| {}));
    let after = rt().block_on(current_files(&l, "t")).unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    let old_a = before
        .iter()
        .find(|f| f.contains(&format!("payer={PAYER_A}")))
        .unwrap();
    assert!(Path::new(old_a).exists(), "{old_a}");
    assert!(!after.contains(old_a), "{after:?}");
    assert!(after
        .iter()
        .any(|f| f.contains(&format!("payer={PAYER_B}"))));
    assert_ne!(a2.expected.billed, a.expected.billed);
    duckdb_check(&index, a2.expected.billed + b.expected.billed);
}

/// Rewrite the store at `out` (one tenant `t`) into the old period-scoped
/// layout: `billing_period=P/CURRENT` naming `billing_period=P/revision=R/`,
/// no index, old staging garbage. Returns the new-layout CURRENTs it replaced.
fn to_old_layout(out: &Path) -> Vec<(String, SourceId, Current)> {
    let l = ledger(out);
    let sources = rt().block_on(l.sources("t", None)).unwrap();
    let mut moved = Vec::new();
    for (period, source) in sources {
        let (cur, _) = rt().block_on(l.current(&source, &period)).unwrap().unwrap();
        let period_dir = out.join(format!("tenant=t/billing_period={period}"));
        let old_rev = period_dir.join(format!("revision={}", cur.revision));
        std::fs::create_dir_all(&old_rev).unwrap();
        for f in ["rollup.parquet", "summary.json"] {
            std::fs::copy(out.join(&cur.rollup_key).with_file_name(f), old_rev.join(f)).unwrap();
        }
        // What the old layout's CURRENT held (no `previous`).
        let old_current = serde_json::json!({
            "revision": cur.revision,
            "time": cur.time,
            "id": cur.id,
            "rollup_key": format!("tenant=t/billing_period={period}/revision={}/rollup.parquet", cur.revision),
            "summary_key": format!("tenant=t/billing_period={period}/revision={}/summary.json", cur.revision),
        });
        std::fs::write(
            period_dir.join("CURRENT"),
            serde_json::to_vec_pretty(&old_current).unwrap(),
        )
        .unwrap();
        std::fs::remove_dir_all(period_dir.join(source.segments().split('/').next().unwrap()))
            .unwrap();
        moved.push((period, source, cur));
    }
    std::fs::remove_dir_all(out.join("tenant=t/_current")).unwrap();
    let _ = std::fs::remove_dir_all(out.join("tenant=t/_outbox"));
    let staging = out.join("tenant=t/_staging/20240101T000000Z-gone");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("part-00000.json"), b"{}").unwrap();
    moved
}

#[test]
fn migrate_moves_an_old_layout_store_once() {
    let (src, fresh, old) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    sample(src.path(), SampleFormat::Cur1Csv, PAYER_A, "cur", 1);
    let mut feb = SampleSpec::new(SampleFormat::Cur1Csv, 400);
    feb.period = "2024-02".into();
    feb.payer = Some(PAYER_A.into());
    feb.report = Some("cur".into());
    write_sample(&feb, src.path()).unwrap();
    summaries(&ingest_dir(src.path(), fresh.path(), |_| {}));
    summaries(&ingest_dir(src.path(), old.path(), |_| {}));
    let want = rt()
        .block_on(load_committed(&ledger(fresh.path()), "t", None))
        .unwrap();
    assert_eq!(want.len(), 2);
    let replaced = to_old_layout(old.path());
    // A superseded revision of January (the old layout kept it until gc).
    let jan = old.path().join("tenant=t/billing_period=2024-01");
    let superseded = jan.join("revision=20231231T000000Z-older");
    std::fs::create_dir_all(&superseded).unwrap();
    std::fs::write(superseded.join("rollup.parquet"), b"older rollup").unwrap();
    // A connection written before the registry had a bucket index.
    let conn = curlew::registry::Connection::new(
        "t",
        PAYER_A,
        curlew::registry::AccessMode::CrossAccountRole,
        "acme-billing",
        "cur",
    );
    let conn_key = old.path().join(format!("registry/tenant=t/{PAYER_A}.json"));
    std::fs::create_dir_all(conn_key.parent().unwrap()).unwrap();
    std::fs::write(&conn_key, serde_json::to_vec(&conn).unwrap()).unwrap();
    let l = ledger(old.path());
    assert!(rt()
        .block_on(load_committed(&l, "t", None))
        .unwrap()
        .is_empty());

    // A dry run decides and writes nothing.
    let before = snapshot(old.path());
    let dry = rt()
        .block_on(migrate(
            &l,
            &MigrateOptions {
                tenant: None,
                dry_run: true,
            },
        ))
        .unwrap();
    assert_eq!(dry.periods.len(), 2, "{dry:?}");
    assert!(dry.periods.iter().all(|p| p.outcome.is_none()));
    assert_eq!(dry.staging_deleted, 1);
    assert_eq!(before, snapshot(old.path()));

    let r = rt()
        .block_on(migrate(&l, &MigrateOptions::default()))
        .unwrap();
    assert_eq!(r.periods.len(), 2, "{r:?}");
    for (p, (period, source, cur)) in r.periods.iter().zip(&replaced) {
        assert_eq!(&p.period, period);
        assert_eq!(&p.source, source);
        assert_eq!(p.source, SourceId::new("t", PAYER_A, "cur"));
        assert_eq!(p.revision, cur.revision);
        assert_eq!(p.outcome, Some(CommitOutcome::Committed { previous: None }));
    }
    assert_eq!(r.periods[0].revisions, 2, "January had two revisions");
    assert_eq!(r.staging_deleted, 1);
    assert_eq!(r.indexes_rebuilt, vec!["t".to_owned()]);
    assert_eq!(r.connections_reindexed, Some(1));
    assert!(r.orphans.is_empty(), "{:?}", r.orphans);

    // The same totals through the new layout, and nothing of the old one left.
    let got = rt().block_on(load_committed(&l, "t", None)).unwrap();
    assert_eq!(got.len(), 2);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.period, &g.source), (&w.period, &w.source));
        assert_eq!(g.summary, w.summary);
        assert_eq!(g.rows, w.rows);
        assert_eq!(g.current.rollup_key, w.current.rollup_key);
    }
    assert_eq!(billed(&got), billed(&want));
    let left: Vec<String> = snapshot(old.path()).into_keys().collect();
    for k in &left {
        let segs: Vec<&str> = k.split('/').collect();
        assert!(
            !(segs.len() >= 3
                && segs[1].starts_with("billing_period=")
                && !segs[2].starts_with("payer=")),
            "old-layout object left: {k} in {left:?}"
        );
        assert!(!k.contains("_staging"), "{k}");
    }
    let moved_superseded = old.path().join(format!(
        "tenant=t/billing_period=2024-01/payer={PAYER_A}/report=cur/revision=20231231T000000Z-older/rollup.parquet"
    ));
    assert_eq!(std::fs::read(moved_superseded).unwrap(), b"older rollup");
    let files = rt().block_on(current_files(&l, "t")).unwrap();
    let names: Vec<String> = got
        .iter()
        .map(|c| url_of(&l.store, &c.current.rollup_key))
        .collect();
    assert_eq!(files, names);
    let found = rt()
        .block_on(
            curlew::registry::Registry::new(Store::local(old.path()), "")
                .find_by_bucket("acme-billing"),
        )
        .unwrap();
    assert_eq!(found.connections, vec![conn]);

    // A second run changes nothing.
    let before = snapshot(old.path());
    let again = rt()
        .block_on(migrate(&l, &MigrateOptions::default()))
        .unwrap();
    assert!(!again.changed(), "{again:?}");
    assert!(again.periods.is_empty());
    assert_eq!(before, snapshot(old.path()));
}

#[test]
fn migrate_finishes_what_an_interrupted_run_left() {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    sample(src.path(), SampleFormat::Cur2Parquet, PAYER_B, "cur2", 1);
    summaries(&ingest_dir(src.path(), out.path(), |_| {}));
    let want = rt()
        .block_on(load_committed(&ledger(out.path()), "t", None))
        .unwrap();
    to_old_layout(out.path());
    let old_current = out.path().join("tenant=t/billing_period=2024-01/CURRENT");
    let old_bytes = std::fs::read(&old_current).unwrap();
    let l = ledger(out.path());
    rt().block_on(migrate(&l, &MigrateOptions::default()))
        .unwrap();
    // As if the run had stopped after deleting the old revision, before the old CURRENT.
    std::fs::write(&old_current, &old_bytes).unwrap();
    let r = rt()
        .block_on(migrate(&l, &MigrateOptions::default()))
        .unwrap();
    assert_eq!(r.periods.len(), 1, "{r:?}");
    assert_eq!(r.periods[0].source, SourceId::new("t", PAYER_B, "cur2"));
    assert!(
        matches!(r.periods[0].outcome, Some(CommitOutcome::NotNewer { .. })),
        "{r:?}"
    );
    assert!(!old_current.exists());
    let got = rt().block_on(load_committed(&l, "t", None)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].summary, want[0].summary);
}

#[test]
fn migrate_names_a_rollup_of_several_payers_unknown() {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    legacy_delivery(
        src.path(),
        "mixed",
        "2024-03",
        &[
            (PAYER_A, "2024-03-01T00:00:00Z", "1"),
            (PAYER_B, "2024-03-02T00:00:00Z", "2"),
        ],
    );
    summaries(&ingest_dir(src.path(), out.path(), |_| {}));
    to_old_layout(out.path());
    let l = ledger(out.path());
    let r = rt()
        .block_on(migrate(&l, &MigrateOptions::default()))
        .unwrap();
    assert_eq!(r.periods.len(), 1, "{r:?}");
    assert_eq!(r.periods[0].source, SourceId::new("t", "unknown", "mixed"));
    let got = rt().block_on(load_committed(&l, "t", None)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source.payer, "unknown");
    assert_eq!(billed(&got), dec("3"));
}
