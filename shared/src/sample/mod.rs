//! `curlew sample`: a realistic month of billing data in AWS's real layouts
//! (legacy CUR CSV/Parquet, CUR 2.0 Parquet/CSV, FOCUS), with manifests, for
//! the demo, tests and benchmarks. The generator knows exactly what it wrote:
//! [`SampleOutput::expected`] is computed from its integers, not by the engine.

mod cells;
mod columns;
mod rows;
mod sink;

pub use columns::{athena_name, CUR1_COLUMNS, FOCUS_COLUMNS};
pub use rows::Cardinality;
pub use sink::write_status;

use crate::charge::charge_category;
use crate::money::Money;
use cells::{cell_of, is_numeric, is_timestamp, render, Cell, Ctx};
use rows::{units_money, units_str, usage_type, GenRow, RowGen, REGIONS, SERVICES};
use sink::{CsvSink, OutCol, ParquetSink, RowSink};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which billing format to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    Cur1Csv,
    Cur1Parquet,
    Cur2Parquet,
    Cur2Csv,
    Focus,
}

impl SampleFormat {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cur1-csv" => Self::Cur1Csv,
            "cur1-parquet" => Self::Cur1Parquet,
            "cur2-parquet" => Self::Cur2Parquet,
            "cur2-csv" => Self::Cur2Csv,
            "focus" => Self::Focus,
            _ => return None,
        })
    }
    pub const NAMES: &'static [&'static str] = &[
        "cur1-csv",
        "cur1-parquet",
        "cur2-parquet",
        "cur2-csv",
        "focus",
    ];
}

/// Overwrite in place, or a new folder per delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Overwrite,
    New,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub format: SampleFormat,
    pub versioning: Versioning,
    pub rows: u64,
    /// `YYYY-MM`.
    pub period: String,
    pub seed: u64,
    /// Data files the rows are split over.
    pub files: usize,
    /// gzip level for CSV (1 = fast, 6 = AWS-like).
    pub gzip_level: u32,
    /// Write a plain CSV / Parquet with no manifest and no layout (bare files).
    pub bare: bool,
    /// The payer account (rows' BillingAccountId and the manifest's account);
    /// `None`: one the seed picks. Several payers make several sources of a tenant.
    pub payer: Option<String>,
    /// The report/export name; `None`: the format's default.
    pub report: Option<String>,
    /// How many distinct accounts, usage types and resources the rows use.
    pub cardinality: Cardinality,
}

impl SampleSpec {
    pub fn new(format: SampleFormat, rows: u64) -> Self {
        SampleSpec {
            format,
            versioning: Versioning::Overwrite,
            rows,
            period: "2024-01".into(),
            seed: 42,
            files: 1,
            gzip_level: 1,
            bare: false,
            payer: None,
            report: None,
            cardinality: Cardinality::Low,
        }
    }
}

/// Exact totals of what was generated, for checking ingestion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub rows: u64,
    pub rows_per_type: BTreeMap<String, u64>,
    pub billed: Money,
    pub effective: Money,
    pub list: Money,
    pub unblended: Money,
    pub usage: Money,
    /// BilledCost per usage account id.
    pub billed_per_account: BTreeMap<String, Money>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct SampleOutput {
    pub root: PathBuf,
    pub report: String,
    pub manifest_keys: Vec<String>,
    pub data_keys: Vec<String>,
    pub bytes_uncompressed: u64,
    pub expected: Expected,
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("writing sample to {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("writing sample Parquet: {0}")]
    Parquet(String),
    #[error("bad sample request: {0}")]
    Spec(String),
}

const BUCKET: &str = "example-billing-bucket";

struct Layout {
    report: String,
    /// Directory (key prefix) of the data files.
    data_dir: String,
    /// Manifest keys to write (the first is the canonical one).
    manifests: Vec<String>,
    ext: &'static str,
    assembly: String,
}

fn period_parts(period: &str) -> Result<(i32, u32, i32, u32), SampleError> {
    let bad = || SampleError::Spec(format!("period {period:?} is not YYYY-MM"));
    let (y, m) = period.split_once('-').ok_or_else(bad)?;
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) {
        return Err(bad());
    }
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Ok((y, m, ny, nm))
}

