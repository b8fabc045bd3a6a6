//! `curlew bench`: whole `curlew ingest` of one bare legacy CUR file (gzip CSV
//! and Parquet) at low and high cardinality, side by side in one run with the
//! streaming zlib-rs inflate of the same CSV (the floor) and DuckDB's GROUP BY
//! at curlew's grain with exact DECIMAL sums. Every case runs in a child
//! process so its peak RSS (VmHWM) is its own.

use anyhow::{bail, Context, Result};
use clap::Args;
use curlew::discover::Source;
use curlew::ingest::{ingest, DeliveryStatus, IngestOptions};
use curlew::ledger::Ledger;
use curlew::money::Money;
use curlew::pipeline::Silent;
use curlew::sample::{write_sample, Cardinality, SampleFormat, SampleSpec};
use curlew::store::Store;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const DUCKDB_SCRIPT: &str = include_str!("bench_duckdb.py");

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: u64,
    /// low, high or both (comma-separated).
    #[arg(long, default_value = "low,high")]
    pub cardinality: String,
    /// Keep generated inputs here (reused when present) instead of a temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Runs of each case, taken in turns (every case once, then again); each
    /// figure is the median run, peak RSS the largest.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Skip the DuckDB reference (it needs python3; installed with pip when missing).
    #[arg(long)]
    pub no_duckdb: bool,
    /// Internal: measure one case in this process (inflate, ingest) on FILE.
    #[arg(long, hide = true)]
    pub case: Option<String>,
    #[arg(long, hide = true)]
    pub file: Option<PathBuf>,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One measured case, as a child prints it:
/// `BENCH <secs> <peak MB> <rows> <groups> [<BilledCost> <EffectiveCost>]`.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    secs: f64,
    rss_mb: f64,
    rows: u64,
    groups: u64,
    /// Exact totals (ingest and DuckDB; not the floor).
    totals: Option<(Money, Money)>,
    /// Fastest and slowest run (one run: its own time twice).
    range: (f64, f64),
}

/// One figure from the runs of a case: the median run's time (the lower
/// middle of an even count), the largest peak RSS, the range of the times.
/// Every run must count the same rows and groups and reach the same totals.
fn median(runs: &[Figures], what: &str) -> Result<Figures> {
    let mut by_time = runs.to_vec();
    by_time.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mut m = *by_time
        .get(by_time.len().saturating_sub(1) / 2)
        .with_context(|| format!("{what}: no run"))?;
    for r in runs {
        if (r.rows, r.groups, r.totals) != (m.rows, m.groups, m.totals) {
            bail!(
                "{what}: runs disagree ({} rows, {} groups, totals {:?} against {} rows, {} groups, totals {:?})",
                r.rows, r.groups, r.totals, m.rows, m.groups, m.totals
            );
        }
    }
    m.rss_mb = runs.iter().map(|r| r.rss_mb).fold(0.0, f64::max);
    m.range = (by_time[0].secs, by_time[by_time.len() - 1].secs);
    Ok(m)
}

impl Figures {
    fn parse(out: &str) -> Option<Figures> {
        let line = out.lines().rev().find(|l| l.starts_with("BENCH "))?;
        let v: Vec<&str> = line.split_whitespace().skip(1).collect();
        Some(Figures {
            secs: v.first()?.parse().ok()?,
            rss_mb: v.get(1)?.parse().ok()?,
            rows: v.get(2)?.parse().ok()?,
            groups: v.get(3)?.parse().ok()?,
            totals: match (v.get(4), v.get(5)) {
                (Some(b), Some(e)) => Some((b.parse().ok()?, e.parse().ok()?)),
                _ => None,
            },
            range: (0.0, 0.0),
        })
    }
}

fn print_figures(f: Figures) {
    print!(
        "BENCH {:.4} {:.1} {} {}",
        f.secs, f.rss_mb, f.rows, f.groups
    );
    if let Some((b, e)) = f.totals {
        print!(" {b} {e}");
    }
    println!();
}

