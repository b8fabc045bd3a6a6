//! Bad input: every case fails (or passes) with a message that names the
//! file, the line and column, and what to do; nothing is committed on failure.

mod common;

use common::{failure, ingest_dir, summaries};
use curlew::money::dec;
use std::io::Write;
use std::path::Path;

const HEADER: &str = "lineItem/LineItemType,identity/LineItemId,bill/PayerAccountId,lineItem/UsageAccountId,lineItem/UsageStartDate,lineItem/ProductCode,lineItem/LineItemDescription,lineItem/UnblendedCost";

fn row(cost: &str) -> String {
    format!("Usage,id1,111111111111,222222222222,2024-01-05T00:00:00Z,AmazonEC2,desc,{cost}")
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Ingest one file named `name` with `body`; returns (report, output dir).
fn ingest_one(name: &str, body: &[u8]) -> (curlew::ingest::IngestReport, tempfile::TempDir) {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join(name), body).unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = ingest_dir(src.path(), out.path(), |_| {});
    (r, out)
}

fn nothing_committed(out: &Path) {
    // CURRENT lives under billing_period=P/payer=A/report=N/: look for any.
    let found: Vec<_> = if out.exists() {
        curlew_testkit::upload::walk(out)
            .into_iter()
            .filter(|p| p.ends_with("CURRENT"))
            .collect()
    } else {
        Vec::new()
    };
    assert!(found.is_empty(), "something was committed: {found:?}");
}

