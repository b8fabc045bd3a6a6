//! RI and Savings Plans utilization and coverage (issue 15, item 3), read back
//! from the committed `commitments.parquet` and checked against the issue's
//! formulas run in DuckDB over the source files: exactly where the source is
//! text, to 1e-9 (relative) where it is a Parquet DOUBLE. Both Parquet paths
//! (the fast path; row by row, taken when a tag dimension is named) and a
//! delivery split over several files give identical results.

mod common;

use common::{ingest_dir, rt, shared_data, summaries};
use curlew::commitments::{load_current, Commitments, Coverage, Kind, Utilization};
use curlew::dimensions::Dimensions;
use curlew::ledger::Ledger;
use curlew::money::Money;
use curlew::sample::{athena_name, write_sample, SampleFormat, SampleSpec};
use curlew::store::Store;
use curlew_testkit::duckdb;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// Ingest `root` into a fresh store (row by row when `row_path`) and load the
/// committed commitments of `period`.
fn ingest_commitments(root: &Path, period: &str, row_path: bool) -> Commitments {
    let out = tempfile::tempdir().unwrap();
    let report = ingest_dir(root, out.path(), |o| {
        if row_path {
            o.dimensions = Dimensions::from_args(&["environment".to_string()], &[]).unwrap();
        }
    });
    let s = summaries(&report);
    assert!(!s.is_empty());
    let ledger = Ledger::new(Store::local(out.path()), "");
    let c = rt()
        .block_on(load_current(&ledger, "t", period))
        .unwrap()
        .expect("commitments.parquet committed");
    check_duckdb_reads_the_file(out.path(), &c);
    c
}

/// DuckDB reads commitments.parquet as it is: its rows and sums are curlew's.
fn check_duckdb_reads_the_file(out: &Path, c: &Commitments) {
    let Some(rows) = duckdb::query(&format!(
        "select count(*) filter (where x_Kind <> 'Coverage')::varchar, \
         count(*) filter (where x_Kind = 'Coverage')::varchar, \
         coalesce(sum(x_EligibleCost), 0)::varchar, coalesce(sum(x_UsedCommitment), 0)::varchar \
         from read_parquet('{}/**/commitments.parquet')",
        out.display()
    )) else {
        return;
    };
    let r = &rows[0];
    assert_eq!(
        r[0].as_deref(),
        Some(c.utilization.len().to_string().as_str())
    );
    assert_eq!(r[1].as_deref(), Some(c.coverage.len().to_string().as_str()));
    let eligible: Money = c.coverage.iter().map(|(_, v)| v.eligible_cost).sum();
    let used: Money = c.utilization.iter().map(|(_, v)| v.used_cost).sum();
    assert_eq!(money(&r[2]), eligible);
    assert_eq!(money(&r[3]), used);
}

fn money(v: &Option<String>) -> Money {
    Money::from_str(v.as_deref().unwrap_or("0")).unwrap()
}

/// `got` is `want`: exactly, or within 1e-9 of it (relative, at least absolute).
fn same(exact: bool, what: &str, got: Money, want: &Option<String>) {
    let w = money(want);
    if exact {
        assert_eq!(got, w, "{what}");
    } else {
        let (g, w) = (f64::try_from(got).unwrap(), f64::try_from(w).unwrap());
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{what}: {g} vs {w}"
        );
    }
}

/// A ratio of curlew's (18 decimals) against DuckDB's division.
fn same_ratio(what: &str, got: Option<Money>, want: &Option<String>) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            let (g, w) = (f64::try_from(g).unwrap(), w.parse::<f64>().unwrap());
            assert!((g - w).abs() <= 1e-9, "{what}: {g} vs {w}");
        }
        other => panic!("{what}: {other:?}"),
    }
}

/// How a CUR source names its columns (slash CSV or Athena snake_case) and
/// reads its numbers (text: exact decimals; Parquet: DOUBLE).
struct Cur {
    from: String,
    slash: bool,
    text: bool,
}

impl Cur {
    fn col(&self, slash: &str) -> String {
        if self.slash {
            format!("\"{slash}\"")
        } else {
            athena_name(slash)
        }
    }

    fn num(&self, slash: &str) -> String {
        let c = self.col(slash);
        if self.text {
            format!("coalesce(cast(nullif({c}, '') as decimal(38,18)), 0)")
        } else {
            format!("coalesce({c}, 0)")
        }
    }

