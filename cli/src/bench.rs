//! `curlew bench`: generate a 2M-row legacy CUR (CSV.gz and Parquet) and time
//! the parsers on it. Each measurement runs in a child process so its peak RSS
//! (VmHWM) is its own.

use anyhow::{bail, Context, Result};
use clap::Args;
use curlew::read::{read_path, ReadOptions};
use curlew::rollup::RollupBuilder;
use curlew::sample::{write_sample, SampleFormat, SampleSpec};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: u64,
    /// Keep generated inputs here (reused when present) instead of a temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Internal: measure one case in this process (csv-1t, csv-2t, parquet) on FILE.
    #[arg(long, hide = true)]
    pub case: Option<String>,
    #[arg(long, hide = true)]
    pub file: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = 0)]
    pub bytes: u64,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn measure(case: &str, file: &Path, bytes: u64) -> Result<i32> {
    let opts = ReadOptions {
        threaded_decompression: case == "csv-2t",
        progress: None,
    };
    let mut b = RollupBuilder::new(None);
    let t = Instant::now();
    let r = read_path(&file.display().to_string(), file, &mut b, &opts)?;
    let groups: usize = b.finish().values().map(|p| p.groups.len()).sum();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{case:<9} {:>9} rows  {secs:>7.2} s  {:>10.0} rows/s  {:>8.1} MB/s uncompressed  peak RSS {:>6.1} MB  ({} groups)",
        r.rows,
        r.rows as f64 / secs,
        bytes as f64 / 1e6 / secs,
        peak_rss_mb(),
        groups
    );
    Ok(0)
}

pub fn run(a: BenchArgs) -> Result<i32> {
    if let (Some(case), Some(file)) = (&a.case, &a.file) {
        return measure(case, file, a.bytes);
    }
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut inputs = Vec::new();
    for (format, name) in [
        (SampleFormat::Cur1Csv, "csv"),
        (SampleFormat::Cur1Parquet, "parquet"),
    ] {
        let root = dir.join(format!("{name}-{}", a.rows));
        let marker = root.join("bench-bytes.txt");
        let (file, bytes) = if marker.exists() {
            let text = std::fs::read_to_string(&marker)?;
            let (f, b) = text.trim().split_once(' ').context("bad bench marker")?;
            (root.join(f), b.parse::<u64>()?)
        } else {
            eprintln!(
                "generating {} rows of legacy CUR as {name} in {} ...",
                a.rows,
                root.display()
            );
            let mut spec = SampleSpec::new(format, a.rows);
            spec.gzip_level = 6;
            spec.bare = true;
            let t = Instant::now();
            let out = write_sample(&spec, &root)?;
            let f = out.data_keys[0].clone();
            std::fs::write(&marker, format!("{f} {}", out.bytes_uncompressed))?;
            eprintln!("  done in {:.1} s", t.elapsed().as_secs_f64());
            (root.join(f), out.bytes_uncompressed)
        };
        inputs.push((name, file, bytes));
    }
    let exe = std::env::current_exe()?;
    println!(
        "curlew bench: {} rows, {} columns (legacy CUR), this machine: {} cores",
        a.rows,
        curlew::sample::CUR1_COLUMNS.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (name, file, bytes) in &inputs {
        let size = std::fs::metadata(file)?.len();
        println!(
            "input {name}: {} ({:.1} MB on disk, {:.1} MB uncompressed CSV-equivalent)",
            file.display(),
            size as f64 / 1e6,
            *bytes as f64 / 1e6
        );
    }
    let csv = &inputs[0];
    let pq = &inputs[1];
    for (case, (_, file, bytes)) in [("csv-1t", csv), ("csv-2t", csv), ("parquet", pq)] {
        let status = std::process::Command::new(&exe)
            .args(["bench", "--case", case, "--file"])
            .arg(file)
            .args(["--bytes", &bytes.to_string()])
            .status()?;
        if !status.success() {
            bail!("benchmark case {case} failed");
        }
    }
    println!("targets: csv-1t >= 400 MB/s, csv-2t >= 650 MB/s, parquet >= 3,000,000 rows/s, peak RSS <= 128 MB");
    Ok(0)
}