/// The streaming inflate of a gzip file, nothing else: the floor for CSV.
fn inflate(file: &Path) -> Result<Figures> {
    let t = Instant::now();
    let f = std::fs::File::open(file)?;
    let mut d = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 17, f));
    let mut buf = vec![0u8; 1 << 17];
    let mut bytes = 0u64;
    loop {
        let n = d.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    Ok(Figures {
        secs: t.elapsed().as_secs_f64(),
        rss_mb: peak_rss_mb(),
        rows: bytes,
        groups: 0,
        totals: None,
        range: (0.0, 0.0),
    })
}

/// The tag dimensions of the "with tags" cases: the generator's user tags
/// `team` (5 values with untagged) and `environment` (4).
const BENCH_TAGS: [&str; 2] = ["team", "environment"];

/// Whole `curlew ingest` of the folder holding `file` into a fresh output
/// store: discovery, read, staging, commit, output; grouped by `tags` too.
async fn ingest_case(file: &Path, tags: &[&str]) -> Result<Figures> {
    let root = file.parent().context("input has no folder")?;
    let out = tempfile::tempdir()?;
    let t = Instant::now();
    let (store, prefix) = Store::open(&root.display().to_string()).await;
    let source = Source { store, prefix };
    let (out_store, out_prefix) = Store::open(&out.path().display().to_string()).await;
    let ledger = Ledger::new(out_store, &out_prefix);
    let mut opts = IngestOptions::new("bench");
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    opts.dimensions = curlew::dimensions::Dimensions::from_args(&tags, &[])?;
    let report = ingest(&source, &ledger, &opts, &Silent).await?;
    let secs = t.elapsed().as_secs_f64();
    let (mut rows, mut groups) = (0, 0);
    let (mut billed, mut effective) = (Money::ZERO, Money::ZERO);
    for d in &report.deliveries {
        match &d.status {
            DeliveryStatus::Committed(c) => {
                for p in c {
                    rows += p.summary.rows_read;
                    groups += p.summary.rollup_rows;
                    billed += p.summary.totals.billed_cost;
                    effective += p.summary.totals.effective_cost;
                }
            }
            other => bail!("benchmark ingest did not commit: {other:?}"),
        }
    }
    Ok(Figures {
        secs,
        rss_mb: peak_rss_mb(),
        rows,
        groups,
        totals: Some((billed, effective)),
        range: (0.0, 0.0),
    })
}

/// Run `cmd` (its own process, so its own peak RSS) and read the figures it prints.
fn measured(mut cmd: Command, what: &str) -> Result<Figures> {
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("{what} failed: {text}");
    }
    Figures::parse(&text).with_context(|| format!("{what} printed no figures: {text}"))
}

/// A case in a child process.
fn child(exe: &Path, case: &str, file: &Path) -> Result<Figures> {
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "--case", case, "--file"]).arg(file);
    measured(cmd, &format!("benchmark case {case}"))
}

fn ensure_duckdb() -> Result<()> {
    let ok = |c: &mut Command| c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    if ok(Command::new("python3").args(["-c", "import duckdb"]))?.success() {
        return Ok(());
    }
    eprintln!("installing duckdb with pip for the reference ...");
    let st = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "duckdb",
        ])
        .status()?;
    if !st.success() {
        bail!("pip could not install duckdb; run with --no-duckdb to skip the reference");
    }
    Ok(())
}

/// DuckDB at curlew's grain (its own process and peak RSS); with `out`, the
/// grouped rollup is written there as zstd Parquet (curlew's whole job).
fn duckdb(script: &Path, file: &Path, threads: u32, out: Option<&Path>) -> Result<Figures> {
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(file).arg(threads.to_string());
    if let Some(o) = out {
        cmd.arg(o);
    }
    measured(cmd, "DuckDB reference")
}

