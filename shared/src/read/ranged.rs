//! Parquet read by byte ranges (an object in S3) instead of from a local file.
//!
//! The reader decides which bytes it needs and a [`RangeSource`] fetches
//! them: the footer (from the tail the source fetched when it was opened,
//! more only when the metadata is larger), then for each row group only the
//! column chunks of the projected columns, coalesced where they are close
//! together. parquet's push decoder asks for one row group at a time and
//! releases its bytes before asking for the next, so memory stays at about one
//! row group's projected columns, whatever the file's size.

use super::error::ReadError;
use super::parquet_file::{consume, corrupt, decoded_ahead, Path, Projection, BATCH_ROWS};
use super::{FileReport, ReadOptions};
use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::push_decoder::{ParquetPushDecoder, ParquetPushDecoderBuilder};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataPushDecoder};
use parquet::DecodeResult;
use std::ops::Range;
use std::sync::Arc;

/// How much of a file's end a source fetches when it is opened: the 8-byte
/// footer and, in one request, the metadata of most files.
pub const TAIL_BYTES: u64 = 64 * 1024;

/// Ranges closer together than this are fetched in one request (the gap is
/// read and dropped): runs of small column chunks (null or constant columns)
/// between projected ones do not cost a request each, while a column of any
/// size (ids, descriptions, tags) is skipped.
pub const COALESCE_GAP: u64 = 16 * 1024;

/// Coalescing stops at this size, so a row group is fetched in several requests
/// at once rather than one long one. A single larger column chunk is one request.
pub const MAX_REQUEST: u64 = 8 * 1024 * 1024;

/// A file read by byte ranges, e.g. an S3 object pinned to the ETag a plan
/// recorded. Blocking: called on the parser's thread, never on an async task.
pub trait RangeSource {
    /// Why a fetch failed (the store's error, keeping its failure class).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The file's length in bytes.
    fn file_len(&self) -> u64;

    /// Bytes fetched when the source was opened (the file's tail, for the
    /// footer) and the offset they start at; empty when there are none.
    fn prefetched(&self) -> (u64, Bytes);

    /// Each of `ranges` (non-empty, sorted, disjoint, inside the file), whole
    /// and in order. A short body is an error of the source, not data.
    fn fetch(&mut self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, Self::Error>;
}

/// A ranged read stopped: the source failed (rewritten object, access,
/// transient), or the data did (corrupt, bad value).
#[derive(Debug, thiserror::Error)]
pub enum RangedError<E> {
    #[error(transparent)]
    Source(E),
    #[error(transparent)]
    Read(ReadError),
}

/// `ranges` sorted and merged where at most `gap` bytes apart, up to `max`
/// bytes a request (a range longer than `max` stays whole); empty ranges dropped.
pub fn coalesce(ranges: &[Range<u64>], gap: u64, max: u64) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last)
                if r.start <= last.end.saturating_add(gap)
                    && r.end.max(last.end) - last.start <= max =>
            {
                last.end = last.end.max(r.end);
            }
            // Overlapping ranges always merge, whatever the size.
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Read a Parquet file by byte ranges into `builder`, decoding only the
/// columns curlew uses (the same projection and rows as [`super::read_path`]).
pub fn read_parquet_ranges<S: RangeSource + Send, K: super::RowSink>(
    name: &str,
    source: &mut S,
    builder: &mut K,
    opts: &ReadOptions,
) -> Result<FileReport, RangedError<S::Error>> {
    let mut fetcher = Fetcher::new(name, source);
    let len = fetcher.len;
    let metadata = fetcher.metadata()?;
    let meta = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
        .map_err(|e| RangedError::Read(corrupt(name, e)))?;
    let p = Projection::of(name, meta, builder.export(), builder.dimensions())
        .map_err(RangedError::Read)?;
    let decoder = ParquetPushDecoderBuilder::new_with_metadata(p.meta.clone())
        .with_projection(p.mask.clone())
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| RangedError::Read(corrupt(name, e)))?;
    let batches = Batches {
        decoder,
        fetcher,
        done: false,
    };
    decoded_ahead(opts, batches, |batches| {
        consume(name, &p, len, batches, builder, opts, Path::Grouped)
    })
}

/// Ranges and the buffers that hold them, for a decoder's `push_ranges`.
type Pushed = (Vec<Range<u64>>, Vec<Bytes>);

/// Serves the decoders' requests: from the tail where it holds them, the rest
/// from the source in coalesced requests.
struct Fetcher<'a, S: RangeSource> {
    name: &'a str,
    source: &'a mut S,
    len: u64,
    tail_start: u64,
    tail: Bytes,
}