fn days_in(y: i32, m: u32, ny: i32, nm: u32) -> u32 {
    let a = chrono::NaiveDate::from_ymd_opt(y, m, 1).expect("valid date");
    let b = chrono::NaiveDate::from_ymd_opt(ny, nm, 1).expect("valid date");
    (b - a).num_days() as u32
}

fn layout(spec: &SampleSpec, y: i32, m: u32, ny: i32, nm: u32) -> Layout {
    let mut rng = fastrand::Rng::with_seed(spec.seed ^ 0x5eed);
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        rng.u32(..),
        rng.u16(..),
        rng.u16(..0xfff),
        rng.u16(..0xfff),
        rng.u64(..0xffff_ffff_ffff)
    );
    let range = format!("{y:04}{m:02}01-{ny:04}{nm:02}01");
    match spec.format {
        SampleFormat::Cur1Csv | SampleFormat::Cur1Parquet => {
            let report = spec.report.clone().unwrap_or_else(|| "curlew-cur".into());
            let parquet = spec.format == SampleFormat::Cur1Parquet;
            let ext = if parquet { "snappy.parquet" } else { "csv.gz" };
            match (parquet, spec.versioning) {
                (true, Versioning::Overwrite) => {
                    let dir = format!("cur/{report}/{report}/year={y}/month={m}/");
                    Layout {
                        manifests: vec![format!("{dir}{report}-Manifest.json")],
                        data_dir: dir,
                        report,
                        ext,
                        assembly: uuid,
                    }
                }
                (false, Versioning::Overwrite) => {
                    let dir = format!("cur/{report}/{range}/");
                    Layout {
                        manifests: vec![format!("{dir}{report}-Manifest.json")],
                        data_dir: dir,
                        report,
                        ext,
                        assembly: uuid,
                    }
                }
                (_, Versioning::New) => {
                    let top = format!("cur/{report}/{range}/");
                    let asm = if parquet {
                        format!("{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))
                    } else {
                        uuid
                    };
                    let dir = format!("{top}{asm}/");
                    Layout {
                        manifests: vec![
                            format!("{top}{report}-Manifest.json"),
                            format!("{dir}{report}-Manifest.json"),
                        ],
                        data_dir: dir,
                        report,
                        ext,
                        assembly: asm,
                    }
                }
            }
        }
        SampleFormat::Cur2Parquet | SampleFormat::Cur2Csv | SampleFormat::Focus => {
            let report = spec.report.clone().unwrap_or_else(|| {
                if spec.format == SampleFormat::Focus {
                    "curlew-focus"
                } else {
                    "curlew-cur2"
                }
                .to_string()
            });
            let ext = if spec.format == SampleFormat::Cur2Parquet {
                "snappy.parquet"
            } else {
                "csv.gz"
            };
            let period = format!("BILLING_PERIOD={y:04}-{m:02}");
            let base = format!("exports/{report}/data/{period}/");
            let data_dir = match spec.versioning {
                Versioning::Overwrite => base,
                Versioning::New => format!(
                    "{base}{}-{uuid}/",
                    chrono::Utc::now().format("%Y-%m-%dT%H%M%S.000Z")
                ),
            };
            Layout {
                manifests: vec![format!(
                    "exports/{report}/metadata/{period}/{report}-Manifest.json"
                )],
                data_dir,
                report,
                ext,
                assembly: uuid,
            }
        }
    }
}

