//! Parquet in S3 read by ranged GETs (no local copy): against moto_server the
//! same rollups as the local file, only the footer and the projected column
//! chunks fetched, a row group at a time, and every GET pinned to the planned
//! ETag (a rewrite before or during the read is "rewritten"). Failure classes
//! of ranged GETs through aws-smithy-mocks.

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_mocks::{mock, mock_client, MockResponse, RuleMode};
use curlew::discover::{discover, Source};
use curlew::failure::Class;
use curlew::ingest::IngestOptions;
use curlew::ledger::Ledger;
use curlew::pipeline::{plan_delivery, process_part, Decision, PartRead, Plan};
use curlew::read::{read_parquet_ranges, read_path, FileReport, RangedError, ReadOptions};
use curlew::rollup::{PeriodRollup, RollupBuilder};
use curlew::sample::{write_sample, SampleFormat, SampleSpec, Versioning};
use curlew::store::{FetchStats, S3Ranges, S3Store, Store, StoreError};
use curlew_testkit::moto::{new_bucket, s3_client};
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Rollups = BTreeMap<String, PeriodRollup>;

/// A bare sample data file of `rows` rows.
fn sample_file(dir: &Path, format: SampleFormat, rows: u64) -> PathBuf {
    let mut spec = SampleSpec::new(format, rows);
    spec.bare = true;
    let out = write_sample(&spec, dir).unwrap();
    dir.join(&out.data_keys[0])
}

fn read_local(path: &Path) -> (FileReport, Rollups) {
    let mut b = RollupBuilder::new(None);
    let r = read_path("f", path, &mut b, &ReadOptions::default()).unwrap();
    (r, b.finish())
}

/// `bytes` in a new moto bucket at `key`: the store and the object's ETag.
async fn upload(key: &str, bytes: Vec<u8>) -> (S3Store, String) {
    let client = s3_client();
    let bucket = new_bucket(&client, "ranged").await;
    let store = S3Store::new(client, bucket);
    let etag = store
        .put(key, bytes, curlew::store::Condition::None)
        .await
        .unwrap();
    (store, etag)
}

/// Read by ranges on a blocking thread: what it found and what it fetched.
async fn read_ranged(
    mut ranges: S3Ranges,
) -> (
    Result<(FileReport, Rollups), RangedError<StoreError>>,
    Arc<FetchStats>,
) {
    let stats = ranges.stats();
    let read = tokio::task::spawn_blocking(move || {
        let mut b = RollupBuilder::new(None);
        read_parquet_ranges("f", &mut ranges, &mut b, &ReadOptions::default())
            .map(|r| (r, b.finish()))
    })
    .await
    .unwrap();
    (read, stats)
}

/// Each row group's column chunks: (name, byte range).
fn column_chunks(bytes: &[u8]) -> Vec<Vec<(String, Range<u64>)>> {
    let r = SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes)).unwrap();
    r.metadata()
        .row_groups()
        .iter()
        .map(|g| {
            g.columns()
                .iter()
                .map(|c| {
                    let (start, len) = c.byte_range();
                    (c.column_path().string(), start..start + len)
                })
                .collect()
        })
        .collect()
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