fn csv(rows: &[String]) -> String {
    let mut s = String::from(HEADER);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

#[test]
fn truncated_gzip() {
    let full = gz(csv(&(0..2000)
        .map(|i| row(&format!("{i}.5")))
        .collect::<Vec<_>>())
    .as_bytes());
    let (r, out) = ingest_one("cur-00001.csv.gz", &full[..full.len() / 2]);
    let msg = failure(&r);
    assert!(
        msg.contains("cur-00001.csv.gz") && msg.contains("truncated or damaged"),
        "{msg}"
    );
    nothing_committed(out.path());
}

#[test]
fn corrupt_zip() {
    let mut body = b"PK\x03\x04".to_vec();
    body.extend_from_slice(&[0x14, 0, 0, 0, 8, 0]);
    body.extend_from_slice(&[0xAB; 64]);
    let (r, out) = ingest_one("cur-00001.csv.zip", &body);
    let msg = failure(&r);
    assert!(
        msg.contains("cur-00001.csv.zip") && (msg.contains("zip") || msg.contains("damaged")),
        "{msg}"
    );
    nothing_committed(out.path());
}

#[test]
fn zip_csv_is_read() {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file("cur-00001.csv", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(csv(&[row("1.25"), row("2.5")]).as_bytes())
            .unwrap();
        z.finish().unwrap();
    }
    let (r, _out) = ingest_one("cur-00001.csv.zip", &buf.into_inner());
    assert_eq!(summaries(&r)[0].totals.billed_cost, dec("3.75"));
}

#[test]
fn wrong_field_count() {
    let (r, out) = ingest_one(
        "cur.csv",
        csv(&[row("1"), "Usage,id2,1,2".into()]).as_bytes(),
    );
    let msg = failure(&r);
    assert!(
        msg.contains("cur.csv, line 3") && msg.contains("has 4 fields but the header has 8"),
        "{msg}"
    );
    nothing_committed(out.path());
}

#[test]
fn non_numeric_cost() {
    let (r, out) = ingest_one("cur.csv", csv(&[row("1"), row("1234x")]).as_bytes());
    let msg = failure(&r);
    assert!(
        msg.contains("cur.csv, line 3, column lineItem/UnblendedCost")
            && msg.contains("\"1234x\" is not a decimal"),
        "{msg}"
    );
    assert!(msg.contains("What to do"), "{msg}");
    nothing_committed(out.path());
}

#[test]
fn missing_required_column() {
    let body = "lineItem/LineItemType,lineItem/UsageAccountId,lineItem/UsageStartDate\nUsage,2,2024-01-01T00:00:00Z\n";
    let (r, out) = ingest_one("cur.csv", body.as_bytes());
    let msg = failure(&r);
    assert!(
        msg.contains("cur.csv, line 1")
            && msg.contains("required column lineItem/UnblendedCost is missing"),
        "{msg}"
    );
    nothing_committed(out.path());
}

#[test]
fn empty_file() {
    let (r, out) = ingest_one("cur.csv", b"");
    let msg = failure(&r);
    assert!(msg.contains("cur.csv") && msg.contains("empty"), "{msg}");
    nothing_committed(out.path());
}

#[test]
fn header_only_file_ingests_nothing_without_error() {
    let (r, out) = ingest_one("cur.csv", format!("{HEADER}\n").as_bytes());
    assert!(!r.failed(), "{r:?}");
    assert!(summaries(&r).is_empty());
    nothing_committed(out.path());
}

#[test]
fn utf8_bom_crlf_and_quoted_fields() {
    let body = format!(
        "\u{feff}{HEADER}\r\n{}\r\nUsage,id2,111111111111,222222222222,2024-01-05T00:00:00Z,AmazonEC2,\"a, quoted\r\ndescription, with \"\"quotes\"\"\",2.25\r\n",
        row("1.5")
    );
    let (r, _out) = ingest_one("cur.csv", body.as_bytes());
    let s = &summaries(&r)[0];
    assert_eq!(s.rows_read, 2);
    assert_eq!(s.totals.billed_cost, dec("3.75"));
}

#[test]
fn line_numbers_count_embedded_newlines() {
    let body = format!(
        "{HEADER}\nUsage,id2,1,2,2024-01-05T00:00:00Z,AmazonEC2,\"two\nlines\",1\n{}\n",
        row("oops")
    );
    let (r, _out) = ingest_one("cur.csv", body.as_bytes());
    let msg = failure(&r);
    assert!(
        msg.contains("line 4, column lineItem/UnblendedCost"),
        "{msg}"
    );
}

#[test]
fn bad_timestamp_names_its_column() {
    let body = format!("{HEADER}\nUsage,id,1,2,01/05/2024,AmazonEC2,d,1\n");
    let (r, _out) = ingest_one("cur.csv", body.as_bytes());
    let msg = failure(&r);
    assert!(
        msg.contains("line 2, column lineItem/UsageStartDate") && msg.contains("not a timestamp"),
        "{msg}"
    );
}

#[test]
fn not_a_billing_file() {
    let (r, _out) = ingest_one("notes.csv", b"name,age\nbob,3\n");
    let msg = failure(&r);
    assert!(
        msg.contains("notes.csv, line 1") && msg.contains("not a CUR, CUR 2.0 or FOCUS header"),
        "{msg}"
    );
}

#[test]
fn manifest_that_is_not_json() {
    let src = tempfile::tempdir().unwrap();
    let dir = src.path().join("cur/r/20240101-20240201");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("r-Manifest.json"), b"{\"reportKeys\": [").unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = ingest_dir(src.path(), out.path(), |_| {});
    assert!(r.failed());
    let msg = &r.errors[0];
    assert!(
        msg.contains("cur/r/20240101-20240201/r-Manifest.json")
            && msg.contains("not a JSON manifest"),
        "{msg}"
    );
    nothing_committed(out.path());
}

// --- Caps on CSV fields and records; input quoted escaped in messages. ---

use curlew::failure::Class;
use curlew::ingest::DeliveryStatus;
use curlew::read::{read_stream_with, CsvLimits, ReadError, ReadErrorKind, ReadOptions};
use curlew::rollup::RollupBuilder;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The failure of the one delivery, which must be permanent (recorded, not retried).
fn permanent_failure(r: &curlew::ingest::IngestReport) -> String {
    match &r.deliveries[..] {
        [d] => match &d.status {
            DeliveryStatus::Failed(rec) => {
                assert_eq!(rec.class, Class::Permanent, "{rec:?}");
                rec.error.clone()
            }
            other => panic!("expected a permanent failure, got {other:?}"),
        },
        other => panic!("expected one delivery, got {other:?}"),
    }
}