impl<'a, S: RangeSource> Fetcher<'a, S> {
    fn new(name: &'a str, source: &'a mut S) -> Self {
        let len = source.file_len();
        let (tail_start, tail) = source.prefetched();
        Fetcher {
            name,
            source,
            len,
            tail_start,
            tail,
        }
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> RangedError<S::Error> {
        RangedError::Read(corrupt(self.name, e))
    }

    /// Ranges and buffers that cover `wanted` (buffers may be larger than
    /// asked). No byte is fetched twice: a range that runs into the tail is
    /// fetched up to the tail and joined to it.
    fn get(&mut self, wanted: Vec<Range<u64>>) -> Result<Pushed, RangedError<S::Error>> {
        let tail_end = self.tail_start + self.tail.len() as u64;
        let in_tail = |r: &Range<u64>| r.start >= self.tail_start && r.end <= tail_end;
        let (mut ranges, mut buffers, mut missing, mut joined) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in wanted {
            if r.start > r.end || r.end > self.len {
                return Err(self.corrupt(format!(
                    "the metadata points at bytes {}..{} of a {}-byte file",
                    r.start, r.end, self.len
                )));
            }
            if in_tail(&r) {
                buffers.push(self.tail_slice(&r));
                ranges.push(r);
            } else if r.end > self.tail_start && r.end <= tail_end && !self.tail.is_empty() {
                missing.push(r.start..self.tail_start);
                joined.push(r);
            } else {
                missing.push(r);
            }
        }
        let requests = coalesce(&missing, COALESCE_GAP, MAX_REQUEST);
        if requests.is_empty() {
            return Ok((ranges, buffers));
        }
        let got = self.source.fetch(&requests).map_err(RangedError::Source)?;
        if got.len() != requests.len()
            || got
                .iter()
                .zip(&requests)
                .any(|(b, q)| b.len() as u64 != q.end - q.start)
        {
            return Err(self.corrupt("the store answered other lengths than the ranges asked"));
        }
        for r in joined {
            let (i, q) = requests
                .iter()
                .enumerate()
                .find(|(_, q)| q.start <= r.start && self.tail_start <= q.end)
                .expect("a request covers the part before the tail");
            let at = (r.start - q.start) as usize;
            let head = &got[i][at..at + (self.tail_start - r.start) as usize];
            let mut whole = Vec::with_capacity((r.end - r.start) as usize);
            whole.extend_from_slice(head);
            whole.extend_from_slice(&self.tail_slice(&(self.tail_start..r.end)));
            ranges.push(r);
            buffers.push(Bytes::from(whole));
        }
        ranges.extend(requests);
        buffers.extend(got);
        Ok((ranges, buffers))
    }

    fn tail_slice(&self, r: &Range<u64>) -> Bytes {
        let at = (r.start - self.tail_start) as usize;
        self.tail.slice(at..at + (r.end - r.start) as usize)
    }

    /// The file's metadata (no page index: whole column chunks are read).
    fn metadata(
        &mut self,
    ) -> Result<parquet::file::metadata::ParquetMetaData, RangedError<S::Error>> {
        let mut d = ParquetMetaDataPushDecoder::try_new(self.len)
            .map_err(|e| self.corrupt(e))?
            .with_page_index_policy(PageIndexPolicy::Skip);
        loop {
            match d.try_decode().map_err(|e| self.corrupt(e))? {
                DecodeResult::Data(m) => return Ok(m),
                DecodeResult::NeedsData(wanted) => {
                    let (ranges, buffers) = self.get(wanted)?;
                    d.push_ranges(ranges, buffers)
                        .map_err(|e| self.corrupt(e))?;
                }
                DecodeResult::Finished => return Err(self.corrupt("no metadata")),
            }
        }
    }
}

/// The projected record batches, row group after row group, fetched as the
/// decoder asks for them.
struct Batches<'a, S: RangeSource> {
    decoder: ParquetPushDecoder,
    fetcher: Fetcher<'a, S>,
    done: bool,
}

impl<S: RangeSource> Batches<'_, S> {
    fn step(&mut self) -> Result<Option<RecordBatch>, RangedError<S::Error>> {
        loop {
            match self
                .decoder
                .try_decode()
                .map_err(|e| self.fetcher.corrupt(e))?
            {
                DecodeResult::Data(batch) => return Ok(Some(batch)),
                DecodeResult::Finished => return Ok(None),
                DecodeResult::NeedsData(wanted) => {
                    let (ranges, buffers) = self.fetcher.get(wanted)?;
                    self.decoder
                        .push_ranges(ranges, buffers)
                        .map_err(|e| self.fetcher.corrupt(e))?;
                }
            }
        }
    }
}