/// (a) + (b): the same rollups as the local file; only the tail and the
/// projected column chunks fetched, each byte once; CUR 1's 148 columns
/// (23 read) cost well under half the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_equal_the_local_file_and_fetch_only_projected_columns() {
    for (format, most) in [
        (SampleFormat::Cur1Parquet, 0.5),
        (SampleFormat::Cur2Parquet, 0.8),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = sample_file(dir.path(), format, 5000);
        let bytes = std::fs::read(&path).unwrap();
        let size = bytes.len() as u64;
        let (store, etag) = upload("data/f.parquet", bytes.clone()).await;
        let ranges = store
            .ranges_if_match("data/f.parquet", &etag)
            .await
            .unwrap();
        assert_eq!(ranges.meta().size, size);
        assert_eq!(ranges.meta().etag, etag);
        let (read, stats) = read_ranged(ranges).await;
        let (report, rollups) = read.unwrap();
        let (local_report, local_rollups) = read_local(&path);
        assert_eq!(report, local_report, "{format:?}");
        assert_eq!(rollups, local_rollups, "{format:?}");
        assert!(report.rows == 5000, "{report:?}");

        let fetched = stats.ranges();
        let columns = column_chunks(&bytes);
        eprintln!(
            "{format:?}: {} columns, object {size} bytes, fetched {} bytes ({:.0}%) in {} GETs: {fetched:?}",
            columns[0].len(),
            stats.bytes(),
            100.0 * stats.bytes() as f64 / size as f64,
            stats.requests(),
        );
        assert_eq!(stats.requests() as usize, fetched.len());
        assert_eq!(
            stats.bytes(),
            fetched.iter().map(|r| r.end - r.start).sum::<u64>()
        );
        assert!(
            (stats.bytes() as f64) < most * size as f64,
            "{format:?}: fetched {} of {size}",
            stats.bytes()
        );
        for (i, a) in fetched.iter().enumerate() {
            for b in &fetched[i + 1..] {
                assert!(!overlaps(a, b), "fetched twice: {a:?} {b:?}");
            }
        }
        // The largest columns curlew does not use were never fetched.
        for unused in ["identity_line_item_id", "line_item_resource_id"] {
            let (_, chunk) = columns[0].iter().find(|(n, _)| n == unused).unwrap();
            assert!(
                fetched.iter().all(|r| !overlaps(r, chunk)),
                "{format:?}: {unused} {chunk:?} fetched"
            );
        }
    }
}

/// The sample rewritten with small row groups (the generator writes one).
fn with_row_groups(path: &Path, rows_per_group: usize) -> Vec<u8> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let reader = builder.build().unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    for b in reader {
        w.write(&b.unwrap()).unwrap();
    }
    w.close().unwrap();
    out
}

/// Memory stays at a row group: every GET after the tail lies inside one
/// row group, and the row groups are fetched in order, one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_groups_are_fetched_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_file(dir.path(), SampleFormat::Cur1Parquet, 6000);
    let bytes = with_row_groups(&path, 1000);
    let groups = column_chunks(&bytes);
    assert_eq!(groups.len(), 6);
    let local = dir.path().join("groups.parquet");
    std::fs::write(&local, &bytes).unwrap();
    let (store, etag) = upload("data/groups.parquet", bytes.clone()).await;
    let ranges = store
        .ranges_if_match("data/groups.parquet", &etag)
        .await
        .unwrap();
    let (read, stats) = read_ranged(ranges).await;
    assert_eq!(read.unwrap(), read_local(&local));
    let span = |g: &Vec<(String, Range<u64>)>| {
        g.iter().map(|c| c.1.start).min().unwrap()..g.iter().map(|c| c.1.end).max().unwrap()
    };
    let spans: Vec<Range<u64>> = groups.iter().map(span).collect();
    let fetched = stats.ranges();
    // The tail, then the rest of the metadata (six row groups of 148 columns
    // need more than the tail), then the row groups in order.
    let data_end = spans[5].end;
    assert!(fetched[0].end == bytes.len() as u64 && fetched[1].start >= data_end);
    let mut last = 0;
    for r in &fetched[2..] {
        let g = spans
            .iter()
            .position(|s| s.start <= r.start && r.end <= s.end)
            .unwrap_or_else(|| panic!("{r:?} spans row groups {spans:?}"));
        assert!(g >= last, "row group {g} after {last}");
        last = g;
    }
    assert_eq!(last, 5);
    eprintln!(
        "6 row groups, object {} bytes, fetched {} in {} GETs",
        bytes.len(),
        stats.bytes(),
        stats.requests()
    );
}

