//! Every shell and SQL example of README.md runs here, in README order, so a
//! README example that stops working fails the suite.
//!
//! The test parses README.md at run time and takes every fenced block tagged
//! `sh`, `bash`, `shell` or `sql`. All blocks run in one temporary directory,
//! in README order (a block sees the files of the blocks before it), which a
//! setup step prepares with what the examples stand on:
//!
//! - `bin/curlew`: a symlink to the built binary, first on PATH, and every
//!   `cargo run [flags] -p curlew-cli --` of the README rewritten to `curlew`;
//! - `./billing/`: a copy of a report's prefix, as `aws s3 sync` writes it (a
//!   `curlew sample` month of payer 111111111111);
//! - a moto_server on 127.0.0.1 standing in for S3 (`AWS_ENDPOINT_URL`), with
//!   the README's buckets: `customer-billing` holding the same sample under
//!   `cur/`, and `our-curlew-data` holding, under `rollups/`, one period of
//!   tenant `oldco` in the old layout (for `curlew migrate`); an AWS config
//!   with a `default` and a `billing-reader` profile (test credentials);
//! - `bin/duckdb`, only when no DuckDB CLI is installed: a stand-in for
//!   `duckdb [-init FILE] [-c SQL]` on the same engine (the Python module).
//!
//! Shell blocks run with `bash -euo pipefail`; SQL blocks run in a DuckDB
//! session (`python3` with the duckdb module) that first runs the files the
//! shell blocks before opened with `duckdb -init FILE` (the README's
//! `.read acme.sql`). Every block must exit 0, and the claims below check
//! what the README says about their output.
//!
//! A block that cannot run here carries a marker on the line right before it:
//! `<!-- readme-test: skip (reason) -->` skips the block, and
//! `<!-- readme-test: skip-line PREFIX (reason) -->` the lines that start with
//! PREFIX; the reason is required. The test prints every block it ran and
//! skipped, and why.

mod common;
use curlew_testkit::moto;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str = "<!-- readme-test:";
/// The payer of the sample the examples ingest (one of the README's `--accounts`).
const PAYER: &str = "111111111111";
/// No block may take longer than this.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Lang {
    Shell,
    Sql,
}

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence in README.md.
    line: usize,
    lang: Lang,
    code: String,
    /// `skip (reason)` before the block.
    skip: Option<String>,
    /// `skip-line PREFIX (reason)` before the block.
    skip_lines: Vec<(String, String)>,
}

enum Marker {
    Skip(String),
    SkipLine(String, String),
}

fn parse_marker(line: usize, text: &str) -> Marker {
    let body = text
        .trim()
        .strip_prefix(MARKER)
        .and_then(|t| t.strip_suffix("-->"))
        .unwrap_or_else(|| {
            panic!("README.md:{line}: a marker is one line: `{MARKER} skip (reason) -->`")
        })
        .trim();
    // The reason is the last parenthesised part, and it is required.
    let reason = |rest: &str| -> (String, String) {
        let open = rest.find('(');
        let ok = open.is_some() && rest.ends_with(')');
        assert!(
            ok,
            "README.md:{line}: the marker needs a reason in parentheses: {text}"
        );
        let open = open.unwrap();
        let why = rest[open + 1..rest.len() - 1].trim().to_owned();
        assert!(!why.is_empty(), "README.md:{line}: empty reason: {text}");
        (rest[..open].trim().to_owned(), why)
    };
    if let Some(rest) = body.strip_prefix("skip-line ") {
        let (prefix, why) = reason(rest);
        assert!(
            !prefix.is_empty(),
            "README.md:{line}: skip-line needs the line's start: {text}"
        );
        Marker::SkipLine(prefix, why)
    } else if let Some(rest) = body.strip_prefix("skip ") {
        let (rest, why) = reason(rest);
        assert!(rest.is_empty(), "README.md:{line}: unknown marker: {text}");
        Marker::Skip(why)
    } else {
        panic!("README.md:{line}: unknown marker (use `skip (reason)` or `skip-line PREFIX (reason)`): {text}")
    }
}

