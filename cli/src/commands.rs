//! The subcommands: argument parsing at the edge, work in the `curlew` crate.

use crate::render;
use anyhow::{bail, Context, Result};
use clap::Args;
use curlew::discover::Source;
use curlew::ingest::{ingest as run_ingest, IngestOptions};
use curlew::ledger::Ledger;
use curlew::registry::Registry;
use curlew::report::{aggregate, load_committed, Dim};
use curlew::rollup::Measure;
use curlew::sample::{write_sample, Cardinality, SampleFormat, SampleSpec, Versioning};
use curlew::store::Store;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Args)]
pub struct IngestArgs {
    /// The report's location: s3://bucket/prefix, or a directory holding a copy of it (or bare data files).
    pub root: String,
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Where committed rollups go: a directory or s3://bucket/prefix.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub out: String,
    /// Connected usage accounts (comma-separated); others are reported as unattributed.
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Skip billing periods before YYYY-MM (bill processing start date).
    #[arg(long)]
    pub since: Option<String>,
    /// Only this report/export, when ROOT holds several.
    #[arg(long)]
    pub report: Option<String>,
    /// The payer account the data belongs to (default: the account the manifest names).
    #[arg(long)]
    pub payer: Option<String>,
    /// Data files read in parallel.
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub dimensions: DimensionArgs,
    /// Also write the line items as FOCUS 1.2 Parquet into DIR (as
    /// `curlew export focus ROOT --out DIR`; a local ROOT only), after the
    /// rollups are committed.
    #[arg(long, value_name = "DIR")]
    pub export_focus: Option<PathBuf>,
}

/// Tag and cost category keys that become rollup dimensions.
#[derive(Args, Default)]
pub struct DimensionArgs {
    /// A tag key to group by (repeatable): `team` is the user tag user:team,
    /// `aws:createdBy` an AWS tag. Rows without it are their own (untagged) group.
    #[arg(long = "tag", value_name = "KEY")]
    pub tags: Vec<String>,
    /// A cost category to group by (repeatable).
    #[arg(long = "cost-category", value_name = "NAME")]
    pub cost_categories: Vec<String>,
}

impl DimensionArgs {
    pub fn dimensions(&self) -> Result<curlew::dimensions::Dimensions> {
        Ok(curlew::dimensions::Dimensions::from_args(
            &self.tags,
            &self.cost_categories,
        )?)
    }
}

#[derive(Args)]
pub struct ReportArgs {
    /// Where committed rollups are: a directory or s3://bucket/prefix.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub out: String,
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Only this billing period (YYYY-MM).
    #[arg(long)]
    pub period: Option<String>,
    /// Group by: period, day, payer, account, service, region, category, type,
    /// usage-type, tag:KEY, cost-category:NAME (repeatable; a tag or cost
    /// category the rollups were grouped by at ingest: `--tag`).
    #[arg(long = "by", default_values_t = vec!["service".to_string()])]
    pub by: Vec<String>,
    /// billed, amortized (effective), list, contracted, unblended, net-unblended, blended, usage.
    #[arg(long, default_value = "billed")]
    pub measure: String,
    /// table, csv, json or html (one self-contained page of one period: --out-file).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Rows shown in a table (0 = all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Where --format html writes its page (required with html).
    #[arg(long, value_name = "FILE")]
    pub out_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct SampleArgs {
    /// cur1-csv, cur1-parquet, cur2-parquet, cur2-csv or focus.
    #[arg(long, default_value = "cur1-csv")]
    pub format: String,
    /// overwrite or new.
    #[arg(long, default_value = "overwrite")]
    pub versioning: String,
    #[arg(long, default_value_t = 10_000)]
    pub rows: u64,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "2024-01")]
    pub period: String,
    #[arg(long, default_value_t = 1)]
    pub files: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The payer account (twelve digits): the rows' BillingAccountId and the manifest's account.
    #[arg(long)]
    pub payer: Option<String>,
    /// The report/export name (default: curlew-cur, curlew-cur2 or curlew-focus).
    #[arg(long)]
    pub report: Option<String>,
    /// low (40 accounts, 21 usage types: ~17k groups in 2 M rows) or high (60
    /// accounts, ~600 usage types, 64k resource ids: ~600k groups in 2 M rows).
    #[arg(long, default_value = "low")]
    pub cardinality: String,
    /// Write one bare data file (no manifest, no folder layout).
    #[arg(long)]
    pub bare: bool,
}