    fn txt(&self, slash: &str) -> String {
        format!("coalesce({}, '')", self.col(slash))
    }

    /// Per commitment ARN: kind, used quantity, unused quantity, used cost,
    /// unused cost, commitment, utilization, utilization by quantity.
    fn utilization(&self) -> BTreeMap<String, Vec<Option<String>>> {
        let lit = self.txt("lineItem/LineItemType");
        let sp = self.txt("savingsPlan/SavingsPlanARN");
        let ri = self.txt("reservation/ReservationARN");
        let used = self.num("savingsPlan/UsedCommitment");
        let total = self.num("savingsPlan/TotalCommitmentToDate");
        let usage = self.num("lineItem/UsageAmount");
        let unused_q = self.num("reservation/UnusedQuantity");
        let eff = self.num("reservation/EffectiveCost");
        let unused = format!(
            "{} + {}",
            self.num("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"),
            self.num("reservation/UnusedRecurringFee")
        );
        let sql = format!(
            "with sp as (select {sp} id, sum({used}) u, sum({total}) t from {from} \
               where {lit} = 'SavingsPlanRecurringFee' and {sp} <> '' group by 1), \
             ri as (select {ri} id, \
               sum(case when {lit} = 'DiscountedUsage' then {usage} else 0 end) uq, \
               sum(case when {lit} = 'RIFee' then {unused_q} else 0 end) nq, \
               sum(case when {lit} = 'DiscountedUsage' then {eff} else 0 end) uc, \
               sum(case when {lit} = 'RIFee' then {unused} else 0 end) nc \
               from {from} where {lit} in ('DiscountedUsage', 'RIFee') and {ri} <> '' group by 1) \
             select id, 'SavingsPlan', null, null, u::varchar, (t - u)::varchar, t::varchar, \
               (u::double / nullif(t::double, 0))::varchar, null from sp \
             union all \
             select id, 'Reservation', uq::varchar, nq::varchar, uc::varchar, nc::varchar, \
               (uc + nc)::varchar, (uc::double / nullif((uc + nc)::double, 0))::varchar, \
               (uq::double / nullif((uq + nq)::double, 0))::varchar from ri",
            from = self.from
        );
        rows_by_key(&sql)
    }

    /// Per usage account: reservation-covered, Savings-Plans-covered and
    /// eligible on-demand cost (CID Running_Usage), coverage.
    fn coverage(&self) -> BTreeMap<String, Vec<Option<String>>> {
        let lit = self.txt("lineItem/LineItemType");
        let pod = self.num("pricing/publicOnDemandCost");
        let account = format!(
            "coalesce(nullif({}, ''), {})",
            self.txt("lineItem/UsageAccountId"),
            self.txt("bill/PayerAccountId")
        );
        let sql = format!(
            "with c as (select {account} a, \
               sum(case when {lit} = 'DiscountedUsage' then {pod} else 0 end) r, \
               sum(case when {lit} = 'SavingsPlanCoveredUsage' then {pod} else 0 end) s, \
               sum({pod}) e from {from} \
               where {lit} in ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage') group by 1) \
             select a, r::varchar, s::varchar, e::varchar, \
               ((r + s)::double / nullif(e::double, 0))::varchar from c",
            from = self.from
        );
        rows_by_key(&sql)
    }
}

/// The rows of `sql` by their first column (DuckDB missing outside CI: empty,
/// and the caller returns).
fn rows_by_key(sql: &str) -> BTreeMap<String, Vec<Option<String>>> {
    duckdb::query(sql)
        .unwrap_or_default()
        .into_iter()
        .map(|mut r| (r.remove(0).unwrap(), r))
        .collect()
}

fn check_utilization(
    exact: bool,
    got: &[(String, Utilization)],
    want: &BTreeMap<String, Vec<Option<String>>>,
) {
    assert_eq!(got.len(), want.len(), "commitments: {got:?}");
    for (id, u) in got {
        let w = &want[id];
        let kind = match u.kind {
            Kind::SavingsPlan => "SavingsPlan",
            Kind::Reservation => "Reservation",
        };
        assert_eq!(w[0].as_deref(), Some(kind), "{id}");
        match (&w[1], u.used_quantity) {
            (None, None) => {}
            (_, q) => same(exact, &format!("{id} used quantity"), q.unwrap(), &w[1]),
        }
        match (&w[2], u.unused_quantity) {
            (None, None) => {}
            (_, q) => same(exact, &format!("{id} unused quantity"), q.unwrap(), &w[2]),
        }
        same(exact, &format!("{id} used"), u.used_cost, &w[3]);
        same(exact, &format!("{id} unused"), u.unused_cost, &w[4]);
        same(exact, &format!("{id} commitment"), u.commitment_cost, &w[5]);
        same_ratio(&format!("{id} utilization"), u.utilization(), &w[6]);
        same_ratio(
            &format!("{id} utilization by quantity"),
            u.utilization_by_quantity(),
            &w[7],
        );
    }
}