/// The sh/bash/shell and sql blocks of the README, in order, with their markers.
fn parse_readme(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut pending: Option<(usize, Marker)> = None;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, l)) = lines.next() {
        if l.contains(MARKER) {
            assert!(
                pending.is_none(),
                "README.md:{n}: two markers before one block"
            );
            pending = Some((n, parse_marker(n, l)));
            continue;
        }
        let Some(info) = l.trim_start().strip_prefix("```") else {
            if let Some((m, _)) = &pending {
                assert!(
                    l.trim().is_empty(),
                    "README.md:{m}: a marker must come right before the block it is for"
                );
            }
            continue;
        };
        let mut code = String::new();
        loop {
            let (_, body) = lines
                .next()
                .unwrap_or_else(|| panic!("README.md:{n}: unclosed code block"));
            if body.trim_start().starts_with("```") {
                break;
            }
            code.push_str(body);
            code.push('\n');
        }
        let lang = match info.split_whitespace().next().unwrap_or("") {
            "sh" | "bash" | "shell" => Some(Lang::Shell),
            "sql" => Some(Lang::Sql),
            _ => None,
        };
        let marker = pending.take();
        let Some(lang) = lang else {
            assert!(
                marker.is_none(),
                "README.md:{n}: a marker before a block that is not run (```{info})"
            );
            continue;
        };
        let mut block = Block {
            line: n,
            lang,
            code,
            skip: None,
            skip_lines: Vec::new(),
        };
        match marker.map(|(_, m)| m) {
            Some(Marker::Skip(why)) => block.skip = Some(why),
            Some(Marker::SkipLine(prefix, why)) => block.skip_lines.push((prefix, why)),
            None => {}
        }
        blocks.push(block);
    }
    assert!(pending.is_none(), "README.md ends with a marker");
    blocks
}

/// `cargo run [flags] -p curlew-cli -- ARGS` becomes `curlew ARGS`.
fn rewrite_cargo_run(line: &str) -> String {
    let Some(start) = line.find("cargo run ") else {
        return line.to_owned();
    };
    let tail = &line[start..];
    let sep = " -p curlew-cli --";
    let end = tail
        .find(sep)
        .unwrap_or_else(|| panic!("`cargo run` of something else than curlew-cli: {line}"));
    format!("{}curlew{}", &line[..start], &tail[end + sep.len()..])
}

/// What a ran block printed.
struct Output {
    stdout: String,
    stderr: String,
}

/// The temporary directory the blocks run in, and the environment they run with.
struct Ctx {
    dir: PathBuf,
    bin: PathBuf,
    aws_config: PathBuf,
    aws_credentials: PathBuf,
    endpoint: String,
}

impl Ctx {
    /// A command in the examples' directory, with their environment: curlew
    /// on PATH, S3 at moto, no AWS or curlew settings of the caller.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("CURLEW_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin.clone()];
        paths.extend(std::env::split_paths(&path));
        c.current_dir(&self.dir)
            .env("PATH", std::env::join_paths(paths).unwrap())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_CONFIG_FILE", &self.aws_config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.aws_credentials)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        c
    }

    /// Run to the end (at most BLOCK_TIMEOUT); panics unless it exits 0.
    fn run(&self, mut cmd: Command, what: &str) -> Output {
        let logs = tempfile::tempdir().unwrap();
        let (out, err) = (logs.path().join("stdout"), logs.path().join("stderr"));
        cmd.stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > BLOCK_TIMEOUT {
                child.kill().ok();
                child.wait().ok();
                panic!("{what}: still running after {BLOCK_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let o = Output {
            stdout: std::fs::read_to_string(&out).unwrap(),
            stderr: std::fs::read_to_string(&err).unwrap(),
        };
        assert!(
            status.success(),
            "{what} failed ({status})\n--- stdout:\n{}\n--- stderr:\n{}",
            o.stdout,
            o.stderr
        );
        // The README promises keys never reach a log: the moto credentials of
        // these runs must not appear in anything a block printed.
        for secret in ["access_key_id", "secret_access_key", "AKIA", "ASIA"] {
            assert!(
                !o.stderr.contains(secret) && !o.stdout.contains(secret),
                "{what} printed {secret:?}:\n{}",
                o.stderr
            );
        }
        o
    }

    fn curlew(&self, args: &[&str]) -> String {
        let mut c = self.command("curlew");
        c.args(args);
        self.run(c, &format!("curlew {}", args.join(" "))).stdout
    }
}