/// No control character at all, and short enough for one terminal line or log record.
fn printable(msg: &str) {
    assert!(
        !msg.chars().any(char::is_control),
        "control characters in {msg:?}"
    );
    assert!(msg.len() < 2_000, "{} bytes: {msg}", msg.len());
}

fn read_with(name: &str, body: Vec<u8>, limits: CsvLimits) -> ReadError {
    let mut b = RollupBuilder::new(None);
    read_stream_with(
        name,
        Box::new(std::io::Cursor::new(body)),
        &mut b,
        &ReadOptions::default(),
        &limits,
    )
    .expect_err("over the cap")
}

const SMALL: CsvLimits = CsvLimits {
    max_field_bytes: 100,
    max_record_bytes: 500,
    max_fields: 1000,
};

#[test]
fn field_over_the_cap_names_file_line_column_and_cap() {
    let big = "d".repeat(101);
    let body = csv(&[
        row("1"),
        format!("Usage,id2,1,2,2024-01-05T00:00:00Z,AmazonEC2,{big},1"),
    ]);
    let e = read_with("cur-00001.csv.gz", gz(body.as_bytes()), SMALL);
    assert_eq!(e.kind, ReadErrorKind::TooLarge);
    assert_eq!(
        e.to_string(),
        "cur-00001.csv.gz, line 3, column lineItem/LineItemDescription: the field is 101 bytes; \
         the cap for one CSV field is 100 bytes. What to do: this is not a CUR/FOCUS CSV, or it is \
         damaged (AWS writes rows of a few KB); check the file, re-download it, or remove it from \
         the delivery"
    );
    // Exactly at the cap is fine.
    let body = csv(&[format!(
        "Usage,id2,1,2,2024-01-05T00:00:00Z,AmazonEC2,{},1",
        "d".repeat(100)
    )]);
    let mut b = RollupBuilder::new(None);
    let r = read_stream_with(
        "cur.csv",
        Box::new(std::io::Cursor::new(body.into_bytes())),
        &mut b,
        &ReadOptions::default(),
        &SMALL,
    )
    .unwrap();
    assert_eq!(r.rows, 1);
}

#[test]
fn record_over_the_cap_names_file_line_and_cap() {
    // Every field under the field cap (100), the record over the record cap (500).
    let (p, q) = ("p".repeat(95), "q".repeat(47));
    // The quoted line break makes the record two lines long: the error names its first.
    let body = csv(&[
        row("1"),
        format!("Usage,{p},{p},{p},2024-01-05T00:00:00Z,{p},\"{q}\n{q}\",1"),
    ]);
    let e = read_with("cur.csv", body.clone().into_bytes(), SMALL);
    assert_eq!(e.kind, ReadErrorKind::TooLarge);
    let size = body.len() - HEADER.len() - row("1").len() - 3;
    assert_eq!(size, 510);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "cur.csv, line 3: the record is {size} bytes; the cap for one CSV record is 500 bytes. What to do: this is not a CUR/FOCUS CSV"
        )),
        "{msg}"
    );
}

/// A CSV produced on demand: `head`, then `fill` repeated up to `len` bytes,
/// then `tail`; counts what the reader pulled.
struct Generated {
    head: Vec<u8>,
    fill: Vec<u8>,
    len: u64,
    tail: Vec<u8>,
    pos: u64,
    pulled: Arc<AtomicU64>,
}

