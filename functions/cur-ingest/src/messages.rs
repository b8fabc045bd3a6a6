//! What flows between the functions: part jobs, the staged plan, commit notices.

use curlew::discover::Delivery;
use curlew::rollup::Sums;
use serde::{Deserialize, Serialize};

/// The plan of a revision, stored beside its staged parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub tenant: String,
    /// The connection's payer account (with the tenant, its registry key).
    #[serde(default)]
    pub payer_account: String,
    pub bucket: String,
    pub prefix: String,
    pub delivery: Delivery,
}

/// One data file to process (one SNS message on the parts topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartJob {
    pub tenant: String,
    pub revision: String,
    /// Key of the [`Plan`] in curlew's store.
    pub plan_key: String,
    pub index: usize,
    pub count: usize,
    pub key: String,
    /// The data file's ETag when the manifest was planned.
    pub etag: String,
}

/// Published on the results topic when a period moves to a new revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub event: String,
    pub tenant: String,
    pub billing_period: String,
    pub revision: String,
    pub previous: Option<String>,
    pub rows: u64,
    pub totals: Sums,
    pub unattributed: Sums,
}

/// A string SNS message attribute (for subscription filter policies).
pub fn attr(v: &str) -> aws_sdk_sns::types::MessageAttributeValue {
    aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .expect("data type and value are set")
}
