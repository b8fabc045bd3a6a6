//! What a committed revision consists of: the rollup Parquet file and summary.json.

pub(crate) mod rollup_parquet;
mod summary;

pub use rollup_parquet::{
    for_each_rollup_row, output_columns, read_rollup, write_rollup, ColumnKind, OutputError,
    RollupRow,
};
pub use summary::{CommitmentTotals, Finality, InputFile, KindTotals, SourceInfo, Summary};