fn check_coverage(
    exact: bool,
    got: &[(String, Coverage)],
    want: &BTreeMap<String, Vec<Option<String>>>,
) {
    assert_eq!(
        got.iter().map(|(a, _)| a).collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (a, c) in got {
        let w = &want[a];
        same(
            exact,
            &format!("{a} reservation"),
            c.reservation_cost,
            &w[0],
        );
        same(
            exact,
            &format!("{a} savings plan"),
            c.savings_plan_cost,
            &w[1],
        );
        same(exact, &format!("{a} eligible"), c.eligible_cost, &w[2]);
        same_ratio(&format!("{a} coverage"), c.coverage(), &w[3]);
    }
}

fn sample(format: SampleFormat, files: usize, dir: &Path) -> Vec<String> {
    let mut spec = SampleSpec::new(format, 20_000);
    spec.files = files;
    spec.payer = Some("111122223333".into());
    let out = write_sample(&spec, dir).unwrap();
    out.data_keys
        .iter()
        .map(|k| format!("'{}'", dir.join(k).display()))
        .collect()
}

/// Generated legacy CSV (gzip, several files: staged parts merged by the
/// commit): exact sums equal to DuckDB's over the text, and the same as the
/// same rows in one file.
#[test]
fn legacy_csv_matches_duckdb_and_one_file_equals_three() {
    let one = tempfile::tempdir().unwrap();
    let three = tempfile::tempdir().unwrap();
    sample(SampleFormat::Cur1Csv, 1, one.path());
    let files = sample(SampleFormat::Cur1Csv, 3, three.path());
    assert_eq!(files.len(), 3, "{files:?}");
    let cur = Cur {
        from: format!("read_csv([{}], all_varchar=true)", files.join(", ")),
        slash: true,
        text: true,
    };
    let want_util = cur.utilization();
    if want_util.is_empty() {
        return; // no DuckDB outside CI
    }
    let got = ingest_commitments(three.path(), "2024-01", false);
    assert!(got
        .utilization
        .iter()
        .any(|(_, u)| u.kind == Kind::SavingsPlan));
    assert!(got
        .utilization
        .iter()
        .any(|(_, u)| u.kind == Kind::Reservation));
    check_utilization(true, &got.utilization, &want_util);
    check_coverage(true, &got.coverage, &cur.coverage());
    assert_eq!(ingest_commitments(one.path(), "2024-01", false), got);
    // Coverage counts every usage account, connected or not: with only a
    // few accounts connected (the rest unattributed spend), the same figures.
    let connected: std::collections::BTreeSet<String> = got
        .coverage
        .iter()
        .take(3)
        .map(|(a, _)| a.clone())
        .collect();
    let out = tempfile::tempdir().unwrap();
    let report = ingest_dir(three.path(), out.path(), |o| {
        o.accounts = Some(connected.clone())
    });
    assert!(!summaries(&report)[0].unattributed.accounts.is_empty());
    let ledger = Ledger::new(Store::local(out.path()), "");
    let partly = rt()
        .block_on(load_current(&ledger, "t", "2024-01"))
        .unwrap()
        .expect("commitments");
    assert_eq!(partly.coverage, got.coverage);
    assert_eq!(partly.utilization, got.utilization);
}

/// Generated CUR 2.0 CSV (snake_case columns, text numbers): exact.
#[test]
fn cur2_csv_matches_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample(SampleFormat::Cur2Csv, 1, dir.path());
    let cur = Cur {
        from: format!("read_csv([{}], all_varchar=true)", files.join(", ")),
        slash: false,
        text: true,
    };
    let want_util = cur.utilization();
    if want_util.is_empty() {
        return;
    }
    let got = ingest_commitments(dir.path(), "2024-01", false);
    check_utilization(true, &got.utilization, &want_util);
    check_coverage(true, &got.coverage, &cur.coverage());
}