/// A delivery of Parquet files in a moto bucket and its plan.
async fn planned(
    dir: &Path,
    format: SampleFormat,
) -> (
    Source,
    Plan,
    curlew::sample::SampleOutput,
    tempfile::TempDir,
) {
    let mut spec = SampleSpec::new(format, 3000);
    spec.versioning = Versioning::Overwrite;
    spec.files = 2;
    let out = write_sample(&spec, dir).unwrap();
    let client = s3_client();
    let bucket = new_bucket(&client, "planned").await;
    curlew_testkit::upload::upload_dir(&client, &bucket, "", dir).await;
    let src = Source {
        store: Store::S3(S3Store::new(client, bucket)),
        prefix: String::new(),
    };
    let found = discover(&src).await.unwrap();
    assert_eq!(found.deliveries.len(), 1, "{:?}", found.errors);
    let d = found.deliveries.into_iter().next().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(Store::local(keep.path()), "");
    let scope = IngestOptions::new("acme").scope();
    let plan = match plan_delivery(&src, &ledger, &scope, d, &BTreeSet::new())
        .await
        .unwrap()
    {
        Decision::Planned(p) => *p,
        other => panic!("{other:?}"),
    };
    (src, plan, out, keep)
}

/// (a) through the pipeline, and (c): a file rewritten between planning and
/// reading is "rewritten"; the file that was not reads as from the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_rewritten_after_planning_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (src, plan, out, _keep) = planned(dir.path(), SampleFormat::Cur2Parquet).await;
    let local = Source {
        store: Store::local(dir.path()),
        prefix: String::new(),
    };
    let opts = ReadOptions::default();
    // Unchanged: the same part as the local copy gives.
    let i = plan
        .delivery
        .files
        .iter()
        .position(|f| f.key == out.data_keys[0])
        .unwrap();
    let PartRead::Read(s3_part) = process_part(&src, &plan, i, &opts).await.unwrap() else {
        panic!("rewritten")
    };
    let mut local_plan = plan.clone();
    local_plan.delivery.files[i].etag = local.store.head(&out.data_keys[0]).await.unwrap().etag;
    let PartRead::Read(local_part) = process_part(&local, &local_plan, i, &opts).await.unwrap()
    else {
        panic!("rewritten")
    };
    assert_eq!(s3_part.periods, local_part.periods);
    assert_eq!(s3_part.file.rows, local_part.file.rows);
    assert_eq!(s3_part.file.etag, plan.delivery.files[i].etag);
    // AWS rewrites the other file in place after planning.
    let j = 1 - i;
    let key = plan.delivery.files[j].key.clone();
    let (_, body) = src.store.get_bytes(&key).await.unwrap();
    let other = std::fs::read(dir.path().join(&out.data_keys[0])).unwrap();
    assert_ne!(body, other);
    src.store.put(&key, other).await.unwrap();
    match process_part(&src, &plan, j, &opts).await.unwrap() {
        PartRead::Rewritten { key: k } => assert_eq!(k, key),
        PartRead::Read(p) => panic!("read a rewritten file: {:?}", p.file),
    }
}

