//! `curlew report --format html` in a real headless browser (Debian's
//! chromium, which ./scripts/test installs): two sample months ingested, a
//! connection in the registry, the page rendered. The page loads without
//! errors (its own watcher records script errors, failed loads and blocked
//! fetches on `<html data-errors>`), the chart's segments sum to what
//! `curlew report --format json` says and to DuckDB over the source files,
//! day by day and month by month, and a screenshot is produced.

mod common;

use common::{curlew, run};
use curlew::money::{parse_money, Money};
use curlew::registry::{AccessMode, Connection, ConnectionStatus};
use curlew_testkit::duckdb;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";
const PAYER: &str = "123456789012";
const TENANT: &str = "acme";
const WIDTH: u32 = 1100;
const HEIGHT: u32 = 1900;

/// Whether chromium is installed; under CI=true its absence is a failure.
fn chromium_available() -> bool {
    let ok = Path::new(CHROMIUM).exists();
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{CHROMIUM} is required in CI (./scripts/test installs Debian's chromium)");
        }
        eprintln!("skipping: {CHROMIUM} is not installed (apt-get install chromium)");
    }
    ok
}

/// Headless chromium on `page` with `extra` flags, in a profile of its own.
fn chromium(page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg("120").arg(CHROMIUM).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()));
    run(&mut cmd)
}

fn money(s: &str) -> Money {
    parse_money(s.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("{s:?} is empty"))
}

/// The value of `name="..."` in one tag's attributes (as [`tags`] gives them).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// The attributes (after a space) of each opening tag `<NAME ...>` of `dom` that carry `marker`.
fn tags<'a>(dom: &'a str, name: &str, marker: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    dom.match_indices(&open)
        .map(|(at, _)| {
            let t = &dom[at + open.len() - 1..];
            &t[..t.find('>').unwrap_or(t.len())]
        })
        .filter(|t| t.contains(marker))
        .collect()
}

/// `curlew report --format json --by DIM [--period P]`: the key and BilledCost of each row.
fn report_json(store: &Path, by: &str, key: &str, period: Option<&str>) -> BTreeMap<String, Money> {
    let mut cmd = curlew();
    cmd.args([
        "report", "--tenant", TENANT, "--format", "json", "--by", by, "--store",
    ])
    .arg(store);
    if let Some(p) = period {
        cmd.args(["--period", p]);
    }
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run(&mut cmd)).unwrap();
    rows.iter()
        .map(|r| {
            (
                r[key].as_str().unwrap().to_owned(),
                money(r["BilledCost"].as_str().unwrap()),
            )
        })
        .collect()
}

/// `curlew report --format json --by service --period P`, in its order (cost descending).
fn ranked_services(store: &Path, period: &str) -> Vec<(String, Money)> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run(curlew()
        .args([
            "report", "--tenant", TENANT, "--format", "json", "--by", "service",
        ])
        .args(["--period", period, "--store"])
        .arg(store)))
    .unwrap();
    rows.iter()
        .map(|r| {
            (
                r["ServiceName"].as_str().unwrap().to_owned(),
                money(r["BilledCost"].as_str().unwrap()),
            )
        })
        .collect()
}

/// Two months of legacy CUR (one payer), ingested into `out`, and a degraded
/// connection of the payer written into the registry as the sweep leaves it.
fn setup(src: &Path, out: &Path) {
    for (period, seed) in [("2024-01", "7"), ("2024-02", "8")] {
        run(curlew()
            .args([
                "sample", "--rows", "3000", "--payer", PAYER, "--period", period,
            ])
            .args(["--seed", seed, "--out"])
            .arg(src));
    }
    let said = run(curlew()
        .arg("ingest")
        .arg(src)
        .args(["--tenant", TENANT, "--store"])
        .arg(out));
    assert!(
        said.contains("period 2024-01") && said.contains("period 2024-02"),
        "{said}"
    );
    let mut c = Connection::new(
        TENANT,
        PAYER,
        AccessMode::CrossAccountRole,
        "billing",
        "cur/",
    );
    c.status = ConnectionStatus::Degraded;
    c.remedy = Some("re-deploy the <read> role".into());
    let doc = out.join(format!("registry/tenant={TENANT}/{PAYER}.json"));
    std::fs::create_dir_all(doc.parent().unwrap()).unwrap();
    std::fs::write(&doc, serde_json::to_vec(&c).unwrap()).unwrap();
    // curlew itself reads the document back as a connection.
    let listed = run(curlew()
        .args([
            "connections",
            "--format",
            "json",
            "--tenant",
            TENANT,
            "--store",
        ])
        .arg(out));
    assert!(listed.contains("\"degraded\""), "{listed}");
}

