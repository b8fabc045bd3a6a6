//! The columns of the line-level FOCUS 1.2 export: FOCUS names and types, in
//! file order. One list, read by the writer, the README's table test and
//! anyone describing the files.

/// The type of an export column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// FOCUS Date/Time: UTC, milliseconds.
    Time,
    Text,
    /// DECIMAL(38,18), exact.
    Decimal,
}

/// One export column: its FOCUS name, type and whether it may be null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

const fn col(name: &'static str, kind: Kind, nullable: bool) -> Column {
    Column {
        name,
        kind,
        nullable,
    }
}

use Kind::{Decimal, Text, Time};

/// Every column of an export file, in order.
pub const COLUMNS: &[Column] = &[
    col("BillingAccountId", Text, true),
    col("BillingCurrency", Text, true),
    col("BillingPeriodStart", Time, false),
    col("BillingPeriodEnd", Time, false),
    col("ChargePeriodStart", Time, false),
    col("ChargePeriodEnd", Time, true),
    col("ChargeCategory", Text, false),
    col("ChargeClass", Text, true),
    col("ChargeDescription", Text, true),
    col("ChargeFrequency", Text, true),
    col("BilledCost", Decimal, false),
    col("EffectiveCost", Decimal, false),
    col("ListCost", Decimal, false),
    col("ContractedCost", Decimal, false),
    col("ConsumedQuantity", Decimal, true),
    col("ConsumedUnit", Text, true),
    col("PricingQuantity", Decimal, true),
    col("PricingUnit", Text, true),
    col("ListUnitPrice", Decimal, true),
    col("ProviderName", Text, false),
    col("PublisherName", Text, false),
    col("InvoiceIssuerName", Text, false),
    col("InvoiceId", Text, true),
    col("RegionId", Text, true),
    col("RegionName", Text, true),
    col("AvailabilityZone", Text, true),
    col("ResourceId", Text, true),
    col("ServiceCategory", Text, false),
    col("ServiceName", Text, true),
    col("SkuId", Text, true),
    col("SubAccountId", Text, true),
    col("CommitmentDiscountId", Text, true),
    col("Tags", Text, true),
    col("x_ServiceCode", Text, true),
    col("x_UsageType", Text, true),
    col("x_Operation", Text, true),
    col("x_LineItemType", Text, true),
];

/// The position of a column by name (a compile-time list: a missing name is a bug).
pub fn position(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is not an export column"))
}
