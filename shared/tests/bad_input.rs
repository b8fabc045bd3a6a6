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