/// What DuckDB reads in the sample's CSV files.
struct Truth {
    /// BilledCost (net unblended, else unblended) per (period, day).
    days: BTreeMap<(String, String), Money>,
    /// Rows without an invoice id, per period.
    without_invoice: BTreeMap<String, u64>,
}

fn source_truth(src: &Path) -> Option<Truth> {
    let from = format!(
        "read_csv('{}/**/*.csv.gz', all_varchar=true)",
        src.display()
    );
    let days = duckdb::query(&format!(
        "select substr(\"bill/BillingPeriodStartDate\", 1, 7), substr(\"lineItem/UsageStartDate\", 1, 10), \
         sum(coalesce(\"lineItem/NetUnblendedCost\", \"lineItem/UnblendedCost\")::DECIMAL(38,12)) \
         from {from} group by 1, 2"
    ))?;
    let invoices = duckdb::query(&format!(
        "select substr(\"bill/BillingPeriodStartDate\", 1, 7), count(*) filter (where \"bill/InvoiceId\" is null) \
         from {from} group by 1"
    ))?;
    let text = |v: &Option<String>| v.clone().unwrap();
    Some(Truth {
        days: days
            .iter()
            .map(|r| ((text(&r[0]), text(&r[1])), money(&text(&r[2]))))
            .collect(),
        without_invoice: invoices
            .iter()
            .map(|r| (text(&r[0]), text(&r[1]).parse().unwrap()))
            .collect(),
    })
}