impl Generated {
    fn new(head: &str, fill: &[u8], len: u64, tail: &str) -> (Self, Arc<AtomicU64>) {
        let pulled = Arc::new(AtomicU64::new(0));
        let g = Generated {
            head: head.as_bytes().to_vec(),
            fill: fill.repeat((64 << 10) / fill.len()),
            len,
            tail: tail.as_bytes().to_vec(),
            pos: 0,
            pulled: pulled.clone(),
        };
        (g, pulled)
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let h = self.head.len() as u64;
        let (src, off): (&[u8], u64) = if self.pos < h {
            (&self.head, self.pos)
        } else if self.pos < h + self.len {
            let off = (self.pos - h) % self.fill.len() as u64;
            let left = h + self.len - self.pos;
            let n = (self.fill.len() as u64 - off).min(left) as usize;
            (&self.fill[..off as usize + n], off)
        } else {
            (&self.tail, self.pos - h - self.len)
        };
        let src = src.get(off as usize..).unwrap_or(&[]);
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        self.pos += n as u64;
        self.pulled.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

const MIB: u64 = 1 << 20;

/// Read a generated CSV through gzip (compressed as it is pulled) with the default caps.
fn read_generated_gzip(g: Generated) -> ReadError {
    let gz = flate2::read::GzEncoder::new(g, flate2::Compression::fast());
    let mut b = RollupBuilder::new(None);
    curlew::read::read_stream("big.csv.gz", Box::new(gz), &mut b, &ReadOptions::default())
        .expect_err("over the cap")
}

#[test]
fn a_300_mb_field_fails_after_reading_about_the_cap() {
    // Letters do not compress to nothing: the gzip stream is pulled about as fast as it inflates.
    let (g, pulled) = Generated::new(
        &format!(
            "{HEADER}\n{}\nUsage,id2,1,2,2024-01-05T00:00:00Z,AmazonEC2,",
            row("1")
        ),
        b"qwertyuiopasdfghjklzxcvbnmQWERTYUIOPASDFGHJKLZXCVBNM0123456789",
        300_000_000,
        ",1\n",
    );
    let e = read_generated_gzip(g);
    assert_eq!(e.kind, ReadErrorKind::TooLarge);
    assert_eq!(
        e.to_string(),
        "big.csv.gz, line 3: a field is larger than the cap: more than 2097152 bytes without a \
         comma or line break; the cap for one CSV field is 1 MiB (1048576 bytes). What to do: this \
         is not a CUR/FOCUS CSV, or it is damaged (AWS writes rows of a few KB); check the file, \
         re-download it, or remove it from the delivery"
    );
    // The reader never held more than it pulled: the cap plus its buffers, not 300 MB.
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(pulled < 5 * MIB, "pulled {pulled} bytes");
}

#[test]
fn a_record_without_line_breaks_fails_after_reading_about_the_cap() {
    // Fields of 1000 bytes, never a line break: the record cap (16 MiB) ends it.
    let mut field = vec![b'f'; 999];
    field.push(b',');
    let (g, pulled) = Generated::new(&format!("{HEADER}\n"), &field, 300_000_000, "\n");
    let mut b = RollupBuilder::new(None);
    let e = curlew::read::read_stream("flat.csv", Box::new(g), &mut b, &ReadOptions::default())
        .expect_err("over the cap");
    assert_eq!(e.kind, ReadErrorKind::TooLarge);
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "flat.csv, line 2: the record is larger than the cap: more than 16777216 bytes without \
             the record ending; the cap for one CSV record is 16 MiB (16777216 bytes). What to do: \
             this is not a CUR/FOCUS CSV"
        ),
        "{msg}"
    );
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(pulled < 16 * MIB + 3 * MIB, "pulled {pulled} bytes");
}

#[test]
fn a_record_of_commas_fails_before_its_field_list_grows() {
    let (g, pulled) = Generated::new(&format!("{HEADER}\n"), b",", 300_000_000, "\n");
    let e = read_generated_gzip(g);
    assert_eq!(e.kind, ReadErrorKind::TooLarge);
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "big.csv.gz, line 2: the record has more than 65536 fields (commas, quoted or not), \
             the cap for one CSV record. What to do: this is not a CUR/FOCUS CSV"
        ),
        "{msg}"
    );
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(pulled < 4 * MIB, "pulled {pulled} bytes");
}

#[test]
fn field_just_over_the_default_cap_fails_the_delivery_for_good() {
    let body = csv(&[
        row("1"),
        format!(
            "Usage,id2,1,2,2024-01-05T00:00:00Z,AmazonEC2,{},1",
            "d".repeat((1 << 20) + 1)
        ),
    ]);
    let (r, out) = ingest_one("cur-00001.csv.gz", &gz(body.as_bytes()));
    let msg = permanent_failure(&r);
    assert!(
        msg.contains(
            "cur-00001.csv.gz, line 3, column lineItem/LineItemDescription: the field is 1048577 \
             bytes; the cap for one CSV field is 1 MiB (1048576 bytes). What to do: this is not a \
             CUR/FOCUS CSV"
        ),
        "{msg}"
    );
    printable(&msg);
    nothing_committed(out.path());
}

