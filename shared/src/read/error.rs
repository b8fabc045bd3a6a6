//! Read errors that say which file, where in it, what is wrong and what to do.

use std::fmt;

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File,
    Line(u64),
    Field {
        line: u64,
        column: String,
    },
    RowGroup {
        row_group: usize,
        row: u64,
        column: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(l) => write!(f, ", line {l}"),
            Location::Field { line, column } => write!(f, ", line {line}, column {column}"),
            Location::RowGroup {
                row_group,
                row,
                column,
            } => {
                write!(f, ", row group {row_group}, row {row}, column {column}")
            }
        }
    }
}

/// What kind of problem a read hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// The file could not be opened or read (may be retryable).
    Io,
    /// Compression or container is damaged (truncated gzip, corrupt zip/Parquet).
    Corrupt,
    /// Not a billing format curlew knows, or a required column is missing.
    Format,
    /// A record or value is malformed.
    BadData,
    /// The file has no header at all.
    Empty,
}

/// A failure to read a data file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{location}: {problem}. What to do: {hint}")]
pub struct ReadError {
    pub file: String,
    pub kind: ReadErrorKind,
    pub location: Location,
    pub problem: String,
    pub hint: String,
}

impl ReadError {
    pub fn new(
        file: &str,
        kind: ReadErrorKind,
        location: Location,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ReadError {
            file: file.to_owned(),
            kind,
            location,
            problem: problem.into(),
            hint: hint.into(),
        }
    }

    pub fn io(file: &str, e: std::io::Error) -> Self {
        let (kind, hint) = classify_io(&e);
        ReadError::new(file, kind, Location::File, e.to_string(), hint)
    }
}

/// Decompression failures surface as io errors; name them for what they are.
pub(crate) fn classify_io(e: &std::io::Error) -> (ReadErrorKind, &'static str) {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | InvalidData | InvalidInput => (
            ReadErrorKind::Corrupt,
            "the file is truncated or damaged; check it is a complete delivery (an upload may still be in progress) and re-run, or wait for AWS's next delivery",
        ),
        NotFound => (ReadErrorKind::Io, "check the path; a manifest may name a file that has not arrived yet"),
        _ => (ReadErrorKind::Io, "check the file is readable and re-run"),
    }
}