fn python_has_duckdb() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// `duckdb [-init FILE] [-c SQL]... [DATABASE]` on the Python module, for
/// machines with the module (which the test command installs) but no CLI.
const DUCKDB_STANDIN: &str = r#"#!/usr/bin/env python3
# readme-test stand-in for the DuckDB CLI: the same engine through the Python module.
import sys, duckdb
args, init, cmds, db = sys.argv[1:], None, [], ":memory:"
while args:
    a = args.pop(0)
    if a == "-init":
        init = args.pop(0)
    elif a == "-c":
        cmds.append(args.pop(0))
    elif a.startswith("-"):
        sys.exit(f"duckdb stand-in: option {a} is not supported; install the DuckDB CLI")
    else:
        db = a
con = duckdb.connect(db)
if init:
    con.execute(open(init).read())
for sql in cmds or [sys.stdin.read()]:
    if sql.strip():
        con.execute(sql)
        if con.description:
            for row in con.fetchall():
                print(*row, sep="\t")
"#;

/// A SQL block in a DuckDB session: the init files, then the block; prints
/// `{"columns": [...], "rows": [[...]]}` of its last statement (decimals as strings).
const DUCKDB_RUNNER: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
for f in sys.argv[2:]:
    con.execute(open(f).read())
con.execute(open(sys.argv[1]).read())
cols = [d[0] for d in con.description]
print(json.dumps({"columns": cols, "rows": con.fetchall()}, default=str))
"#;

/// One period of tenant `oldco` in the layout before sources existed
/// (`billing_period=P/CURRENT` naming `billing_period=P/revision=R/`), in
/// `store`, for uploading under the bucket prefix `key_prefix` (old CURRENTs
/// name bucket keys).
fn old_layout_store(ctx: &Ctx, store: &Path, key_prefix: &str) {
    let src = tempfile::tempdir().unwrap();
    let src_s = src.path().to_str().unwrap();
    let store_s = store.to_str().unwrap();
    ctx.curlew(&[
        "sample",
        "--rows",
        "200",
        "--payer",
        "333333333333",
        "--report",
        "old-cur",
        "--out",
        src_s,
    ]);
    ctx.curlew(&["ingest", src_s, "--tenant", "oldco", "--store", store_s]);
    for cur in common::walk(store)
        .into_iter()
        .filter(|p| p.ends_with("CURRENT"))
    {
        let v: Value = serde_json::from_slice(&std::fs::read(&cur).unwrap()).unwrap();
        let rev = v["revision"].as_str().unwrap().to_owned();
        let source_dir = cur.parent().unwrap();
        let payer_dir = source_dir.parent().unwrap();
        let period_dir = payer_dir.parent().unwrap();
        std::fs::rename(
            source_dir.join(format!("revision={rev}")),
            period_dir.join(format!("revision={rev}")),
        )
        .unwrap();
        let rel = period_dir
            .strip_prefix(store)
            .unwrap()
            .display()
            .to_string();
        let old = serde_json::json!({
            "revision": rev,
            "time": v["time"],
            "id": v["id"],
            "rollup_key": format!("{key_prefix}{rel}/revision={rev}/rollup.parquet"),
            "summary_key": format!("{key_prefix}{rel}/revision={rev}/summary.json"),
        });
        std::fs::write(period_dir.join("CURRENT"), old.to_string()).unwrap();
        std::fs::remove_dir_all(payer_dir).unwrap();
    }
    std::fs::remove_dir_all(store.join("tenant=oldco/_current")).unwrap();
}