/// Deterministic bytes that are not text.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| rng.u8(..)).collect()
}

#[test]
fn random_bytes_named_csv_give_a_printable_error_naming_the_file() {
    for name in ["x.csv.gz", "x.csv"] {
        let mut body = random_bytes(64 << 10, 7);
        body[0] = 0x80; // not a gzip magic: read as (binary) CSV text
        let (r, out) = ingest_one(name, &body);
        let msg = permanent_failure(&r);
        assert!(
            msg.starts_with(&format!(
                "{name}, line 1: the header is not a CUR, CUR 2.0 or FOCUS header (first columns: \"\\x80"
            )),
            "{msg}"
        );
        printable(&msg);
        nothing_committed(out.path());
    }
    // Random bytes behind a gzip magic: damaged compression, said plainly.
    let mut body = random_bytes(64 << 10, 8);
    body[..2].copy_from_slice(&[0x1f, 0x8b]);
    let (r, _out) = ingest_one("x.csv.gz", &body);
    let msg = permanent_failure(&r);
    assert!(
        msg.starts_with("x.csv.gz") && msg.contains("truncated or damaged"),
        "{msg}"
    );
    printable(&msg);
}

#[test]
fn values_with_control_characters_are_quoted_escaped() {
    let (r, _out) = ingest_one("cur.csv", csv(&[row("12\x1b[2J\x07")]).as_bytes());
    let msg = permanent_failure(&r);
    assert!(
        msg.contains(r#"cur.csv, line 2, column lineItem/UnblendedCost: "12\u{1b}[2J\u{7}" is not a decimal number"#),
        "{msg}"
    );
    printable(&msg);

    let body = format!("{HEADER}\nUsage,id,1,2,\"2024\t01\r\n05\",AmazonEC2,d,1\n");
    let (r, _out) = ingest_one("cur.csv", body.as_bytes());
    let msg = permanent_failure(&r);
    assert!(
        msg.contains(
            r#"line 2, column lineItem/UsageStartDate: "2024\t01\r\n05" is not a timestamp"#
        ),
        "{msg}"
    );
    printable(&msg);

    // Long values are cut, with their length.
    let (r, _out) = ingest_one(
        "cur.csv",
        csv(&[row(&format!("{}x", "9".repeat(10_000)))]).as_bytes(),
    );
    let msg = permanent_failure(&r);
    assert!(
        msg.contains(&format!(
            "\"{}\"… (10001 bytes) is not a decimal number",
            "9".repeat(80)
        )),
        "{msg}"
    );
    printable(&msg);

    // Names from the input too: the header's last column.
    let body = format!("{HEADER},tag\x1b[31m\n{},x\nUsage,1\n", row("1"));
    let (r, _out) = ingest_one("cur.csv", body.as_bytes());
    let msg = permanent_failure(&r);
    assert!(
        msg.contains(
            r"line 3: the row has 2 fields but the header has 9 (last header column: tag\u{1b}[31m)"
        ),
        "{msg}"
    );
    printable(&msg);
}

#[test]
fn manifest_parse_errors_quote_the_input_escaped_and_cut() {
    let src = tempfile::tempdir().unwrap();
    let dir = src.path().join("cur/r/20240101-20240201");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = format!("\\u001b[2J{}", "k".repeat(100_000));
    std::fs::write(
        dir.join("r-Manifest.json"),
        format!("{{\"reportKeys\": \"{junk}\"}}"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = ingest_dir(src.path(), out.path(), |_| {});
    let msg = &r.errors[0];
    assert!(
        msg.contains("cur/r/20240101-20240201/r-Manifest.json: not a JSON manifest (invalid type: string \"\\u{1b}[2Jkkk"),
        "{msg}"
    );
    printable(msg);
    nothing_committed(out.path());
}
