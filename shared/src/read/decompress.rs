//! Sniff the compression of a data stream and decompress it, optionally on
//! its own thread (parsing then runs in parallel with inflating).

use super::error::{ReadError, ReadErrorKind};
use super::{Location, ReadOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// The container of a data file, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zip,
    Parquet,
}

/// A decompressed byte stream plus what it was.
pub struct DataStream {
    pub compression: Compression,
    pub reader: Box<dyn ChunkRead + Send>,
}

/// Bytes of data in one chunk of a [`ChunkRead`].
const CHUNK: usize = 1 << 20;

/// Bytes free at the front of every chunk a [`ChunkRead`] hands out: room
/// for a reader to put the unfinished end of the previous chunk before the
/// new bytes, so that a record spanning two chunks is contiguous without
/// copying the chunk itself.
pub const HEADROOM: usize = 64 << 10;

/// A byte stream that can also hand out its bytes a chunk at a time, each in
/// a buffer of its own (bytes `HEADROOM..` of it). The decompression thread's
/// chunks come as they are, without the copy a `read` into the caller's
/// buffer makes.
pub trait ChunkRead: Read {
    /// The next chunk, `None` at the end of the stream. `spare` is a buffer
    /// the caller is done with; its allocation may be reused.
    fn next_chunk(&mut self, spare: Vec<u8>) -> io::Result<Option<Vec<u8>>>;
}

/// Any reader, chunked by reading into a buffer until it holds a chunk.
pub struct Plain<R> {
    inner: R,
    chunk: usize,
}

impl<R: Read> Plain<R> {
    pub fn new(inner: R) -> Self {
        Self::with_chunk(inner, CHUNK)
    }

    /// Chunks of `chunk` bytes (the last may be shorter).
    pub fn with_chunk(inner: R, chunk: usize) -> Self {
        Plain {
            inner,
            chunk: chunk.max(1),
        }
    }
}