/// `--measure`, as `curlew report` and `curlew diff` take it.
pub(crate) fn parse_measure(m: &str) -> Result<Measure> {
    Measure::parse(m).with_context(|| format!("--measure {m:?} is not a measure; use billed, amortized, list, contracted, unblended, net-unblended, blended or usage"))
}

/// `--by` (repeatable), as `curlew report` and `curlew diff` take it.
pub(crate) fn parse_dims(by: &[String]) -> Result<Vec<Dim>> {
    by.iter()
        .map(|d| Dim::parse(d).with_context(|| format!("--by {d:?} is not a dimension; use period, day, payer, account, service, region, category, type, usage-type, tag:KEY or cost-category:NAME")))
        .collect()
}

pub(crate) fn check_period(p: &str, flag: &str) -> Result<()> {
    let ok = p.len() == 7
        && p.as_bytes()[4] == b'-'
        && p[..4].parse::<u32>().is_ok()
        && p[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    if !ok {
        bail!("{flag} {p:?} is not a billing period; write it as YYYY-MM, e.g. 2024-01");
    }
    Ok(())
}

fn check_payer(p: &str) -> Result<()> {
    if !curlew::manifest::is_account_id(p) {
        bail!("--payer {p:?} is not an AWS account id; write the payer account's twelve digits");
    }
    Ok(())
}

/// Report and export names as AWS allows them (they become path segments).
fn check_report_name(r: &str) -> Result<()> {
    let ok = !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        bail!("--report {r:?} is not a report name; use letters, digits, '_', '.' and '-' only");
    }
    Ok(())
}

