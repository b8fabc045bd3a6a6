//! The object store: S3 or the local filesystem behind one interface.
//!
//! Both support streaming get, head, list (prefix, paginated underneath), put,
//! put-if-absent, put-if-ETag-matches and delete. Keys are `/`-separated.

mod fs;

pub use fs::FsStore;

use chrono::{DateTime, Utc};
use std::io::Read;
use std::path::PathBuf;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The object's version tag: S3's ETag, or a tag derived from size, mtime and inode on disk.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

/// Store failures, typed so callers can react (retry, conflict, missing).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key} does not exist")]
    NotFound { key: String },
    #[error("{key} changed underneath us (conditional write refused)")]
    PreconditionFailed { key: String },
    #[error("{key}: {source}")]
    Io { key: String, source: std::io::Error },
    #[error("{key}: {message}")]
    Service {
        key: String,
        message: String,
        retryable: bool,
    },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Service { retryable, .. } => *retryable,
            StoreError::Io { .. } => true,
            _ => false,
        }
    }
}

/// Where an object store lives.
#[derive(Debug, Clone)]
pub enum Store {
    Fs(FsStore),
}

impl Store {
    /// A store rooted at a local directory.
    pub fn local(root: impl Into<PathBuf>) -> Store {
        Store::Fs(FsStore::new(root))
    }

    /// Human-readable location of `key` (for messages).
    pub fn describe(&self, key: &str) -> String {
        match self {
            Store::Fs(s) => s.path(key).display().to_string(),
        }
    }

    /// The local path of `key` when the store is a filesystem (Parquet reads seek).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        match self {
            Store::Fs(s) => Some(s.path(key)),
        }
    }

    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        match self {
            Store::Fs(s) => s.head(key),
        }
    }

    /// Open `key` for streaming; the reader is blocking (use it off the async runtime).
    pub async fn get(&self, key: &str) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        match self {
            Store::Fs(s) => s.get(key),
        }
    }

    /// Read a small object whole.
    pub async fn get_bytes(&self, key: &str) -> Result<(ObjectMeta, Vec<u8>), StoreError> {
        match self {
            Store::Fs(s) => s.get_bytes(key),
        }
    }

    /// Every object whose key starts with `prefix`, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        match self {
            Store::Fs(s) => s.list(prefix),
        }
    }

    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<String, StoreError> {
        match self {
            Store::Fs(s) => s.put(key, &body, Condition::None),
        }
    }

    /// Create `key` only if it does not exist; `PreconditionFailed` otherwise.
    pub async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<String, StoreError> {
        match self {
            Store::Fs(s) => s.put(key, &body, Condition::Absent),
        }
    }

    /// Replace `key` only if its ETag is still `etag`; `PreconditionFailed` otherwise.
    pub async fn put_if_match(
        &self,
        key: &str,
        body: Vec<u8>,
        etag: &str,
    ) -> Result<String, StoreError> {
        match self {
            Store::Fs(s) => s.put(key, &body, Condition::Matches(etag)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Fs(s) => s.delete(key),
        }
    }
}

/// The condition of a put.
#[derive(Debug, Clone, Copy)]
pub enum Condition<'a> {
    None,
    Absent,
    Matches(&'a str),
}
