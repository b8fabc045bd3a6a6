//! What a committed revision consists of: the rollup Parquet file and summary.json.

pub(crate) mod rollup_parquet;
mod summary;

pub use rollup_parquet::{
    output_columns, read_rollup, write_rollup, ColumnKind, OutputError, RollupRow,
};
pub use summary::{CommitmentTotals, Finality, InputFile, KindTotals, SourceInfo, Summary};