/// Generated legacy and CUR 2.0 Parquet: DuckDB's formulas over the DOUBLE
/// columns, and the fast path equal to row by row.
#[test]
fn parquet_matches_duckdb_on_both_paths() {
    for format in [SampleFormat::Cur1Parquet, SampleFormat::Cur2Parquet] {
        let dir = tempfile::tempdir().unwrap();
        let files = sample(format, 2, dir.path());
        let cur = Cur {
            from: format!("read_parquet([{}])", files.join(", ")),
            slash: false,
            text: false,
        };
        let want_util = cur.utilization();
        if want_util.is_empty() {
            return;
        }
        let fast = ingest_commitments(dir.path(), "2024-01", false);
        check_utilization(false, &fast.utilization, &want_util);
        check_coverage(false, &fast.coverage, &cur.coverage());
        let by_row = ingest_commitments(dir.path(), "2024-01", true);
        assert_eq!(fast, by_row, "{format:?}: fast path vs row by row");
    }
}

/// The workshop CUR (real legacy Parquet: RIFee and DiscountedUsage of
/// several reservations, reservation/UnusedQuantity), both paths.
#[test]
fn workshop_reservations_match_duckdb_on_both_paths() {
    let Some(dir) = shared_data("cur1-parquet-workshop") else {
        return;
    };
    // The workshop file has no Savings Plans columns: utilization of
    // reservations only.
    let cur = Cur {
        from: format!("read_parquet('{}/**/*.parquet')", dir.display()),
        slash: false,
        text: false,
    };
    let ri_only = |sql_from: &Cur| {
        let lit = sql_from.txt("lineItem/LineItemType");
        let ri = sql_from.txt("reservation/ReservationARN");
        let eff = sql_from.num("reservation/EffectiveCost");
        let unused = format!(
            "{} + {}",
            sql_from.num("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"),
            sql_from.num("reservation/UnusedRecurringFee")
        );
        rows_by_key(&format!(
            "with ri as (select {ri} id, \
               sum(case when {lit} = 'DiscountedUsage' then {usage} else 0 end) uq, \
               sum(case when {lit} = 'RIFee' then {unused_q} else 0 end) nq, \
               sum(case when {lit} = 'DiscountedUsage' then {eff} else 0 end) uc, \
               sum(case when {lit} = 'RIFee' then {unused} else 0 end) nc \
               from {from} where {lit} in ('DiscountedUsage', 'RIFee') and {ri} <> '' group by 1) \
             select id, 'Reservation', uq::varchar, nq::varchar, uc::varchar, nc::varchar, \
               (uc + nc)::varchar, (uc::double / nullif((uc + nc)::double, 0))::varchar, \
               (uq::double / nullif((uq + nq)::double, 0))::varchar from ri",
            usage = sql_from.num("lineItem/UsageAmount"),
            unused_q = sql_from.num("reservation/UnusedQuantity"),
            from = sql_from.from
        ))
    };
    let want = ri_only(&cur);
    if want.is_empty() {
        return;
    }
    let fast = ingest_commitments(&dir, "2018-10", false);
    check_utilization(false, &fast.utilization, &want);
    check_coverage(false, &fast.coverage, &cur.coverage());
    assert!(fast.utilization.len() >= 8, "{:?}", fast.utilization);
    let by_row = ingest_commitments(&dir, "2018-10", true);
    assert_eq!(fast, by_row);
}

