//! What a committed revision consists of: the rollup Parquet file and summary.json.

mod rollup_parquet;
mod summary;

pub use rollup_parquet::{read_rollup, write_rollup, OutputError, RollupRow};
pub use summary::{InputFile, SourceInfo, Summary};