pub async fn ingest(a: IngestArgs) -> Result<i32> {
    if !a.root.starts_with("s3://") && !std::path::Path::new(&a.root).is_dir() {
        bail!("{} is not a directory; point `curlew ingest` at s3://bucket/prefix or at the folder that holds a copy of it", a.root);
    }
    if let Some(s) = &a.since {
        check_period(s, "--since")?;
    }
    if a.export_focus.is_some() && a.root.starts_with("s3://") {
        bail!("--export-focus reads a local copy of the report; sync {} to a folder first (aws s3 sync), or drop --export-focus", a.root);
    }
    let (store, prefix) = Store::open(&a.root).await;
    let source = Source { store, prefix };
    let (out_store, out_prefix) = Store::open(&a.out).await;
    let ledger = Ledger::new(out_store, &out_prefix);
    let mut opts = IngestOptions::new(&a.tenant);
    if !a.accounts.is_empty() {
        opts.accounts = Some(
            a.accounts
                .iter()
                .map(|s| s.trim().to_owned())
                .collect::<BTreeSet<_>>(),
        );
    }
    opts.since = a.since.clone();
    opts.report = a.report.clone();
    opts.dimensions = a.dimensions.dimensions()?;
    if let Some(p) = &a.payer {
        check_payer(p)?;
        opts.payer = Some(p.clone());
    }
    if let Some(j) = a.jobs {
        opts.parallelism = j.max(1);
    }
    let progress = Arc::new(AtomicU64::new(0));
    opts.progress = Some(progress.clone());
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} ingesting: {msg} read, {elapsed}")
                .expect("template"),
        );
        b
    });
    let ticker = bar.clone().map(|b| {
        let p = progress.clone();
        tokio::spawn(async move {
            loop {
                b.set_message(indicatif::HumanBytes(p.load(Ordering::Relaxed)).to_string());
                b.tick();
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
    });
    let started = std::time::Instant::now();
    let report = run_ingest(&source, &ledger, &opts, &curlew::pipeline::Silent)
        .await
        .context("ingest failed")?;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    render::ingest_summary(
        &report,
        &a.out,
        started.elapsed(),
        progress.load(Ordering::Relaxed),
    );
    if report.failed() {
        return Ok(1);
    }
    if let Some(dir) = &a.export_focus {
        let exported = curlew::export::export_focus(
            &source,
            dir,
            &curlew::export::ExportOptions {
                report: a.report.clone(),
            },
        )
        .await
        .with_context(|| format!("exporting line-level FOCUS to {}", dir.display()))?;
        println!("\nline-level FOCUS 1.2 in {}:", dir.display());
        print!("{}", crate::export::summary(&exported));
    }
    Ok(0)
}

pub async fn report(a: ReportArgs) -> Result<i32> {
    if let Some(p) = &a.period {
        check_period(p, "--period")?;
    }
    let measure = parse_measure(&a.measure)?;
    let dims = parse_dims(&a.by)?;
    match (a.format.as_str(), &a.out_file) {
        ("html", None) => bail!("--format html writes a page; name it with --out-file, e.g. --out-file report.html"),
        ("html", Some(_)) | ("table" | "csv" | "json", None) => {}
        ("table" | "csv" | "json", Some(_)) => bail!("--out-file is for --format html; table, csv and json go to stdout (redirect it: > FILE)"),
        (f, _) => bail!("--format {f:?} is not known; use table, csv, json or html"),
    }
    let (out_store, out_prefix) = Store::open(&a.out).await;
    let ledger = Ledger::new(out_store.clone(), &out_prefix);
    let nothing = || {
        anyhow::anyhow!(
            "nothing committed for tenant {:?}{} in {}; run `curlew ingest ROOT --out {}` first",
            a.tenant,
            a.period
                .as_ref()
                .map(|p| format!(" and period {p}"))
                .unwrap_or_default(),
            a.out,
            a.out
        )
    };
    if let Some(file) = &a.out_file {
        let registry = Registry::new(out_store, &out_prefix);
        let view =
            curlew::report::view::load(&ledger, &registry, &a.tenant, a.period.as_deref(), measure)
                .await?
                .ok_or_else(nothing)?;
        std::fs::write(file, curlew::report::html::render(&view))
            .with_context(|| format!("writing {}", file.display()))?;
        println!(
            "wrote the {} report of {} to {}",
            view.period,
            a.tenant,
            file.display()
        );
        return Ok(0);
    }
    let committed = load_committed(&ledger, &a.tenant, a.period.as_deref()).await?;
    if committed.is_empty() {
        return Err(nothing());
    }
    let rows = aggregate(&committed, &dims, measure);
    match a.format.as_str() {
        "table" => render::table(&committed, &dims, measure, &rows, a.top),
        "csv" => render::csv(&dims, &rows)?,
        _ => render::json(&dims, &rows)?,
    }
    Ok(0)
}

pub fn sample(a: SampleArgs) -> Result<i32> {
    let format = SampleFormat::parse(&a.format).with_context(|| {
        format!(
            "--format {:?} is not known; use one of {}",
            a.format,
            SampleFormat::NAMES.join(", ")
        )
    })?;
    let versioning = match a.versioning.as_str() {
        "overwrite" => Versioning::Overwrite,
        "new" => Versioning::New,
        v => bail!("--versioning {v:?} is not known; use overwrite or new"),
    };
    check_period(&a.period, "--period")?;
    if let Some(p) = &a.payer {
        check_payer(p)?;
    }
    if let Some(r) = &a.report {
        check_report_name(r)?;
    }
    let cardinality = Cardinality::parse(&a.cardinality).with_context(|| {
        format!(
            "--cardinality {:?} is not known; use low or high",
            a.cardinality
        )
    })?;
    let mut spec = SampleSpec::new(format, a.rows);
    spec.cardinality = cardinality;
    spec.bare = a.bare;
    spec.versioning = versioning;
    spec.period = a.period;
    spec.files = a.files;
    spec.seed = a.seed;
    spec.payer = a.payer;
    spec.report = a.report;
    let out = write_sample(&spec, &a.out)?;
    println!(
        "wrote {} rows of {} to {}",
        out.expected.rows,
        a.format,
        a.out.display()
    );
    for k in out.manifest_keys.iter().chain(&out.data_keys) {
        println!("  {k}");
    }
    println!("ingest it with: curlew ingest {}", a.out.display());
    Ok(0)
}

pub async fn demo(rows: u64, keep: Option<PathBuf>) -> Result<i32> {
    let tmp = tempfile::tempdir()?;
    let keep_dir = keep.clone();
    let base = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    let src = base.join("billing");
    let out = base.join("curlew-out");
    println!(
        "curlew demo: a month of legacy CUR ({rows} rows, 2 files) in {}\n",
        src.display()
    );
    let mut spec = SampleSpec::new(SampleFormat::Cur1Csv, rows);
    spec.files = 2;
    spec.versioning = Versioning::New;
    let sample = write_sample(&spec, &src)?;
    let args = IngestArgs {
        root: src.display().to_string(),
        tenant: "demo".into(),
        out: out.display().to_string(),
        accounts: Vec::new(),
        since: None,
        report: None,
        payer: None,
        jobs: None,
        dimensions: DimensionArgs::default(),
        export_focus: None,
    };
    let code = ingest(args).await?;
    if code != 0 {
        return Ok(code);
    }
    println!();
    for by in ["service", "account"] {
        report(ReportArgs {
            out: out.display().to_string(),
            tenant: "demo".into(),
            period: None,
            by: vec![by.into()],
            measure: "billed".into(),
            format: "table".into(),
            top: 8,
            out_file: None,
        })
        .await?;
        println!();
    }
    // The page outlives the demo's temporary directory.
    let page = match &keep_dir {
        Some(dir) => dir.join("report.html"),
        None => {
            tempfile::Builder::new()
                .prefix("curlew-demo-report-")
                .suffix(".html")
                .tempfile()?
                .keep()
                .context("keeping the demo's report page")?
                .1
        }
    };
    report(ReportArgs {
        out: out.display().to_string(),
        tenant: "demo".into(),
        period: None,
        by: Vec::new(),
        measure: "billed".into(),
        format: "html".into(),
        top: 0,
        out_file: Some(page.clone()),
    })
    .await?;
    println!("open it in a browser: {}", page.display());
    println!();
    println!(
        "generator's own total BilledCost: {} ({} rows) — the table's total must match it to the last digit",
        sample.expected.billed, sample.expected.rows
    );
    Ok(0)
}

#[derive(Args)]
pub struct GcArgs {
    /// Where committed rollups are: a directory or s3://bucket/prefix.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub out: String,
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Revisions newer than CURRENT and staging younger than this are kept
    /// (may be in flight: a part job is retried for up to 2.5 hours).
    #[arg(long, default_value_t = curlew::gc::MIN_GRACE_MINUTES,
          value_parser = clap::value_parser!(i64).range(curlew::gc::MIN_GRACE_MINUTES..))]
    pub grace_minutes: i64,
}