/// The temporary directory and the emulated buckets the examples stand on.
fn setup(dir: &Path) -> Ctx {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_curlew"), bin.join("curlew")).unwrap();
    if !on_path("duckdb") {
        let standin = bin.join("duckdb");
        std::fs::write(&standin, DUCKDB_STANDIN).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let aws = dir.join("aws");
    std::fs::create_dir(&aws).unwrap();
    let (aws_config, aws_credentials) = (aws.join("config"), aws.join("credentials"));
    std::fs::write(
        &aws_config,
        "[default]\nregion = us-east-1\n[profile billing-reader]\nregion = us-east-1\n",
    )
    .unwrap();
    let keys = "aws_access_key_id = testing\naws_secret_access_key = testing\n";
    std::fs::write(
        &aws_credentials,
        format!("[default]\n{keys}[billing-reader]\n{keys}"),
    )
    .unwrap();
    let m = moto::moto();
    let ctx = Ctx {
        dir: dir.join("work"),
        bin,
        aws_config,
        aws_credentials,
        endpoint: m.endpoint.clone(),
    };
    std::fs::create_dir(&ctx.dir).unwrap();

    // A report's prefix: the sample writes bucket keys `cur/curlew-cur/...`;
    // `aws s3 sync s3://bucket/cur/ ./billing/` copies what is below `cur/`.
    let bucket = tempfile::tempdir().unwrap();
    ctx.curlew(&[
        "sample",
        "--rows",
        "2000",
        "--payer",
        PAYER,
        "--out",
        bucket.path().to_str().unwrap(),
    ]);
    copy_tree(&bucket.path().join("cur"), &ctx.dir.join("billing"));
    let old = tempfile::tempdir().unwrap();
    old_layout_store(&ctx, old.path(), "rollups/");

    let client = moto::s3_client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for b in ["customer-billing", "our-curlew-data"] {
            client.create_bucket().bucket(b).send().await.unwrap();
        }
        common::upload_dir(&client, "customer-billing", "", bucket.path()).await;
        common::upload_dir(&client, "our-curlew-data", "rollups/", old.path()).await;
    });
    ctx
}

fn copy_tree(from: &Path, to: &Path) {
    for f in common::walk(from) {
        let dest = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, dest).unwrap();
    }
}

/// The rows of a SQL block's result, by column name.
fn sql_rows(out: &Output) -> Vec<serde_json::Map<String, Value>> {
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let cols: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            cols.iter()
                .zip(r.as_array().unwrap())
                .map(|(c, v)| (c.to_string(), v.clone()))
                .collect()
        })
        .collect()
}