impl<R: Read> Read for Plain<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Read> ChunkRead for Plain<R> {
    fn next_chunk(&mut self, mut spare: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        let full = HEADROOM + self.chunk;
        // Only bytes a previous chunk did not reach are zeroed.
        spare.resize(full, 0);
        let mut filled = HEADROOM;
        while filled < full {
            match self.inner.read(&mut spare[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == HEADROOM {
            return Ok(None);
        }
        spare.truncate(filled);
        Ok(Some(spare))
    }
}

impl<C: ChunkRead + ?Sized> ChunkRead for Box<C> {
    fn next_chunk(&mut self, spare: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        (**self).next_chunk(spare)
    }
}

/// Counts bytes read from the underlying (compressed) input for progress.
struct Counting<R> {
    inner: R,
    counter: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = &self.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Detect the compression of `input` and return the decompressed stream.
pub fn open_data(
    name: &str,
    input: Box<dyn Read + Send>,
    opts: &ReadOptions,
) -> Result<DataStream, ReadError> {
    let counted = Counting {
        inner: input,
        counter: opts.progress.clone(),
    };
    let mut buf = BufReader::with_capacity(256 * 1024, counted);
    let head = buf.fill_buf().map_err(|e| ReadError::io(name, e))?;
    let compression = match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [b'P', b'K', 3, 4, ..] => Compression::Zip,
        [b'P', b'A', b'R', b'1', ..] => Compression::Parquet,
        _ => Compression::None,
    };
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None | Compression::Parquet => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zip => Box::new(open_zip(name, buf)?),
    };
    let reader = if opts.threaded_decompression && compression != Compression::None {
        Box::new(ThreadedReader::spawn(reader)) as Box<dyn ChunkRead + Send>
    } else {
        Box::new(Plain::new(reader))
    };
    Ok(DataStream {
        compression,
        reader,
    })
}

/// The first entry of a zip archive, read as a stream (no seeking, no spooling).
fn open_zip(
    name: &str,
    mut input: BufReader<Counting<Box<dyn Read + Send>>>,
) -> Result<impl Read + Send, ReadError> {
    // Validate the first local header here so a corrupt archive fails with a clear message.
    let corrupt = |e: String| {
        ReadError::new(
            name,
            ReadErrorKind::Corrupt,
            Location::File,
            format!("corrupt zip archive: {e}"),
            "re-download the file; AWS zips hold one CSV each",
        )
    };
    let mut header = [0u8; 30];
    input
        .read_exact(&mut header)
        .map_err(|e| corrupt(e.to_string()))?;
    let method = u16::from_le_bytes([header[8], header[9]]);
    let flags = u16::from_le_bytes([header[6], header[7]]);
    let name_len = u16::from_le_bytes([header[26], header[27]]) as usize;
    let extra_len = u16::from_le_bytes([header[28], header[29]]) as usize;
    let compressed = u32::from_le_bytes([header[18], header[19], header[20], header[21]]) as u64;
    let mut skip = vec![0u8; name_len + extra_len];
    input
        .read_exact(&mut skip)
        .map_err(|e| corrupt(e.to_string()))?;
    let streamed_size = flags & 0x08 != 0;
    let body: Box<dyn Read + Send> = if streamed_size {
        Box::new(input)
    } else {
        Box::new(input.take(compressed))
    };
    match method {
        0 => Ok(Box::new(ZipStored(body)) as Box<dyn Read + Send>),
        8 => Ok(Box::new(flate2::read::DeflateDecoder::new(body)) as Box<dyn Read + Send>),
        m => Err(corrupt(format!(
            "unsupported compression method {m} (curlew reads stored and deflate)"
        ))),
    }
}

struct ZipStored(Box<dyn Read + Send>);
impl Read for ZipStored {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A reader whose bytes are produced by a decompression thread, in chunks
/// of [`CHUNK`] bytes after [`HEADROOM`].
struct ThreadedReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ThreadedReader {
    fn spawn(mut inner: Box<dyn Read + Send>) -> Self {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
        let (recycle, spare) = sync_channel::<Vec<u8>>(6);
        std::thread::Builder::new()
            .name("curlew-inflate".into())
            .spawn(move || loop {
                let mut chunk = spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(HEADROOM + CHUNK));
                chunk.resize(HEADROOM + CHUNK, 0);
                let mut filled = 0;
                let res = loop {
                    match inner.read(&mut chunk[HEADROOM + filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == CHUNK {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(HEADROOM + filled);
                let eof = filled == 0;
                let stop = match res {
                    Err(e) => {
                        if filled > 0 {
                            let _ = tx.send(Ok(chunk));
                        }
                        let _ = tx.send(Err(e));
                        true
                    }
                    Ok(()) if eof => true,
                    Ok(()) => tx.send(Ok(chunk)).is_err(),
                };
                if stop {
                    return;
                }
            })
            .expect("spawn decompression thread");
        ThreadedReader {
            rx,
            recycle,
            current: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl ThreadedReader {
    /// The decompression thread's next chunk (bytes `HEADROOM..`).
    fn receive(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Ok(chunk)) => Ok(Some(chunk)),
            Ok(Err(e)) => {
                self.done = true;
                Err(e)
            }
            Err(_) => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

impl ChunkRead for ThreadedReader {
    fn next_chunk(&mut self, spare: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        if spare.capacity() > 0 {
            let _ = self.recycle.try_send(spare);
        }
        // Bytes a `read` left in the current chunk come first.
        if self.pos < self.current.len() {
            let mut rest = std::mem::take(&mut self.current);
            rest.drain(HEADROOM..self.pos);
            self.pos = 0;
            return Ok(Some(rest));
        }
        self.receive()
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.receive()? {
                Some(chunk) => {
                    let old = std::mem::replace(&mut self.current, chunk);
                    let _ = self.recycle.try_send(old);
                    self.pos = HEADROOM;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