pub async fn gc(a: GcArgs) -> Result<i32> {
    let (out_store, out_prefix) = Store::open(&a.out).await;
    let ledger = Ledger::new(out_store.clone(), &out_prefix);
    let health = curlew::gc::gc_health(&out_store, &out_prefix, chrono::Utc::now()).await?;
    if health > 0 {
        println!("curlew gc: deleted {health} expired health dedupe record(s)");
    }
    let tokens = curlew::gc::gc_onboarding(&out_store, &out_prefix, chrono::Utc::now()).await?;
    if tokens > 0 {
        println!("curlew gc: deleted {tokens} expired onboarding token(s) no stack used");
    }
    let r = curlew::gc::gc(
        &ledger,
        &a.tenant,
        chrono::Duration::minutes(a.grace_minutes),
        chrono::Utc::now(),
    )
    .await?;
    println!(
        "curlew gc: deleted {} superseded/abandoned revision(s) and {} staging dir(s), {} object(s)",
        r.deleted_revisions.len(),
        r.deleted_staging.len(),
        r.objects_deleted
    );
    for d in r.deleted_revisions.iter().chain(&r.deleted_staging) {
        println!("  deleted {d}");
    }
    for k in &r.kept_in_flight {
        println!("  kept (may be in flight) {k}");
    }
    Ok(0)
}

/// Which SQL engine `curlew sql` writes for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SqlEngine {
    /// A DuckDB view `curlew_rollup` over the tenant's index (local or s3:// store).
    Duckdb,
    /// An Athena table over the tenant's index (s3:// store only).
    Athena,
}