/// An exact decimal string in units of 10^-18 (the rollup's scale).
fn scaled(s: &str) -> i128 {
    let s = s.trim();
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = frac.trim_end_matches('0');
    assert!(frac.len() <= 18, "more than 18 decimals: {s}");
    let v: i128 = format!("{int}{frac:0<18}").parse().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

fn exact_total(report: &str) -> &str {
    report
        .lines()
        .find_map(|l| l.strip_prefix("exact total: "))
        .unwrap_or_else(|| panic!("no exact total in\n{report}"))
}

/// What the README says a block prints, checked on what it printed. `block`
/// is a piece of the block's code; every claim must find exactly one block that ran.
struct Claim {
    block: &'static str,
    check: fn(&Ctx, &Output),
}

const CLAIMS: &[Claim] = &[
    Claim {
        // "generates a month of legacy CUR (2 gzip CSV files plus manifests), ingests
        // it and prints cost by service and by account; its total equals, to the last
        // digit, what the generator wrote".
        block: "-p curlew-cli -- demo",
        check: |_, o| {
            let out = &o.stdout;
            assert!(out.contains("a month of legacy CUR ("), "{out}");
            assert!(out.contains(" rows, 2 files)"), "{out}");
            assert!(out.contains("BilledCost by ServiceName"), "{out}");
            assert!(out.contains("BilledCost by SubAccountId"), "{out}");
            let generator = out
                .lines()
                .find_map(|l| l.strip_prefix("generator's own total BilledCost: "))
                .and_then(|t| t.split_whitespace().next())
                .unwrap_or_else(|| panic!("no generator total in\n{out}"));
            let tables: Vec<&str> = out
                .lines()
                .filter_map(|l| l.strip_prefix("exact total: "))
                .collect();
            assert_eq!(tables.len(), 2, "{out}");
            assert!(
                tables.iter().all(|t| *t == generator),
                "{tables:?} vs {generator}"
            );
        },
    },
    Claim {
        // The cost report page: one self-contained file with its daily chart.
        block: "--format html --out-file report.html",
        check: |ctx, o| {
            assert!(
                o.stdout.contains("report of acme to report.html"),
                "{}",
                o.stdout
            );
            let page = std::fs::read_to_string(ctx.dir.join("report.html")).unwrap();
            assert!(page.contains(r#"<svg id="daily-chart""#));
            assert!(page.contains("default-src 'none'"));
        },
    },
    Claim {
        // Tags as dimensions: the report splits spend by the sample's user:team tag.
        block: "--tag team",
        check: |_, o| {
            let out = &o.stdout;
            assert!(out.contains("tag:team"), "{out}");
            for team in ["payments", "search", "platform", "data", "(untagged)"] {
                assert!(out.contains(team), "{team} in {out}");
            }
        },
    },
    Claim {
        // --accounts: spend of other accounts is not attributed but counted as unattributed.
        block: "-- ingest ./billing",
        check: |ctx, o| {
            let out = &o.stdout;
            assert!(out.contains(&format!("(payer {PAYER}) 2024-01")), "{out}");
            assert!(out.contains("period 2024-01: committed"), "{out}");
            assert!(out.contains("unattributed: "), "{out}");
            assert!(
                out.contains("EffectiveCost by SubAccountId, ServiceName"),
                "{out}"
            );
            let json: Value = serde_json::from_str(&ctx.curlew(&[
                "report",
                "--out",
                "./curlew-out",
                "--tenant",
                "acme",
                "--by",
                "account",
                "--format",
                "json",
            ]))
            .unwrap();
            let accounts: BTreeSet<&str> = json
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["SubAccountId"].as_str().unwrap())
                .collect();
            assert_eq!(accounts, BTreeSet::from([PAYER]), "{json}");
        },
    },
    Claim {
        // The source and the store on S3, with the standard AWS settings.
        block: "curlew ingest s3://customer-billing/cur/",
        check: |_, o| {
            let out = &o.stdout;
            assert!(out.contains("period 2024-01: committed"), "{out}");
            assert!(
                out.contains("output: s3://our-curlew-data/rollups"),
                "{out}"
            );
            let billed = out
                .lines()
                .find_map(|l| l.trim().split_once("rows from 1 file(s); BilledCost "))
                .map(|(_, rest)| rest.split_whitespace().next().unwrap())
                .unwrap_or_else(|| panic!("no BilledCost in\n{out}"));
            let total = out
                .lines()
                .find(|l| l.starts_with("Total "))
                .unwrap_or_else(|| panic!("no report total in\n{out}"));
            assert!(
                total.contains(billed),
                "report {total:?} vs ingest {billed}"
            );
            assert!(out.contains("curlew gc: deleted 0 superseded"), "{out}");
            for ddl in [
                "CREATE EXTERNAL TABLE `curlew`.`acme_rollup`",
                "SymlinkTextInputFormat",
                "LOCATION 's3://our-curlew-data/rollups/tenant=acme/_current/';",
            ] {
                assert!(out.contains(ddl), "{ddl} not in\n{out}");
            }
        },
    },
    Claim {
        // The External ID (40 characters), the template file, and the read policy's
        // three S3 actions on the prefix.
        block: "curlew onboard new",
        check: |ctx, o| {
            let out = &o.stdout;
            let id = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("External ID"))
                .and_then(|t| t.split_whitespace().next())
                .unwrap_or_else(|| panic!("no External ID in\n{out}"));
            assert!(
                id.len() == 40 && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{id}"
            );
            let template = std::fs::read_to_string(ctx.dir.join("curlew-connect-acme.json"))
                .expect("onboard new writes curlew-connect-acme.json");
            let template: Value = serde_json::from_str(&template).unwrap();
            assert!(template["Resources"].is_object(), "{template}");
            assert!(
                template.to_string().contains(id),
                "the template has the External ID"
            );
            let policy: Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
            let actions: BTreeSet<&str> = policy["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["Action"].as_str().unwrap())
                .collect();
            assert_eq!(
                actions,
                BTreeSet::from(["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"])
            );
            assert!(
                policy
                    .to_string()
                    .contains("arn:aws:s3:::acme-billing/cur/*"),
                "{policy}"
            );
        },
    },
    Claim {
        // The two statements define the view; DuckDB runs them.
        block: "curlew sql duckdb --store ./curlew-out",
        check: |ctx, _| {
            let sql = std::fs::read_to_string(ctx.dir.join("acme.sql")).unwrap();
            assert!(
                sql.contains("CREATE OR REPLACE VIEW curlew_rollup"),
                "{sql}"
            );
        },
    },
    Claim {
        // The view reads exactly what CURRENT names: its sums are curlew report's.
        block: "FROM curlew_rollup GROUP BY ALL",
        check: |ctx, o| {
            let rows = sql_rows(o);
            assert!(!rows.is_empty(), "{}", o.stdout);
            for r in &rows {
                assert_eq!(r["payer"], PAYER, "{r:?}");
                assert_eq!(r["report"], "curlew-cur", "{r:?}");
            }
            for (column, measure) in [("billed", "billed"), ("amortized", "amortized")] {
                let got: i128 = rows
                    .iter()
                    .map(|r| scaled(r[column].as_str().unwrap()))
                    .sum();
                let report = ctx.curlew(&[
                    "report",
                    "--out",
                    "./curlew-out",
                    "--tenant",
                    "acme",
                    "--measure",
                    measure,
                ]);
                assert_eq!(got, scaled(exact_total(&report)), "{column}\n{report}");
            }
        },
    },
    Claim {
        // Every revision on disk, with the partition columns (account ids stay text).
        block: "FROM read_parquet('curlew-out/tenant=*",
        check: |ctx, o| {
            let rows = sql_rows(o);
            let current = common::walk(&ctx.dir.join("curlew-out"))
                .into_iter()
                .find(|p| p.ends_with("CURRENT"))
                .unwrap();
            let current: Value = serde_json::from_slice(&std::fs::read(current).unwrap()).unwrap();
            assert_eq!(rows.len(), 1, "{}", o.stdout);
            let r = &rows[0];
            assert_eq!(r["tenant"], "acme");
            assert_eq!(r["billing_period"], "2024-01");
            assert_eq!(
                r["payer"], PAYER,
                "the payer is an account id, not a number"
            );
            assert_eq!(r["report"], "curlew-cur");
            assert_eq!(r["revision"], current["revision"]);
        },
    },
    Claim {
        // "prints one line per period it would move", then moves it.
        block: "curlew migrate --store s3://our-curlew-data/rollups --dry-run",
        check: |ctx, o| {
            let out = &o.stdout;
            let to = "tenant=oldco billing_period=2024-01 to payer=333333333333/report=old-cur/";
            let would = out.find(&format!("would move {to}"));
            let moved = out.find(&format!("moved {to}"));
            assert!(
                out.contains("dry run; nothing was written or deleted"),
                "{out}"
            );
            assert!(would.is_some() && moved.is_some() && would < moved, "{out}");
            assert!(
                !out.contains("tenant=acme"),
                "acme is in the new layout\n{out}"
            );
            let json: Value = serde_json::from_str(&ctx.curlew(&[
                "report",
                "--tenant",
                "oldco",
                "--store",
                "s3://our-curlew-data/rollups",
                "--by",
                "period",
                "--format",
                "json",
            ]))
            .unwrap();
            assert_eq!(json[0]["x_LineItemCount"], 200, "{json}");
        },
    },
];

/// Paths of the repository a block names (`events/...`, `infra/...`, `scripts/...`)
/// and the `-p` packages its cargo commands build must exist, whether it runs or not.
fn check_references(root: &Path, packages: &BTreeSet<String>, b: &Block) {
    let words: Vec<&str> = b
        .code
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
        .collect();
    for w in &words {
        let w = w.strip_prefix("./").unwrap_or(w);
        if ["events/", "infra/", "scripts/"]
            .iter()
            .any(|d| w.starts_with(d))
        {
            assert!(
                root.join(w).exists(),
                "README.md:{}: {w} does not exist",
                b.line
            );
        }
    }
    for line in b
        .code
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo "))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for p in words.windows(2).filter(|w| w[0] == "-p").map(|w| w[1]) {
            assert!(
                packages.contains(p),
                "README.md:{}: -p {p} is not a package of the workspace",
                b.line
            );
        }
    }
}