/// A rewrite after the first GET (mid-read) fails the next ranged GET with
/// 412: `PreconditionFailed`, never a corrupt read. moto checks If-Match on
/// ranged GETs itself (checked here with a raw request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_during_the_read_is_precondition_failed() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_file(dir.path(), SampleFormat::Cur1Parquet, 3000);
    let bytes = std::fs::read(&path).unwrap();
    let (store, etag) = upload("data/f.parquet", bytes.clone()).await;
    let raw = store
        .client()
        .get_object()
        .bucket(store.bucket())
        .key("data/f.parquet")
        .range("bytes=0-3")
        .if_match("\"0123456789abcdef0123456789abcdef\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(raw.raw_response().map(|r| r.status().as_u16()), Some(412));
    let ranges = store
        .ranges_if_match("data/f.parquet", &etag)
        .await
        .unwrap();
    let mut rewritten = bytes.clone();
    rewritten.extend_from_slice(b"\n");
    store
        .put("data/f.parquet", rewritten, curlew::store::Condition::None)
        .await
        .unwrap();
    let (read, stats) = read_ranged(ranges).await;
    match read {
        Err(RangedError::Source(e @ StoreError::PreconditionFailed { .. })) => {
            assert_eq!(e.class(), Class::Transient)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stats.requests(), 1, "the tail only: {:?}", stats.ranges());
    // Opening a rewritten object is refused at once.
    assert!(matches!(
        store.ranges_if_match("data/f.parquet", &etag).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
}

/// How the mocked ranged GETs after the tail answer.
#[derive(Clone, Copy, Debug)]
enum After {
    Serve,
    Status(u16),
    OtherEtag,
}

/// A mocked bucket holding `file` (ETag "e1"): the tail GET answers, later
/// ranged GETs as `after` says.
fn mocked(file: Arc<Vec<u8>>, after: After) -> S3Store {
    let size = file.len() as u64;
    let ok = mock!(aws_sdk_s3::Client::get_object).then_compute_response(move |r| {
        let spec = r
            .range()
            .unwrap_or("")
            .trim_start_matches("bytes=")
            .to_owned();
        let (start, end) = match spec.split_once('-').unwrap() {
            ("", n) => (size - n.parse::<u64>().unwrap().min(size), size),
            (a, b) => (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1),
        };
        let etag = if spec.starts_with('-') || !matches!(after, After::OtherEtag) {
            "\"e1\""
        } else {
            "\"e2\""
        };
        MockResponse::Output(
            GetObjectOutput::builder()
                .body(ByteStream::from(
                    file[start as usize..end as usize].to_vec(),
                ))
                .content_length((end - start) as i64)
                .content_range(format!("bytes {start}-{}/{size}", end - 1))
                .e_tag(etag)
                .build(),
        )
    });
    let mut rules = Vec::new();
    if let After::Status(status) = after {
        // Any GET but the tail's.
        rules.push(
            mock!(aws_sdk_s3::Client::get_object)
                .match_requests(|r| !r.range().unwrap_or("").starts_with("bytes=-"))
                .sequence()
                .http_status(status, None)
                .repeatedly()
                .build(),
        );
    }
    rules.push(ok);
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &rules, |c| c
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()));
    S3Store::new(client, "billing")
}

/// A ranged GET's failure keeps its class: 412 and a changed ETag are a
/// rewrite, 403 is access, 5xx is transient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_get_failures_keep_their_class() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_file(dir.path(), SampleFormat::Cur1Parquet, 3000);
    let file = Arc::new(std::fs::read(&path).unwrap());
    // The mock itself serves a whole read.
    let (read, _) = read_ranged(
        mocked(file.clone(), After::Serve)
            .ranges_if_match("data/f.parquet", "\"e1\"")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read.unwrap(), read_local(&path));
    for (after, class) in [
        (After::Status(412), Some(Class::Transient)),
        (After::OtherEtag, Some(Class::Transient)),
        (After::Status(403), Some(Class::Access)),
        (After::Status(503), Some(Class::Transient)),
        (After::Status(500), Some(Class::Transient)),
    ] {
        let store = mocked(file.clone(), after);
        let ranges = store
            .ranges_if_match("data/f.parquet", "\"e1\"")
            .await
            .unwrap();
        assert_eq!(ranges.meta().size, file.len() as u64);
        let (read, _) = read_ranged(ranges).await;
        let Err(RangedError::Source(e)) = read else {
            panic!("{after:?}: {read:?}")
        };
        let rewrite = matches!(after, After::Status(412) | After::OtherEtag);
        assert_eq!(
            matches!(e, StoreError::PreconditionFailed { .. }),
            rewrite,
            "{after:?}: {e:?}"
        );
        assert_eq!(Some(e.class()), class, "{after:?}: {e:?}");
    }
}