#[derive(Args)]
pub struct SqlArgs {
    /// duckdb or athena.
    #[arg(value_enum)]
    pub engine: SqlEngine,
    /// Where committed rollups are: a directory or s3://bucket/prefix.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub out: String,
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Athena: the database of the table.
    #[arg(long, default_value = "curlew")]
    pub database: String,
    /// Athena: the table's name (the table holds one tenant).
    #[arg(long, default_value = "curlew_rollup")]
    pub table: String,
}

pub async fn sql(a: SqlArgs) -> Result<i32> {
    let (store, prefix) = Store::open(&a.out).await;
    if matches!(a.engine, SqlEngine::Athena) && matches!(store, Store::Fs(_)) {
        bail!(
            "Athena reads from S3 only and {} is a local store; point --store at s3://bucket/prefix (the store `curlew ingest --store` wrote)",
            a.out
        );
    }
    let ledger = Ledger::new(store, &prefix);
    let key = ledger.layout.current_index(&a.tenant);
    let url = curlew::pipeline::index::url_of(&ledger.store, &key);
    match ledger.store.head(&key).await {
        Ok(_) => {}
        Err(curlew::store::StoreError::NotFound { .. }) => bail!(
            "no index of tenant {:?} at {url}; run `curlew ingest ROOT --tenant {} --store {}` first (every commit writes it; a store of the old layout needs `curlew migrate --store {}`)",
            a.tenant,
            a.tenant,
            a.out,
            a.out
        ),
        Err(e) => return Err(e).with_context(|| format!("reading the index {url}")),
    }
    let text = match a.engine {
        SqlEngine::Duckdb => curlew::sql::duckdb(&url),
        SqlEngine::Athena => {
            let dir = url.strip_suffix("symlink.txt").unwrap_or(&url);
            curlew::sql::athena(&a.database, &a.table, dir)
        }
    };
    print!("{text}");
    Ok(0)
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The store to migrate: a directory or s3://bucket/prefix.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub out: String,
    /// Only this tenant (default: every tenant of the store).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print what would move; write and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn migrate(a: MigrateArgs) -> Result<i32> {
    let (store, prefix) = Store::open(&a.out).await;
    let ledger = Ledger::new(store, &prefix);
    let opts = curlew::migrate::MigrateOptions {
        tenant: a.tenant.clone(),
        dry_run: a.dry_run,
    };
    let r = curlew::migrate::migrate(&ledger, &opts)
        .await
        .with_context(|| format!("curlew migrate of {} stopped", a.out))?;
    let verb = if r.dry_run { "would move" } else { "moved" };
    for p in &r.periods {
        let kept = if p.kept.is_empty() {
            String::new()
        } else {
            format!(
                "; kept {} revision(s) the new layout already had",
                p.kept.len()
            )
        };
        let outcome = match &p.outcome {
            Some(curlew::ledger::CommitOutcome::NotNewer { current }) => {
                format!("; CURRENT already names {current}")
            }
            _ => String::new(),
        };
        println!(
            "{verb} tenant={} billing_period={} to {}: CURRENT revision={}, {} revision(s), {} object(s) copied{kept}{outcome}",
            p.source.tenant,
            p.period,
            p.source.segments(),
            p.revision,
            p.revisions,
            p.copied,
        );
    }
    let (del, rebuild) = if r.dry_run {
        ("would delete", "would rebuild")
    } else {
        ("deleted", "rebuilt")
    };
    if r.staging_deleted > 0 {
        println!("{del} {} old staging object(s)", r.staging_deleted);
    }
    for t in &r.indexes_rebuilt {
        println!("{rebuild} the index of tenant {t}");
    }
    for o in &r.orphans {
        println!("left {o}: no CURRENT names it (abandoned by the old layout; delete it by hand once no older curlew writes to this store)");
    }
    match r.connections_reindexed {
        Some(n) => println!("rebuilt the registry's bucket index ({n} connection(s))"),
        None => println!("would rebuild the registry's bucket index"),
    }
    if !r.changed() {
        println!(
            "curlew migrate: nothing to migrate in {}{}",
            a.out,
            if r.dry_run { " (dry run)" } else { "" }
        );
    } else if r.dry_run {
        println!("curlew migrate: dry run; nothing was written or deleted");
    }
    Ok(0)
}