/// Do two cases' exact totals agree? To the last digit, or (`f64_input`: DuckDB
/// casts a Parquet double to DECIMAL by its binary expansion, curlew by its
/// shortest decimal form) to 1e-9.
fn totals_agree(a: Figures, b: Figures, f64_input: bool) -> Option<bool> {
    let ((ab, ae), (bb, be)) = (a.totals?, b.totals?);
    let tol = if f64_input {
        Money::new(1, 9)
    } else {
        Money::ZERO
    };
    Some((ab - bb).abs() <= tol && (ae - be).abs() <= tol)
}

/// The bare input of one format and cardinality, generated once per `dir`.
fn input(dir: &Path, format: SampleFormat, card: Cardinality, rows: u64) -> Result<(PathBuf, u64)> {
    let name = match format {
        SampleFormat::Cur1Csv => "csv",
        _ => "parquet",
    };
    let root = dir.join(format!("{name}-{rows}-{card:?}").to_lowercase());
    let marker = dir.join(format!("{name}-{rows}-{card:?}.txt").to_lowercase());
    if marker.exists() {
        let text = std::fs::read_to_string(&marker)?;
        let (f, b) = text.trim().split_once(' ').context("bad bench marker")?;
        return Ok((root.join(f), b.parse()?));
    }
    eprintln!("generating {rows} rows of legacy CUR ({card:?} cardinality) as {name} ...");
    let mut spec = SampleSpec::new(format, rows);
    spec.gzip_level = 6;
    spec.bare = true;
    spec.cardinality = card;
    let t = Instant::now();
    let out = write_sample(&spec, &root)?;
    let f = out.data_keys[0].clone();
    std::fs::write(&marker, format!("{f} {}", out.bytes_uncompressed))?;
    eprintln!("  done in {:.1} s", t.elapsed().as_secs_f64());
    Ok((root.join(f), out.bytes_uncompressed))
}

/// One measured case: runs a child process and reads its figures.
type Case<'a> = Box<dyn Fn() -> Result<Figures> + 'a>;

/// The range of a case's runs as the table shows it: `(1.10-1.40)`.
fn spread(f: Figures) -> String {
    format!("({:.2}-{:.2})", f.range.0, f.range.1)
}