/// FOCUS: CommitmentDiscountStatus Used / Unused, EffectiveCost and ListCost
/// (AWS rows only), for the shared FOCUS 1.0 sample (Savings Plans covered
/// usage) and a generated FOCUS file (reservations and Savings Plans, used
/// and unused).
#[test]
fn focus_matches_duckdb() {
    let generated = tempfile::tempdir().unwrap();
    let mut spec = SampleSpec::new(SampleFormat::Focus, 20_000);
    spec.payer = Some("111122223333".into());
    let out = write_sample(&spec, generated.path()).unwrap();
    let gen_files: Vec<String> = out
        .data_keys
        .iter()
        .map(|k| format!("'{}'", generated.path().join(k).display()))
        .collect();
    // (root, files, period, shared sample, has CommitmentDiscountQuantity)
    let mut cases = vec![(
        generated.path().to_path_buf(),
        gen_files.join(", "),
        "2024-01".to_string(),
        false,
        false,
    )];
    // FOCUS 1.1+ carries CommitmentDiscountQuantity: the generated rows with
    // it (ConsumedQuantity's value), as one bare CSV DuckDB writes.
    let with_quantity = tempfile::tempdir().unwrap();
    let q_file = with_quantity.path().join("focus.csv");
    duckdb::execute(&format!(
        "copy (select *, ConsumedQuantity as CommitmentDiscountQuantity \
               from read_csv([{}], all_varchar=true)) to '{}' (header, quote '\"', force_quote *)",
        gen_files.join(", "),
        q_file.display()
    ));
    if q_file.exists() {
        cases.push((
            with_quantity.path().to_path_buf(),
            format!("'{}'", q_file.display()),
            "2024-01".to_string(),
            false,
            true,
        ));
    }
    let shared_root = tempfile::tempdir().unwrap();
    if let Some(file) = shared_data("focus-1.0-sample/focus_sample.csv") {
        std::fs::copy(&file, shared_root.path().join("focus.csv")).unwrap();
        cases.push((
            shared_root.path().to_path_buf(),
            format!("'{}'", file.display()),
            "2024-09".to_string(),
            true,
            false,
        ));
    }
    for (root, files, period, shared, quantity) in cases {
        let from = format!(
            "(select * from read_csv([{files}], all_varchar=true) \
              where coalesce(nullif(ProviderName, 'NULL'), '') in ('', 'AWS') \
                 or ProviderName like 'Amazon Web Services%')"
        );
        let n = |c: &str| {
            format!("coalesce(cast(nullif(nullif({c}, 'NULL'), '') as decimal(38,18)), 0)")
        };
        let t = |c: &str| format!("coalesce(nullif({c}, 'NULL'), '')");
        let (uq, nq) = if quantity {
            let q = n("CommitmentDiscountQuantity");
            let st = t("CommitmentDiscountStatus");
            (
                format!("sum(case when {st} = 'Used' then {q} else 0 end)"),
                format!("sum(case when {st} = 'Unused' then {q} else 0 end)"),
            )
        } else {
            (
                "null::decimal(38,18)".to_string(),
                "null::decimal(38,18)".to_string(),
            )
        };
        let by_quantity = if quantity {
            "(uq::double / nullif((uq + nq)::double, 0))::varchar"
        } else {
            "null"
        };
        let want_util = rows_by_key(&format!(
            "with u as (select {id} id, \
               case when lower({ty}) like '%savings%' then 'SavingsPlan' else 'Reservation' end k, \
               {uq} uq, {nq} nq, \
               sum(case when {st} = 'Used' then {eff} else 0 end) uc, \
               sum(case when {st} = 'Unused' then {eff} else 0 end) nc \
               from {from} where {id} <> '' and {st} in ('Used', 'Unused') group by 1, 2) \
             select id, k, uq::varchar, nq::varchar, uc::varchar, nc::varchar, (uc + nc)::varchar, \
               (uc::double / nullif((uc + nc)::double, 0))::varchar, {by_quantity} from u",
            id = t("CommitmentDiscountId"),
            ty = t("CommitmentDiscountType"),
            st = t("CommitmentDiscountStatus"),
            eff = n("EffectiveCost"),
        ));
        let want_cov = rows_by_key(&format!(
            "with c as (select coalesce(nullif({sub}, ''), {payer}) a, \
               sum(case when {st} = 'Used' and lower({ty}) not like '%savings%' then {list} else 0 end) r, \
               sum(case when {st} = 'Used' and lower({ty}) like '%savings%' then {list} else 0 end) s, \
               sum({list}) e from {from} \
               where ChargeCategory = 'Usage' and {st} <> 'Unused' group by 1) \
             select a, r::varchar, s::varchar, e::varchar, \
               ((r + s)::double / nullif(e::double, 0))::varchar from c",
            sub = t("SubAccountId"),
            payer = t("BillingAccountId"),
            st = t("CommitmentDiscountStatus"),
            ty = t("CommitmentDiscountType"),
            list = n("ListCost"),
        ));
        if want_cov.is_empty() {
            return;
        }
        assert!(!want_util.is_empty(), "{files}: commitment rows");
        let got = ingest_commitments(&root, &period, false);
        check_utilization(true, &got.utilization, &want_util);
        check_coverage(true, &got.coverage, &want_cov);
        if quantity {
            assert!(got
                .utilization
                .iter()
                .all(|(_, u)| u.used_quantity.is_some()));
        }
        if !shared {
            assert!(got
                .utilization
                .iter()
                .any(|(_, u)| u.kind == Kind::Reservation && !u.unused_cost.is_zero()));
        }
    }
}
