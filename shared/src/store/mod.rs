//! The object store: S3 or the local filesystem behind one interface.
//!
//! Both support streaming get, head, list (prefix, paginated underneath), put,
//! put-if-absent, put-if-ETag-matches and delete. Keys are `/`-separated.
//! S3 objects can also be read by byte ranges pinned to an ETag
//! ([`S3Store::ranges_if_match`]: Parquet without a local copy).

mod fs;
mod s3;
mod s3_ranges;

pub use fs::FsStore;
pub use s3::S3Store;
pub use s3_ranges::{FetchStats, S3Ranges};

use crate::failure::Class;
use chrono::{DateTime, Utc};
use std::io::Read;
use std::path::PathBuf;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The object's version tag: S3's ETag, or a tag derived from size, mtime and inode on disk.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

/// A key prefix as the layouts use it: `""` or `"a/b/"` (no leading slash,
/// exactly one trailing slash), whatever slashes the operator typed.
pub fn key_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
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
    /// Refused by the account that owns the bucket: AccessDenied (IAM, bucket
    /// policy, SCP, KMS), a bucket that is gone, or a bucket in another region.
    /// A connection problem for the sweep, not a data problem.
    #[error("{key}: {message}")]
    Access { key: String, message: String },
    #[error("{key}: {message}")]
    Service {
        key: String,
        message: String,
        retryable: bool,
    },
    /// What this kind of store cannot do.
    #[error("{key}: {what}")]
    Unsupported { key: String, what: &'static str },
}

impl StoreError {
    /// The failure policy's class (see [`crate::failure`]). A missing key is
    /// transient: S3 lists and manifests can run ahead of what a GET sees.
    pub fn class(&self) -> Class {
        match self {
            StoreError::Service {
                retryable: false, ..
            }
            | StoreError::Unsupported { .. } => Class::Permanent,
            StoreError::Access { .. } => Class::Access,
            StoreError::Service { .. }
            | StoreError::Io { .. }
            | StoreError::NotFound { .. }
            | StoreError::PreconditionFailed { .. } => Class::Transient,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == Class::Transient
    }
}

/// Where an object store lives.
#[derive(Debug, Clone)]
pub enum Store {
    Fs(FsStore),
    S3(S3Store),
}

impl Store {
    /// A store rooted at a local directory.
    pub fn local(root: impl Into<PathBuf>) -> Store {
        Store::Fs(FsStore::new(root))
    }

    /// `s3://bucket/prefix` (an S3 client from the standard AWS settings) or a
    /// directory; returns the store and the key prefix within it.
    pub async fn open(location: &str) -> (Store, String) {
        match location.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                (
                    Store::S3(S3Store::from_env(bucket).await),
                    prefix.to_owned(),
                )
            }
            None => (Store::local(location), String::new()),
        }
    }

    /// Human-readable location of `key` (for messages).
    pub fn describe(&self, key: &str) -> String {
        match self {
            Store::Fs(s) => s.path(key).display().to_string(),
            Store::S3(s) => format!("s3://{}/{key}", s.bucket()),
        }
    }

    /// The local path of `key` when the store is a filesystem (Parquet reads seek).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        match self {
            Store::Fs(s) => Some(s.path(key)),
            Store::S3(_) => None,
        }
    }

    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        match self {
            Store::Fs(s) => s.head(key),
            Store::S3(s) => s.head(key).await,
        }
    }

    /// Open `key` for streaming; the reader is blocking (use it off the async runtime).
    pub async fn get(&self, key: &str) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        match self {
            Store::Fs(s) => s.get(key),
            Store::S3(s) => s.get(key).await,
        }
    }

    /// Open `key` only if its ETag is still `etag` (the version a plan pinned);
    /// `PreconditionFailed` if the object was rewritten since.
    pub async fn get_if_match(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        match self {
            Store::Fs(s) => s.get_if_match(key, etag),
            Store::S3(s) => s.get_if_match(key, etag).await,
        }
    }

    /// Read a small object whole.
    pub async fn get_bytes(&self, key: &str) -> Result<(ObjectMeta, Vec<u8>), StoreError> {
        match self {
            Store::Fs(s) => s.get_bytes(key),
            Store::S3(s) => s.get_bytes(key).await,
        }
    }

    /// Every object whose key starts with `prefix`, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        match self {
            Store::Fs(s) => s.list(prefix),
            Store::S3(s) => s.list(prefix).await,
        }
    }

    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<String, StoreError> {
        match self {
            Store::Fs(s) => s.put(key, &body, Condition::None),
            Store::S3(s) => s.put(key, body, Condition::None).await,
        }
    }

    /// Create `key` only if it does not exist; `PreconditionFailed` otherwise.
    pub async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<String, StoreError> {
        match self {
            Store::Fs(s) => s.put(key, &body, Condition::Absent),
            Store::S3(s) => s.put(key, body, Condition::Absent).await,
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
            Store::S3(s) => s.put(key, body, Condition::Matches(etag)).await,
        }
    }

    /// Put `key` encrypted by S3 under the customer-managed KMS key
    /// `kms_key_arn` (SSE-KMS). A local store has no KMS: `Unsupported`.
    pub async fn put_encrypted(
        &self,
        key: &str,
        body: Vec<u8>,
        kms_key_arn: &str,
    ) -> Result<String, StoreError> {
        match self {
            Store::Fs(_) => Err(StoreError::Unsupported {
                key: key.to_owned(),
                what: "a KMS key applies to an s3:// store only; a local store is plain files",
            }),
            Store::S3(s) => s.put_encrypted(key, body, kms_key_arn).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Fs(s) => s.delete(key),
            Store::S3(s) => s.delete(key).await,
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