pub async fn run(a: BenchArgs) -> Result<i32> {
    if let (Some(case), Some(file)) = (&a.case, &a.file) {
        let f = match case.as_str() {
            "inflate" => inflate(file)?,
            "ingest" => ingest_case(file, &[]).await?,
            "ingest-tags" => ingest_case(file, &BENCH_TAGS).await?,
            c => bail!("unknown benchmark case {c:?}"),
        };
        print_figures(f);
        return Ok(0);
    }
    let cards: Vec<Cardinality> = a
        .cardinality
        .split(',')
        .map(|c| {
            Cardinality::parse(c.trim()).with_context(|| {
                format!("--cardinality {c:?} is not known; use low, high or low,high")
            })
        })
        .collect::<Result<_>>()?;
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let script = tmp.path().join("bench_duckdb.py");
    std::fs::write(&script, DUCKDB_SCRIPT)?;
    if !a.no_duckdb {
        ensure_duckdb()?;
    }
    let exe = std::env::current_exe()?;
    println!(
        "curlew bench: whole `curlew ingest` of one bare {}-row legacy CUR file ({} columns); this machine: {} cores\n\
         each case runs {} time(s) in turns: the median run's time (fastest-slowest), the largest peak RSS",
        a.rows,
        curlew::sample::CUR1_COLUMNS.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        a.repeat.max(1)
    );
    let mut verdicts = Vec::new();
    let mut peaks: Vec<(Cardinality, f64, u64)> = Vec::new();
    for card in cards {
        let (csv, csv_bytes) = input(&dir, SampleFormat::Cur1Csv, card, a.rows)?;
        let (pq, _) = input(&dir, SampleFormat::Cur1Parquet, card, a.rows)?;
        let mb = |p: &Path| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1048576.0);
        println!(
            "\n{card:?} cardinality: gzip CSV {:.0} MiB ({:.0} MiB inflated), Parquet {:.0} MiB",
            mb(&csv),
            csv_bytes as f64 / 1048576.0,
            mb(&pq)
        );
        // Every case once per turn, so that the machine's slow spells fall
        // on all of them alike.
        let out = tmp.path().join("duckdb-rollup.parquet");
        let mut cases: Vec<(&str, Case<'_>)> = vec![
            ("inflate", Box::new(|| child(&exe, "inflate", &csv))),
            ("ingest CSV", Box::new(|| child(&exe, "ingest", &csv))),
            ("ingest Parquet", Box::new(|| child(&exe, "ingest", &pq))),
            (
                "ingest CSV + tags",
                Box::new(|| child(&exe, "ingest-tags", &csv)),
            ),
            (
                "ingest Parquet + tags",
                Box::new(|| child(&exe, "ingest-tags", &pq)),
            ),
        ];
        if !a.no_duckdb {
            cases.push(("DuckDB CSV", Box::new(|| duckdb(&script, &csv, 2, None))));
            cases.push(("DuckDB Parquet", Box::new(|| duckdb(&script, &pq, 1, None))));
            cases.push((
                "DuckDB Parquet -> Parquet",
                Box::new(|| duckdb(&script, &pq, 1, Some(&out))),
            ));
        }
        let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); cases.len()];
        for _ in 0..a.repeat.max(1) {
            for (i, (_, case)) in cases.iter().enumerate() {
                runs[i].push(case()?);
            }
        }
        let figures: Vec<Figures> = cases
            .iter()
            .zip(&runs)
            .map(|((what, _), r)| median(r, what))
            .collect::<Result<_>>()?;
        let (floor, c, p, ct, pt) = (figures[0], figures[1], figures[2], figures[3], figures[4]);
        let (dcsv, dpq, dpq_out) = match figures.get(5..8) {
            Some(d) => (Some(d[0]), Some(d[1]), Some(d[2])),
            None => (None, None, None),
        };
        let line = |what: &str, f: Figures, vs: &str| {
            println!(
                "  {what:<34} {:>7.2} s {:>13}  {:>9.0} rows/s  peak RSS {:>7.1} MB  {:>8} groups {vs}",
                f.secs,
                spread(f),
                if f.rows > 0 && f.groups > 0 { f.rows as f64 / f.secs } else { 0.0 },
                f.rss_mb,
                f.groups
            )
        };
        println!(
            "  {:<34} {:>7.2} s {:>13}  {:>6.0} MB/s inflated  peak RSS {:>7.1} MB",
            "zlib-rs inflate (floor)",
            floor.secs,
            spread(floor),
            floor.rows as f64 / 1048576.0 / floor.secs,
            floor.rss_mb
        );
        let csv_ratio = c.secs / floor.secs;
        line(
            "curlew ingest, gzip CSV",
            c,
            &format!("= {csv_ratio:.2}x the floor (target <= 1.25x)"),
        );
        if let Some(d) = dcsv {
            line(
                "DuckDB 2 threads, gzip CSV",
                d,
                &format!("(curlew = {:.2}x DuckDB)", c.secs / d.secs),
            );
        }
        let tagged = |f: Figures, plain: Figures| {
            format!(
                "(--tag {}: {:.2}x the time, {:.2}x the groups)",
                BENCH_TAGS.join(" --tag "),
                f.secs / plain.secs,
                f.groups as f64 / plain.groups.max(1) as f64
            )
        };
        line("curlew ingest + 2 tags, gzip CSV", ct, &tagged(ct, c));
        line("curlew ingest, Parquet", p, "");
        line("curlew ingest + 2 tags, Parquet", pt, &tagged(pt, p));
        if let Some(d) = dpq {
            let r = p.secs / d.secs;
            line(
                "DuckDB 1 thread, Parquet GROUP BY",
                d,
                &format!("(curlew = {r:.2}x DuckDB; target <= 1.5x)"),
            );
            verdicts.push((format!("{card:?} Parquet vs DuckDB"), r <= 1.5));
        }
        if let Some(d) = dpq_out {
            line(
                "DuckDB 1 thread, Parquet -> Parquet",
                d,
                &format!(
                    "(curlew = {:.2}x DuckDB writing its rollup)",
                    p.secs / d.secs
                ),
            );
        }
        // DuckDB is an independent check of the grain and the money: the same
        // groups and, to the last digit, the same BilledCost and EffectiveCost.
        // Tags split groups, never money: the same totals with and without.
        let mut agree = totals_agree(c, p, false) == Some(true)
            && totals_agree(ct, c, false) == Some(true)
            && totals_agree(pt, p, false) == Some(true);
        for (d, theirs, f64_input) in [(dcsv, c, false), (dpq, p, true), (dpq_out, p, true)] {
            let Some(d) = d else { continue };
            if d.groups != theirs.groups || totals_agree(d, theirs, f64_input) != Some(true) {
                agree = false;
                println!(
                    "  DISAGREE: DuckDB {} groups, totals {:?}; curlew {} groups, totals {:?}",
                    d.groups, d.totals, theirs.groups, theirs.totals
                );
            }
        }
        verdicts.push((format!("{card:?} groups and totals agree"), agree));
        let rss_target = if card == Cardinality::High {
            256.0
        } else {
            64.0
        };
        let worst = c.rss_mb.max(p.rss_mb);
        println!(
            "  peak RSS: {worst:.1} MB (target <= {rss_target:.0} MB) = {:.0} bytes per group",
            worst * 1048576.0 / c.groups.max(1) as f64
        );
        verdicts.push((format!("{card:?} CSV vs floor"), csv_ratio <= 1.25));
        verdicts.push((format!("{card:?} peak RSS"), worst <= rss_target));
        peaks.push((card, worst, c.groups));
        if card == Cardinality::Low {
            let rate = p.rows as f64 / p.secs;
            verdicts.push(("Low Parquet >= 3M rows/s".into(), rate >= 3e6));
        }
    }
    // What a group costs beyond what any file costs: the growth in peak RSS
    // from the low to the high case over the growth in groups.
    if let (Some(lo), Some(hi)) = (
        peaks.iter().find(|p| p.0 == Cardinality::Low),
        peaks.iter().find(|p| p.0 == Cardinality::High),
    ) {
        let per_group = (hi.1 - lo.1) * 1048576.0 / (hi.2 as f64 - lo.2 as f64).max(1.0);
        println!("\npeak RSS per group, high over low: {per_group:.0} bytes (target about 250)");
        verdicts.push(("Bytes per group <= 250".into(), per_group <= 250.0));
    }
    println!();
    for (what, ok) in verdicts {
        println!("  {:<30} {}", what, if ok { "met" } else { "NOT met" });
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secs: f64, rss_mb: f64, groups: u64) -> Figures {
        Figures {
            secs,
            rss_mb,
            rows: 10,
            groups,
            totals: None,
            range: (0.0, 0.0),
        }
    }

    /// The median run's time (the lower middle of an even count), the largest
    /// peak RSS, the range; runs that disagree on what they counted are an error.
    #[test]
    fn median_of_runs() {
        let m = median(
            &[run(3.0, 10.0, 5), run(1.0, 30.0, 5), run(2.0, 20.0, 5)],
            "x",
        )
        .unwrap();
        assert_eq!((m.secs, m.rss_mb, m.range), (2.0, 30.0, (1.0, 3.0)));
        let m = median(&[run(4.0, 1.0, 5), run(1.0, 1.0, 5)], "x").unwrap();
        assert_eq!((m.secs, m.range), (1.0, (1.0, 4.0)));
        let m = median(&[run(4.0, 1.0, 5)], "x").unwrap();
        assert_eq!((m.secs, m.range), (4.0, (4.0, 4.0)));
        let e = median(&[run(1.0, 1.0, 5), run(2.0, 1.0, 6)], "ingest CSV").unwrap_err();
        assert!(e.to_string().contains("ingest CSV: runs disagree"), "{e}");
        assert!(median(&[], "x").is_err());
    }
}
