//! The pipeline's errors, each carrying its [`Class`] (the one failure policy).

use crate::discover::{DiscoverError, ManifestDeliveryError};
use crate::failure::Class;
use crate::ledger::LedgerError;
use crate::output::OutputError;
use crate::read::{escaped, ReadError, ReadErrorKind};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error(transparent)]
    Manifest(#[from] ManifestDeliveryError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{} names {} file(s) that do not exist (yet): {}. What to do: AWS may still be uploading; retry in a few minutes. Nothing was committed", escaped(.manifest), .keys.len(), .keys.iter().map(|k| escaped(k)).collect::<Vec<_>>().join(", "))]
    MissingFiles { manifest: String, keys: Vec<String> },
    #[error("billing period {period} of payer {payer} is delivered by several reports ({}); they would be summed twice. What to do: name the report to ingest (`curlew ingest --report NAME`, or the connection's report)", .reports.join(", "))]
    Ambiguous {
        payer: String,
        period: String,
        reports: Vec<String>,
    },
    #[error("{} is outside the connection's prefix {prefix:?}; refused. What to do: check the manifest; curlew reads only under the connected prefix", escaped(.key))]
    OutsideScope { key: String, prefix: String },
    #[error("{manifest} lists {files} data files, more than the cap of {cap}. What to do: raise the cap (CURLEW_MAX_FILES) if the delivery is genuine")]
    TooManyFiles {
        manifest: String,
        files: usize,
        cap: usize,
    },
    #[error(
        "{key}: {problem}. What to do: re-plan the delivery (it is rebuilt from the manifest)"
    )]
    BadPlan { key: String, problem: String },
    #[error("staged part {key} is not readable ({problem}). What to do: re-run the ingest; staging is rebuilt")]
    BadStaging { key: String, problem: String },
    #[error("a parallel task failed: {0}")]
    Task(String),
}

impl PipelineError {
    /// What the failure policy does with this error.
    pub fn class(&self) -> Class {
        match self {
            PipelineError::Discover(DiscoverError::List { source, .. }) => source.class(),
            PipelineError::Discover(_) => Class::Permanent,
            PipelineError::Manifest(e) => e.class(),
            PipelineError::Read(e) if e.kind == ReadErrorKind::Io => Class::Transient,
            PipelineError::Read(_) => Class::Permanent,
            PipelineError::Store(e) => e.class(),
            PipelineError::Ledger(LedgerError::Store(e)) => e.class(),
            PipelineError::Ledger(LedgerError::Contended { .. }) => Class::Transient,
            PipelineError::Ledger(LedgerError::Corrupt { .. }) => Class::Permanent,
            PipelineError::Output(_) => Class::Permanent,
            PipelineError::MissingFiles { .. } | PipelineError::Task(_) => Class::Transient,
            PipelineError::Ambiguous { .. }
            | PipelineError::OutsideScope { .. }
            | PipelineError::TooManyFiles { .. }
            | PipelineError::BadPlan { .. }
            | PipelineError::BadStaging { .. } => Class::Permanent,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }

    /// The data file the error is about, when it is about one.
    pub fn file(&self) -> Option<&str> {
        match self {
            PipelineError::Read(e) => Some(&e.file),
            _ => None,
        }
    }
}