/// The package names of the workspace (every Cargo.toml up to two levels down).
fn workspace_packages(root: &Path) -> BTreeSet<String> {
    let mut dirs = vec![root.to_path_buf()];
    for d in std::fs::read_dir(root).unwrap().flatten() {
        let p = d.path();
        if p.is_dir() && !p.ends_with("target") && !p.ends_with(".git") {
            dirs.push(p.clone());
            dirs.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        }
    }
    dirs.iter()
        .filter_map(|d| std::fs::read_to_string(d.join("Cargo.toml")).ok())
        .filter_map(|t| {
            let package = &t[t.find("[package]")?..];
            let line = package
                .lines()
                .find(|l| l.trim_start().starts_with("name"))?;
            Some(line.split('"').nth(1)?.to_owned())
        })
        .collect()
}

/// Written past the test harness's capture, so every run shows it.
fn say(line: &str) {
    writeln!(std::io::stderr(), "{line}").ok();
}

#[test]
fn every_shell_and_sql_example_of_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = parse_readme(&readme);
    assert!(blocks.len() >= 10, "found only {} blocks", blocks.len());
    let packages = workspace_packages(root);
    for b in &blocks {
        check_references(root, &packages, b);
    }

    let duckdb = python_has_duckdb();
    if !duckdb {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "python3 with duckdb is required in CI (the test command installs it)"
        );
        say("readme: python3 -c 'import duckdb' failed: the blocks that use DuckDB are skipped");
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctx = setup(tmp.path());

    let mut ran: Vec<(usize, String, Output)> = Vec::new();
    let mut duckdb_init: Vec<String> = Vec::new();
    // Blocks skipped because this machine lacks DuckDB (allowed outside CI only).
    let mut no_duckdb: Vec<usize> = Vec::new();
    let mut report = vec![format!("readme: {} blocks in README.md", blocks.len())];
    for (i, b) in blocks.iter().enumerate() {
        let tag = format!(
            "  block {:>2} README.md:{:<4} {:<5}",
            i + 1,
            b.line,
            if b.lang == Lang::Shell { "sh" } else { "sql" }
        );
        let first = b.code.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if b.lang == Lang::Sql && b.code.to_uppercase().contains("CREATE EXTERNAL TABLE") {
            // Athena DDL cannot run here: it must be skipped, and be what
            // `curlew sql athena` printed in a block before.
            assert!(
                b.skip.is_some(),
                "README.md:{}: Athena SQL needs a skip marker",
                b.line
            );
            let printed = ran.iter().any(|(_, _, o)| o.stdout.contains(b.code.trim()));
            assert!(
                printed,
                "README.md:{}: this Athena SQL is not what a `curlew sql athena` above prints",
                b.line
            );
        }
        if let Some(why) = &b.skip {
            report.push(format!("{tag} skipped ({why}): {first}"));
            continue;
        }
        let mut code = String::new();
        let mut skipped_lines = Vec::new();
        let mut used = vec![false; b.skip_lines.len()];
        for line in b.code.lines() {
            let skip = b
                .skip_lines
                .iter()
                .position(|(prefix, _)| line.trim_start().starts_with(prefix.as_str()));
            if let Some(k) = skip {
                used[k] = true;
                let command = line.split("  #").next().unwrap_or(line).trim();
                skipped_lines.push(format!("({}): {command}", b.skip_lines[k].1));
            } else if b.lang == Lang::Shell {
                code.push_str(&rewrite_cargo_run(line));
                code.push('\n');
            } else {
                code.push_str(line);
                code.push('\n');
            }
        }
        for (k, u) in used.iter().enumerate() {
            assert!(
                u,
                "README.md:{}: skip-line {} matches no line of the block",
                b.line, b.skip_lines[k].0
            );
        }
        let uses_duckdb = b.lang == Lang::Sql
            || code
                .lines()
                .any(|l| l.split_whitespace().next() == Some("duckdb"));
        if uses_duckdb && !duckdb {
            report.push(format!("{tag} skipped (no duckdb here): {first}"));
            no_duckdb.push(i);
            continue;
        }
        let what = format!("README.md:{} ```{:?} block\n{code}", b.line, b.lang);
        let out = match b.lang {
            Lang::Shell => {
                // Never the suite itself (it runs this test), nor another build.
                assert!(
                    !code
                        .split_whitespace()
                        .any(|w| w == "cargo" || w.ends_with("scripts/test")),
                    "README.md:{}: a block that runs would run cargo or the test suite (only `cargo run ... -p curlew-cli --` becomes curlew; mark the rest skip-line):\n{code}",
                    b.line
                );
                let script = ctx.dir.join(format!(".readme-block-{}.sh", i + 1));
                std::fs::write(&script, &code).unwrap();
                let mut c = ctx.command("bash");
                c.arg("-euo").arg("pipefail").arg(&script);
                let out = ctx.run(c, &what);
                std::fs::remove_file(&script).unwrap();
                let words: Vec<&str> = code.split_whitespace().collect();
                for w in words.windows(3) {
                    if w[0] == "duckdb" && w[1] == "-init" {
                        duckdb_init.push(w[2].to_owned());
                    }
                }
                out
            }
            Lang::Sql => {
                let file = ctx.dir.join(format!(".readme-block-{}.sql", i + 1));
                std::fs::write(&file, &code).unwrap();
                let mut c = ctx.command("python3");
                c.args(["-c", DUCKDB_RUNNER]).arg(&file).args(&duckdb_init);
                let out = ctx.run(c, &what);
                std::fs::remove_file(&file).unwrap();
                out
            }
        };
        report.push(format!("{tag} ran: {first}"));
        for l in skipped_lines {
            report.push(format!("{:33}skipped line {l}", ""));
        }
        ran.push((i, code, out));
    }
    say(&report.join("\n"));

    for claim in CLAIMS {
        let hits: Vec<&(usize, String, Output)> = ran
            .iter()
            .filter(|(i, _, _)| blocks[*i].code.contains(claim.block))
            .collect();
        if hits.is_empty()
            && no_duckdb
                .iter()
                .any(|i| blocks[*i].code.contains(claim.block))
        {
            say(&format!(
                "readme: not checked (no duckdb here): {:?}",
                claim.block
            ));
            continue;
        }
        assert_eq!(
            hits.len(),
            1,
            "the claim on the block with {:?} needs exactly one block that ran",
            claim.block
        );
        let (i, _, out) = hits[0];
        say(&format!(
            "readme: checked what README.md:{} prints ({:?})",
            blocks[*i].line, claim.block
        ));
        (claim.check)(&ctx, out);
    }
}