/// Output columns and cell kinds for one format.
fn out_columns(format: SampleFormat, cells: &[Cell]) -> Vec<OutCol> {
    match format {
        SampleFormat::Cur1Csv => CUR1_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| OutCol::text(c, i))
            .collect(),
        SampleFormat::Cur1Parquet => CUR1_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| {
                OutCol::typed(
                    &athena_name(c),
                    i,
                    is_numeric(cells[i], c),
                    is_timestamp(cells[i]),
                )
            })
            .collect(),
        SampleFormat::Cur2Parquet | SampleFormat::Cur2Csv => {
            let parquet = format == SampleFormat::Cur2Parquet;
            let mut cols = Vec::new();
            let mut product = Vec::new();
            let mut tags = Vec::new();
            for (i, c) in CUR1_COLUMNS.iter().enumerate() {
                let name = athena_name(c);
                if c.starts_with("product/") && !columns::CUR2_TOP_LEVEL_PRODUCT.contains(c) {
                    product.push((name.trim_start_matches("product_").to_owned(), i));
                } else if let Some(tag) = c.strip_prefix("resourceTags/") {
                    tags.push((athena_name(tag), i));
                } else if parquet {
                    cols.push(OutCol::typed(
                        &name,
                        i,
                        is_numeric(cells[i], c),
                        is_timestamp(cells[i]),
                    ));
                } else {
                    cols.push(OutCol::text(&name, i));
                }
            }
            cols.push(OutCol::Map {
                name: "product".into(),
                entries: product,
            });
            cols.push(OutCol::Map {
                name: "resource_tags".into(),
                entries: tags,
            });
            cols
        }
        SampleFormat::Focus => FOCUS_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| OutCol::text(c, i))
            .collect(),
    }
}