impl<S: RangeSource> Iterator for Batches<'_, S> {
    type Item = Result<RecordBatch, RangedError<S::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step().transpose();
        self.done = !matches!(r, Some(Ok(_)));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::read_path;
    use crate::rollup::RollupBuilder;
    use crate::sample::{write_sample, SampleFormat, SampleSpec};

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of ranges, one of them
    fn coalescing() {
        let c = |r: &[Range<u64>], gap, max| coalesce(r, gap, max);
        assert_eq!(c(&[], 10, 100), Vec::<Range<u64>>::new());
        assert_eq!(c(&[20..30, 0..10], 10, 100), vec![0..30]);
        assert_eq!(c(&[0..10, 21..30], 10, 100), vec![0..10, 21..30]);
        assert_eq!(c(&[0..10, 5..8, 8..12], 0, 100), vec![0..12]);
        assert_eq!(c(&[0..10, 10..10, 10..20], 0, 100), vec![0..20]);
        // The size cap splits adjacent ranges, never one range, never an overlap.
        assert_eq!(c(&[0..60, 60..120], 0, 100), vec![0..60, 60..120]);
        assert_eq!(c(&[0..300], 0, 100), vec![0..300]);
        assert_eq!(c(&[0..60, 50..120], 0, 100), vec![0..120]);
    }

    /// A file in memory, recording every request.
    struct Mem {
        data: Bytes,
        tail: u64,
        requests: Vec<Vec<Range<u64>>>,
    }

    impl RangeSource for Mem {
        type Error = std::io::Error;
        fn file_len(&self) -> u64 {
            self.data.len() as u64
        }
        fn prefetched(&self) -> (u64, Bytes) {
            let start = self.file_len().saturating_sub(self.tail);
            (start, self.data.slice(start as usize..))
        }
        fn fetch(&mut self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, Self::Error> {
            self.requests.push(ranges.to_vec());
            Ok(ranges
                .iter()
                .map(|r| self.data.slice(r.start as usize..r.end as usize))
                .collect())
        }
    }

    fn sample(format: SampleFormat, rows: u64) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = SampleSpec::new(format, rows);
        spec.bare = true;
        let out = write_sample(&spec, dir.path()).unwrap();
        let path = dir.path().join(&out.data_keys[0]);
        (dir, path)
    }

    #[test]
    fn same_rollup_as_the_file_reader_fetching_only_projected_columns() {
        for format in [
            SampleFormat::Cur1Parquet,
            SampleFormat::Cur2Parquet,
            SampleFormat::Focus,
        ] {
            let (_d, path) = sample(format, 3000);
            if !path.to_string_lossy().ends_with(".parquet") {
                continue;
            }
            let mut local = RollupBuilder::new(None);
            let r1 = read_path("f", &path, &mut local, &ReadOptions::default()).unwrap();
            let expected = local.finish();
            for tail in [0, 8, 1024, TAIL_BYTES] {
                let mut src = Mem {
                    data: Bytes::from(std::fs::read(&path).unwrap()),
                    tail,
                    requests: Vec::new(),
                };
                let mut ranged = RollupBuilder::new(None);
                let r2 = read_parquet_ranges("f", &mut src, &mut ranged, &ReadOptions::default())
                    .unwrap();
                assert_eq!(r1, r2, "{format:?} tail {tail}");
                assert_eq!(expected, ranged.finish(), "{format:?} tail {tail}");
                // Each byte fetched once at most, the tail included.
                let (start, _) = src.prefetched();
                let mut all: Vec<Range<u64>> = src.requests.iter().flatten().cloned().collect();
                all.push(start..src.file_len());
                all.sort_by_key(|r| r.start);
                assert!(all.windows(2).all(|w| w[0].end <= w[1].start), "{all:?}");
                let fetched: u64 = all.iter().map(|r| r.end - r.start).sum();
                assert!(
                    fetched < src.file_len(),
                    "{format:?} tail {tail}: {fetched}"
                );
            }
        }
    }

    #[test]
    fn a_corrupt_footer_is_a_read_error() {
        let mut src = Mem {
            data: Bytes::from_static(b"PAR1 not really parquet at all PAR1"),
            tail: TAIL_BYTES,
            requests: Vec::new(),
        };
        let e = read_parquet_ranges(
            "f",
            &mut src,
            &mut RollupBuilder::new(None),
            &ReadOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(e, RangedError::Read(ref r) if r.kind == crate::read::ReadErrorKind::Corrupt),
            "{e:?}"
        );
    }
}