#[test]
fn markers_need_a_reason_and_a_block() {
    let ok = "<!-- readme-test: skip (needs AWS) -->\n```sh\naws s3 ls\n```\n";
    assert_eq!(parse_readme(ok)[0].skip.as_deref(), Some("needs AWS"));
    let line = "<!-- readme-test: skip-line ./scripts/test (the suite) -->\n```sh\nx\n./scripts/test\n```\n";
    assert_eq!(
        parse_readme(line)[0].skip_lines,
        vec![("./scripts/test".to_owned(), "the suite".to_owned())]
    );
    for bad in [
        "<!-- readme-test: skip -->\n```sh\nx\n```\n",
        "<!-- readme-test: skip () -->\n```sh\nx\n```\n",
        "<!-- readme-test: ignore (why) -->\n```sh\nx\n```\n",
        "<!-- readme-test: skip (why) -->\ntext\n```sh\nx\n```\n",
        "<!-- readme-test: skip (why) -->\n```\ntree\n```\n",
    ] {
        let r = std::panic::catch_unwind(|| parse_readme(bad));
        assert!(r.is_err(), "accepted: {bad}");
    }
    assert_eq!(
        rewrite_cargo_run("cargo run --release -p curlew-cli -- ingest ./billing \\"),
        "curlew ingest ./billing \\"
    );
    assert_eq!(
        rewrite_cargo_run("cargo run -q -p curlew-cli -- demo     # x"),
        "curlew demo     # x"
    );
}