#[test]
fn the_html_report_renders_in_headless_chromium_and_its_charts_sum_to_the_report() {
    if !chromium_available() || !duckdb::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("billing"), dir.path().join("curlew-out"));
    setup(&src, &out);
    let Truth {
        days: truth,
        without_invoice,
    } = source_truth(&src).expect("duckdb");
    let page: PathBuf = dir.path().join("report.html");
    let said = run(curlew()
        .args(["report", "--tenant", TENANT, "--format", "html", "--store"])
        .arg(&out)
        .arg("--out-file")
        .arg(&page));
    assert!(said.contains("wrote the 2024-02 report"), "{said}");
    let html = std::fs::read_to_string(&page).unwrap();
    for fetch in ["http://", "https://", "src=", "href=", "@import", "url("] {
        assert!(
            !html.contains(fetch),
            "the page must fetch nothing: {fetch}"
        );
    }

    // (a) the page loads without errors: the watcher saw none, the last script ran
    let dom = chromium(&page, &["--dump-dom".into()]);
    let root = tags(&dom, "html", "lang=").first().copied().unwrap_or("");
    assert_eq!(
        attr(root, "data-ready"),
        Some("1"),
        "the page's scripts ran: {root}"
    );
    assert_eq!(
        attr(root, "data-errors"),
        None,
        "errors in the page: {root}"
    );

    // (b) the chart's segments, summed per day from the rendered DOM ...
    let mut chart: BTreeMap<String, Money> = BTreeMap::new();
    let segments = tags(&dom, "rect", "class=\"seg\"");
    assert!(!segments.is_empty(), "no chart segments rendered");
    for seg in segments {
        *chart
            .entry(attr(seg, "data-day").unwrap().into())
            .or_default() += money(attr(seg, "data-cost").unwrap());
    }
    // ... equal curlew report --format json's days, and DuckDB's over the source
    let json_days = report_json(&out, "day", "ChargePeriodStart", Some("2024-02"));
    assert_eq!(chart, json_days);
    let duck_days: BTreeMap<String, Money> = truth
        .iter()
        .filter(|((p, _), _)| p == "2024-02")
        .map(|((_, d), c)| (d.clone(), *c))
        .collect();
    assert_eq!(chart, duck_days);
    let chart_total: Money = chart.values().sum();
    let kpi = tags(&dom, "div", "id=\"kpi-total\"");
    assert_eq!(money(attr(kpi[0], "data-cost").unwrap()), chart_total);

    // the legend's series (top eight services and "Other") and the top services
    // table, as `curlew report --by service` ranks them
    let services = ranked_services(&out, "2024-02");
    let legend: Vec<(String, Money)> = tags(&dom, "li", "data-series=")
        .iter()
        .map(|t| {
            let name = attr(t, "data-series").unwrap().replace("&amp;", "&");
            (name, money(attr(t, "data-cost").unwrap()))
        })
        .collect();
    assert!(
        services.len() > 8,
        "the sample has more than eight services"
    );
    let mut want: Vec<(String, Money)> = services[..8].to_vec();
    want.push(("Other".into(), services[8..].iter().map(|(_, c)| *c).sum()));
    assert_eq!(legend, want);
    let top: Vec<Money> = tags(&dom, "tr", "data-cost=")
        .iter()
        .take(10)
        .map(|t| money(attr(t, "data-cost").unwrap()))
        .collect();
    let want: Vec<Money> = services[..10].iter().map(|(_, c)| *c).collect();
    assert_eq!(top, want, "the top services table comes first");

    // the month against the previous one: both totals as the report and DuckDB say
    let periods = report_json(&out, "period", "BillingPeriod", None);
    let mut duck_periods: BTreeMap<String, Money> = BTreeMap::new();
    for ((p, _), c) in &truth {
        *duck_periods.entry(p.clone()).or_default() += *c;
    }
    assert_eq!(periods, duck_periods);
    let cmp = tags(&dom, "table", "data-total-current=");
    assert_eq!(cmp.len(), 1, "the comparison table");
    assert_eq!(attr(cmp[0], "data-previous-period"), Some("2024-01"));
    assert_eq!(
        money(attr(cmp[0], "data-total-current").unwrap()),
        periods["2024-02"]
    );
    assert_eq!(
        money(attr(cmp[0], "data-total-previous").unwrap()),
        periods["2024-01"]
    );

    // per service: both months as `curlew report --by service` says (each
    // service's own row; the rest folded into "Other", then the total)
    let (now, before): (BTreeMap<_, _>, BTreeMap<_, _>) = (
        ranked_services(&out, "2024-02").into_iter().collect(),
        ranked_services(&out, "2024-01").into_iter().collect(),
    );
    let rows = tags(&dom, "tr", "data-current=");
    assert!(rows.len() > 2);
    let (mut folded_now, mut folded_before) = (Money::ZERO, Money::ZERO);
    for r in &rows[..rows.len() - 2] {
        let name = attr(r, "data-name").unwrap().replace("&amp;", "&");
        let (c, p) = (now.get(&name).copied(), before.get(&name).copied());
        assert_eq!(
            money(attr(r, "data-current").unwrap()),
            c.unwrap_or_default(),
            "{name}"
        );
        assert_eq!(
            money(attr(r, "data-previous").unwrap()),
            p.unwrap_or_default(),
            "{name}"
        );
        folded_now += c.unwrap_or_default();
        folded_before += p.unwrap_or_default();
    }
    let other = rows[rows.len() - 2];
    assert_eq!(attr(other, "data-name"), Some("Other"));
    assert_eq!(
        money(attr(other, "data-current").unwrap()),
        periods["2024-02"] - folded_now
    );
    assert_eq!(
        money(attr(other, "data-previous").unwrap()),
        periods["2024-01"] - folded_before
    );

    // estimated or final per period, as the source's invoice ids say
    for (p, n) in &without_invoice {
        let row = tags(&dom, "tr", &format!("data-period=\"{p}\""));
        assert_eq!(row.len(), 1, "{p}");
        let want = if *n == 0 { "final" } else { "estimated" };
        assert_eq!(attr(row[0], "data-finality"), Some(want), "{p}");
    }
    // the connection's status from the registry
    let conn = tags(&dom, "tr", &format!("data-payer=\"{PAYER}\""));
    assert_eq!(attr(conn[0], "data-status"), Some("degraded"));
    assert!(
        dom.contains("re-deploy the &lt;read&gt; role"),
        "remedy escaped"
    );
    // utilization and coverage: what `curlew commitments` says (its own
    // figures are checked against DuckDB in shared/tests/commitments.rs)
    let c: serde_json::Value = serde_json::from_str(&run(curlew()
        .args(["commitments", "--tenant", TENANT, "--period", "2024-02"])
        .args(["--format", "json", "--store"])
        .arg(&out)))
    .unwrap();
    let row = |name: &str| {
        let r = tags(&dom, "tr", &format!("data-commitment=\"{name}\""));
        assert_eq!(r.len(), 1, "{name}");
        r[0]
    };
    for (label, kind, covered) in [
        ("Savings Plans (all)", "savings_plans", "savings_plan_cost"),
        (
            "Reserved Instances (all)",
            "reservations",
            "reservation_cost",
        ),
    ] {
        let t = &c["totals"][kind];
        let r = row(label);
        assert_eq!(
            attr(r, "data-utilization"),
            t["utilization"].as_str(),
            "{label}"
        );
        assert_eq!(
            attr(r, "data-cost"),
            t["commitment_cost"].as_str(),
            "{label}"
        );
        assert_eq!(attr(r, "data-unused"), t["unused_cost"].as_str(), "{label}");
        let cov = &c["totals"]["coverage"];
        let want = curlew::commitments::ratio(
            money(cov[covered].as_str().unwrap()),
            money(cov["eligible_cost"].as_str().unwrap()),
        )
        .map(|m| m.normalize().to_string());
        assert_eq!(attr(r, "data-coverage").map(str::to_owned), want, "{label}");
    }
    assert_eq!(
        attr(row("All eligible usage (coverage)"), "data-coverage"),
        c["totals"]["coverage"]["coverage"].as_str()
    );
    assert!(!dom.contains("no commitment data"));

    // (c) a screenshot: a PNG of the window's size
    let shot = dir.path().join("report.png");
    chromium(
        &page,
        &[
            format!("--window-size={WIDTH},{HEIGHT}"),
            format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), (WIDTH, HEIGHT), "IHDR width and height");
    assert!(png.len() > 10_000, "{} bytes: an empty page?", png.len());
}

#[test]
fn html_needs_an_output_file_and_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["--format", "html"][..],
            "--format html writes a page; name it with --out-file",
        ),
        (
            &["--format", "json", "--out-file", "x.json"][..],
            "--out-file is for --format html",
        ),
    ] {
        let o = curlew()
            .arg("report")
            .args(args)
            .arg("--store")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
    assert!(!dir.path().join("x.json").exists());
}

#[test]
fn demo_writes_the_page_and_prints_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(curlew()
        .args(["demo", "--rows", "2000", "--keep"])
        .arg(dir.path()));
    let page = dir.path().join("report.html");
    assert!(
        out.contains(&format!("open it in a browser: {}", page.display())),
        "{out}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(r#"<svg id="daily-chart""#));
    // the page's total is the demo's exact total, which matches the generator
    let exact = out
        .lines()
        .find_map(|l| l.strip_prefix("exact total: "))
        .unwrap();
    let kpi = tags(&html, "div", "id=\"kpi-total\"");
    assert_eq!(money(attr(kpi[0], "data-cost").unwrap()), money(exact));
}
