//! Read errors that say which file, where in it, what is wrong and what to do.
//!
//! Every error message that shows bytes of the input shows them through
//! [`quoted`] (values) or [`escaped`] (names: files, keys, columns): control
//! and other non-printable characters escaped, bytes that are not UTF-8 as
//! `\xNN`, long values cut. A damaged or random file then never prints raw
//! binary, or megabytes, to a terminal or a log.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// How many characters of a value from the input an error message quotes.
pub const QUOTED_CHARS: usize = 80;
/// How many characters of a name from the input (a file, a key, a column) an
/// error message shows: S3's own limit on a key (1024 bytes).
pub const NAME_CHARS: usize = 1024;

/// A value from the input as an error message quotes it: in double quotes,
/// `"` and `\` escaped, control and other non-printable characters escaped
/// as Rust's `escape_debug` does (`\n`, `\u{1b}`), bytes that are not UTF-8 as
/// `\xNN`; cut after [`QUOTED_CHARS`] characters, with its length:
/// `"aaaa"… (1048577 bytes)`.
pub fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().min(QUOTED_CHARS) + 2);
    out.push('"');
    let cut = escape_into(&mut out, bytes, true, QUOTED_CHARS);
    out.push('"');
    if cut {
        let _ = write!(out, "… ({} bytes)", bytes.len());
    }
    out
}

/// A name from the input (a file, a key, a column) as an error message shows
/// it: escaped like [`quoted`] but without quotes (and `"`, `\` as they are),
/// cut after [`NAME_CHARS`] characters. A printable name is returned as it is.
pub fn escaped(name: &str) -> Cow<'_, str> {
    if name.len() <= NAME_CHARS && name.chars().all(shown_as_is) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len().min(NAME_CHARS));
    if escape_into(&mut out, name.as_bytes(), false, NAME_CHARS) {
        let _ = write!(out, "… ({} bytes)", name.len());
    }
    Cow::Owned(out)
}

/// Append `bytes` escaped; at most `max_chars` characters (or invalid bytes)
/// of the input. Returns whether the input was cut.
fn escape_into(out: &mut String, bytes: &[u8], quotes: bool, max_chars: usize) -> bool {
    let mut shown = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == max_chars {
                return true;
            }
            shown += 1;
            match c {
                '"' | '\\' if quotes => {
                    out.push('\\');
                    out.push(c);
                }
                c if shown_as_is(c) => out.push(c),
                c => out.extend(c.escape_debug()),
            }
        }
        for b in chunk.invalid() {
            if shown == max_chars {
                return true;
            }
            shown += 1;
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    false
}

/// Printable: what `escape_debug` leaves alone (quotes and backslash aside).
fn shown_as_is(c: char) -> bool {
    matches!(c, '"' | '\'' | '\\') || c.escape_debug().len() == 1
}

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
            Location::Field { line, column } => {
                write!(f, ", line {line}, column {}", escaped(column))
            }
            Location::RowGroup {
                row_group,
                row,
                column,
            } => {
                write!(
                    f,
                    ", row group {row_group}, row {row}, column {}",
                    escaped(column)
                )
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
    /// A CSV field or record is over its [`super::CsvLimits`] cap: not a
    /// billing file, or a damaged one. Permanent, like every kind but `Io`.
    TooLarge,
}

/// A failure to read a data file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{location}: {problem}. What to do: {hint}", escaped(.file))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes_control_characters_and_bytes_that_are_not_utf8() {
        assert_eq!(quoted(b"12.5"), r#""12.5""#);
        assert_eq!(
            quoted(b"a\x1b[2J\x07\tb\n\r\0"),
            r#""a\u{1b}[2J\u{7}\tb\n\r\0""#
        );
        assert_eq!(quoted(b"\xff\xfe ok \xc3"), r#""\xff\xfe ok \xc3""#);
        assert_eq!(quoted("é O'Brien".as_bytes()), r#""é O'Brien""#);
        assert_eq!(quoted(br#"say "hi" \ bye"#), r#""say \"hi\" \\ bye""#);
        // Bidirectional overrides and zero-width characters are not printable.
        assert_eq!(
            quoted("a\u{202e}b\u{200b}".as_bytes()),
            r#""a\u{202e}b\u{200b}""#
        );
    }

    #[test]
    fn quoted_cuts_long_values_and_says_how_long_they_were() {
        let long = vec![b'9'; 1 << 20];
        let q = quoted(&long);
        assert_eq!(
            q,
            format!("\"{}\"… (1048576 bytes)", "9".repeat(QUOTED_CHARS))
        );
        let exact = vec![b'7'; QUOTED_CHARS];
        assert_eq!(quoted(&exact), format!("\"{}\"", "7".repeat(QUOTED_CHARS)));
        // Every escaped byte counts as one character of the input.
        let binary = vec![0u8; 500];
        assert_eq!(
            quoted(&binary),
            format!("\"{}\"… (500 bytes)", r"\0".repeat(QUOTED_CHARS))
        );
    }

    #[test]
    fn escaped_names_are_unchanged_when_printable() {
        assert!(matches!(
            escaped("cur/r/20240101-20240201/r-1.csv.gz"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escaped(r#"a "b" \c"#), r#"a "b" \c"#);
        assert_eq!(escaped("x\u{1b}[31m.csv"), r"x\u{1b}[31m.csv");
        let long = "k".repeat(NAME_CHARS + 5);
        assert_eq!(
            escaped(&long),
            format!("{}… ({} bytes)", "k".repeat(NAME_CHARS), NAME_CHARS + 5)
        );
    }

    #[test]
    fn read_errors_show_file_and_column_escaped() {
        let e = ReadError::new(
            "x\n.csv",
            ReadErrorKind::BadData,
            Location::Field {
                line: 3,
                column: "tag\u{7}".into(),
            },
            "p",
            "h",
        );
        assert_eq!(
            e.to_string(),
            r"x\n.csv, line 3, column tag\u{7}: p. What to do: h"
        );
    }
}