fn focus_row(g: &GenRow, gen: &RowGen, ctx: &Ctx, out: &mut [String]) {
    let svc = &SERVICES[g.service];
    let (region, location) = REGIONS[g.region];
    let cat = charge_category(g.line_item_type.as_bytes()).unwrap_or("Usage");
    for (i, col) in FOCUS_COLUMNS.iter().enumerate() {
        let s = &mut out[i];
        s.clear();
        let d = g.day + 1;
        match *col {
            "BilledCost" => units_str(g.unblended, s),
            "EffectiveCost" => units_str(g.amortized(), s),
            "ListCost" => units_str(g.public_on_demand, s),
            "ContractedCost" => units_str(g.unblended, s),
            "ConsumedQuantity" | "PricingQuantity" => units_str(g.usage_amount, s),
            "BillingAccountId" => s.push_str(&gen.payer),
            "BillingAccountName" => s.push_str("Example Payer"),
            "SubAccountId" => s.push_str(&gen.accounts[g.account]),
            "SubAccountName" => s.push_str(&format!("account-{}", g.account)),
            "BillingCurrency" => s.push_str("USD"),
            "BillingPeriodStart" => {
                s.push_str(&format!("{:04}-{:02}-01 00:00:00", ctx.year, ctx.month))
            }
            "BillingPeriodEnd" => s.push_str(&format!(
                "{:04}-{:02}-01 00:00:00",
                ctx.next_year, ctx.next_month
            )),
            "ChargePeriodStart" => s.push_str(&format!(
                "{:04}-{:02}-{d:02} {:02}:00:00",
                ctx.year, ctx.month, g.hour
            )),
            "ChargePeriodEnd" => s.push_str(&format!(
                "{:04}-{:02}-{d:02} {:02}:00:00",
                ctx.year,
                ctx.month,
                g.hour.min(22) + 1
            )),
            "ChargeCategory" => s.push_str(cat),
            "ChargeFrequency" => s.push_str("Usage-Based"),
            "ChargeDescription" => {
                usage_type(g, s);
                s.push_str(" in ");
                s.push_str(location);
            }
            "ProviderName" | "PublisherName" | "InvoiceIssuerName" => s.push_str("AWS"),
            "RegionId" => s.push_str(region),
            "RegionName" => s.push_str(location),
            "ServiceName" => s.push_str(svc.name),
            "ServiceCategory" => s.push_str(svc.family),
            "x_ServiceCode" => s.push_str(g.product_code),
            "x_UsageType" => usage_type(g, s),
            "PricingUnit" | "ConsumedUnit" => s.push_str(svc.usage[g.usage].2),
            "PricingCategory" => s.push_str("Standard"),
            "Tags" => s.push_str(r#"{"team": "platform", "environment": "prod"}"#),
            // Commitments as AWS's FOCUS export marks them: covered usage
            // `Used`, the commitment's fee rows (its unused part) `Unused`.
            "CommitmentDiscountId" | "CommitmentDiscountStatus" | "CommitmentDiscountType" => {
                let (arn, used, kind) = match g.line_item_type {
                    "DiscountedUsage" => (Cell::RiArn, "Used", "Reserved Instance"),
                    "RIFee" => (Cell::RiArn, "Unused", "Reserved Instance"),
                    "SavingsPlanCoveredUsage" => (Cell::SpArn, "Used", "Savings Plan"),
                    "SavingsPlanRecurringFee" => (Cell::SpArn, "Unused", "Savings Plan"),
                    _ => {
                        s.push_str("NULL");
                        continue;
                    }
                };
                match *col {
                    "CommitmentDiscountId" => render(arn, g, gen, ctx, s),
                    "CommitmentDiscountStatus" => s.push_str(used),
                    _ => s.push_str(kind),
                }
            }
            _ => s.push_str("NULL"),
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SampleError + '_ {
    move |e| SampleError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Generate a sample under `out`.
pub fn write_sample(spec: &SampleSpec, out: &Path) -> Result<SampleOutput, SampleError> {
    let (y, m, ny, nm) = period_parts(&spec.period)?;
    let lay = layout(spec, y, m, ny, nm);
    let ctx = Ctx {
        year: y,
        month: m,
        next_year: ny,
        next_month: nm,
        invoice: format!("{}{:06}", y, spec.seed % 1_000_000),
    };
    let mut gen = RowGen::new(spec.seed, days_in(y, m, ny, nm), spec.cardinality);
    if let Some(p) = &spec.payer {
        gen.payer = p.clone();
        gen.accounts[0] = p.clone();
    }
    let cells: Vec<Cell> = CUR1_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| cell_of(c, i as u16))
        .collect();
    let cols = out_columns(spec.format, &cells);
    let width = if spec.format == SampleFormat::Focus {
        FOCUS_COLUMNS.len()
    } else {
        CUR1_COLUMNS.len()
    };
    let mut row: Vec<String> = vec![String::new(); width];
    let files = spec.files.max(1);
    let per_file = spec.rows.div_ceil(files as u64).max(1);
    let mut expected = Expected::default();
    let mut data_keys = Vec::new();
    let mut bytes = 0u64;
    let mut written = 0u64;
    let has_net =
        CUR1_COLUMNS.contains(&"lineItem/NetUnblendedCost") && spec.format != SampleFormat::Focus;
    for f in 0..files {
        let key = if spec.bare {
            format!("{}-{:05}.{}", lay.report, f + 1, lay.ext)
        } else {
            format!("{}{}-{:05}.{}", lay.data_dir, lay.report, f + 1, lay.ext)
        };
        let path = out.join(&key);
        std::fs::create_dir_all(path.parent().expect("has parent")).map_err(io_err(&path))?;
        let mut sink: Box<dyn RowSink> = if lay.ext.ends_with("parquet") {
            Box::new(ParquetSink::create(&path, &cols)?)
        } else {
            Box::new(CsvSink::create(&path, &cols, spec.gzip_level)?)
        };
        let n = per_file.min(spec.rows - written);
        for _ in 0..n {
            let g = gen.next_row();
            if spec.format == SampleFormat::Focus {
                focus_row(&g, &gen, &ctx, &mut row);
            } else {
                for (i, c) in cells.iter().enumerate() {
                    row[i].clear();
                    render(*c, &g, &gen, &ctx, &mut row[i]);
                }
            }
            bytes += row.iter().map(|s| s.len() as u64 + 1).sum::<u64>();
            sink.write(&row)?;
            let billed = if has_net {
                g.net_unblended
            } else {
                g.unblended
            };
            expected.rows += 1;
            let label = if spec.format == SampleFormat::Focus {
                charge_category(g.line_item_type.as_bytes())
                    .unwrap_or("Usage")
                    .to_owned()
            } else {
                g.line_item_type.to_owned()
            };
            *expected.rows_per_type.entry(label).or_default() += 1;
            expected.billed += units_money(billed);
            expected.effective += units_money(g.amortized());
            expected.list += units_money(g.public_on_demand);
            expected.unblended += units_money(g.unblended);
            expected.usage += units_money(g.usage_amount);
            *expected
                .billed_per_account
                .entry(gen.accounts[g.account].clone())
                .or_default() += units_money(billed);
        }
        written += n;
        sink.finish()?;
        data_keys.push(key);
    }
    let mut manifest_keys = Vec::new();
    if !spec.bare {
        let body = manifest_json(spec, &lay, &gen.payer, &data_keys, y, m, ny, nm);
        for mk in &lay.manifests {
            let p = out.join(mk);
            std::fs::create_dir_all(p.parent().expect("has parent")).map_err(io_err(&p))?;
            std::fs::write(&p, &body).map_err(io_err(&p))?;
            manifest_keys.push(mk.clone());
        }
        if spec.format == SampleFormat::Cur1Parquet && spec.versioning == Versioning::Overwrite {
            // The Athena layout's status table sits beside the data; curlew never reads it as data.
            let p = out.join(format!(
                "cur/{}/cost_and_usage_data_status/cost_and_usage_data_status.parquet",
                lay.report
            ));
            std::fs::create_dir_all(p.parent().expect("has parent")).map_err(io_err(&p))?;
            sink::write_status(&p, "READY")?;
        }
    }
    Ok(SampleOutput {
        root: out.to_path_buf(),
        report: lay.report,
        manifest_keys,
        data_keys,
        bytes_uncompressed: bytes,
        expected,
    })
}

#[allow(clippy::too_many_arguments)]
fn manifest_json(
    spec: &SampleSpec,
    lay: &Layout,
    payer: &str,
    keys: &[String],
    y: i32,
    m: u32,
    ny: i32,
    nm: u32,
) -> Vec<u8> {
    let v = match spec.format {
        SampleFormat::Cur1Csv | SampleFormat::Cur1Parquet => {
            let parquet = spec.format == SampleFormat::Cur1Parquet;
            let columns: Vec<serde_json::Value> = CUR1_COLUMNS
                .iter()
                .map(|c| {
                    let (cat, name) = c.split_once('/').unwrap_or(("", c));
                    if parquet {
                        serde_json::json!({"category": cat, "name": athena_name(c), "type": "STRING"})
                    } else {
                        serde_json::json!({"category": cat, "name": name, "type": "String"})
                    }
                })
                .collect();
            serde_json::json!({
                "assemblyId": lay.assembly,
                "account": payer,
                "columns": columns,
                "charset": "UTF-8",
                "compression": if parquet { "Parquet" } else { "GZIP" },
                "contentType": if parquet { "Parquet" } else { "text/csv" },
                "reportId": format!("{:064x}", spec.seed),
                "reportName": lay.report,
                "billingPeriod": {"start": format!("{y:04}{m:02}01T000000.000Z"), "end": format!("{ny:04}{nm:02}01T000000.000Z")},
                "bucket": BUCKET,
                "reportKeys": keys,
                "additionalArtifactKeys": [],
            })
        }
        _ => serde_json::json!({
            "version": "1.0",
            "exportArn": format!("arn:aws:bcm-data-exports:us-east-1:{payer}:export/{}-{}", lay.report, lay.assembly),
            "exportName": lay.report,
            "executionId": lay.assembly,
            "billingPeriod": {"start": format!("{y:04}-{m:02}-01T00:00:00.000Z"), "end": format!("{ny:04}-{nm:02}-01T00:00:00.000Z")},
            "bucket": BUCKET,
            "dataFiles": keys.iter().map(|k| format!("s3://{BUCKET}/{k}")).collect::<Vec<_>>(),
        }),
    };
    serde_json::to_vec_pretty(&v).expect("manifest serialises")
}
