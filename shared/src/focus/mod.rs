//! FOCUS 1.2 values that follow from a rollup group's own columns: the
//! service category of a product code, the name of a region, the charge class
//! of a line item type, the provider, publisher and invoice issuer of AWS
//! spend. One place for each rule; the rollup writer and the README's
//! deviation list use these.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The provider of every charge curlew rolls up (FOCUS ProviderName; AWS's own
/// FOCUS export writes `AWS`).
pub const PROVIDER_NAME: &str = "AWS";
/// The publisher and invoice issuer at rollup grain: AWS sells and invoices
/// its own services. (Per line, the seller and the invoicing entity are
/// `lineItem/LegalEntity` and `bill/InvoicingEntity`; a rollup group does not
/// keep them: a documented deviation.)
pub const PUBLISHER_NAME: &str = "Amazon Web Services";
pub const INVOICE_ISSUER_NAME: &str = "Amazon Web Services";

/// FOCUS 1.2's ServiceCategory values.
pub const SERVICE_CATEGORIES: [&str; 19] = [
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
];

/// FOCUS 1.2's ChargeCategory values.
pub const CHARGE_CATEGORIES: [&str; 5] = ["Usage", "Purchase", "Tax", "Credit", "Adjustment"];

const CATEGORY_TABLE: &str = include_str!("aws_service_categories.csv");

fn categories() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| {
        CATEGORY_TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("product_code,"))
            .filter_map(|l| l.split_once(','))
            .map(|(code, cat)| (code.trim(), cat.trim()))
            .collect()
    })
}

/// The ServiceCategory of an AWS product code (`AmazonEC2` -> `Compute`);
/// `Other` for a code the table does not list (FOCUS: never null, and one
/// category per service).
pub fn service_category(product_code: &str) -> &'static str {
    categories().get(product_code).copied().unwrap_or("Other")
}

/// AWS's names of its regions (the console's and the pricing API's
/// `location`), by region code.
const REGION_NAMES: &[(&str, &str)] = &[
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-east-2", "Asia Pacific (Taipei)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-south-2", "Asia Pacific (Hyderabad)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ap-southeast-3", "Asia Pacific (Jakarta)"),
    ("ap-southeast-4", "Asia Pacific (Melbourne)"),
    ("ap-southeast-5", "Asia Pacific (Malaysia)"),
    ("ap-southeast-7", "Asia Pacific (Thailand)"),
    ("ca-central-1", "Canada (Central)"),
    ("ca-west-1", "Canada West (Calgary)"),
    ("cn-north-1", "China (Beijing)"),
    ("cn-northwest-1", "China (Ningxia)"),
    ("eu-central-1", "Europe (Frankfurt)"),
    ("eu-central-2", "Europe (Zurich)"),
    ("eu-north-1", "Europe (Stockholm)"),
    ("eu-south-1", "Europe (Milan)"),
    ("eu-south-2", "Europe (Spain)"),
    ("eu-west-1", "Europe (Ireland)"),
    ("eu-west-2", "Europe (London)"),
    ("eu-west-3", "Europe (Paris)"),
    ("il-central-1", "Israel (Tel Aviv)"),
    ("me-central-1", "Middle East (UAE)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("mx-central-1", "Mexico (Central)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-gov-east-1", "AWS GovCloud (US-East)"),
    ("us-gov-west-1", "AWS GovCloud (US-West)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
    ("global", "Global"),
];

/// The RegionName of a RegionId: AWS's name of the region, or the id itself
/// for one the table does not know (a new region, a Local Zone); `None` iff
/// the id is empty (FOCUS 1.2: RegionName is null exactly when RegionId is).
pub fn region_name(region_id: &str) -> Option<&str> {
    if region_id.is_empty() {
        return None;
    }
    Some(
        REGION_NAMES
            .iter()
            .find(|(id, _)| *id == region_id)
            .map_or(region_id, |(_, name)| name),
    )
}

/// The ChargeClass of a rollup group: `Correction` for a refund of usage in
/// a billing period before the one it is billed in (FOCUS: a correction of a
/// previously invoiced period), otherwise null.
pub fn charge_class(line_item_type: &str, day: &str, billing_period: &str) -> Option<&'static str> {
    (line_item_type == "Refund" && day.get(..7).is_some_and(|month| month < billing_period))
        .then_some("Correction")
}

/// The FOCUS ChargeFrequency of a CUR line item type: `Recurring` for the
/// monthly fees of a commitment, `One-Time` for fees, upfront fees, credits
/// and tax, `Usage-Based` for everything else (usage, its discounts and
/// refunds, and types curlew does not know, which it ingests as usage).
pub fn charge_frequency(line_item_type: &str) -> &'static str {
    match line_item_type {
        "RIFee" | "SavingsPlanRecurringFee" => "Recurring",
        "Fee" | "SavingsPlanUpfrontFee" | "Credit" | "Tax" => "One-Time",
        _ => "Usage-Based",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_categories_are_focus_values_and_never_missing() {
        assert_eq!(service_category("AmazonEC2"), "Compute");
        assert_eq!(service_category("AmazonS3"), "Storage");
        assert_eq!(service_category("awskms"), "Security");
        assert_eq!(service_category("AWSCloudShell"), "Other");
        assert_eq!(service_category(""), "Other");
        for cat in categories().values() {
            assert!(SERVICE_CATEGORIES.contains(cat), "{cat}");
        }
        assert!(categories().len() > 200);
    }

    #[test]
    fn region_names_are_null_exactly_when_the_id_is() {
        assert_eq!(region_name("us-east-1"), Some("US East (N. Virginia)"));
        assert_eq!(region_name("us-west-2-lax-1"), Some("us-west-2-lax-1"));
        assert_eq!(region_name(""), None);
    }

    #[test]
    fn charge_frequencies() {
        assert_eq!(charge_frequency("RIFee"), "Recurring");
        assert_eq!(charge_frequency("SavingsPlanUpfrontFee"), "One-Time");
        assert_eq!(charge_frequency("Credit"), "One-Time");
        assert_eq!(charge_frequency("DiscountedUsage"), "Usage-Based");
        assert_eq!(charge_frequency(""), "Usage-Based");
    }

    #[test]
    fn only_a_refund_of_an_earlier_period_is_a_correction() {
        assert_eq!(
            charge_class("Refund", "2024-01-20", "2024-02"),
            Some("Correction")
        );
        assert_eq!(charge_class("Refund", "2024-02-03", "2024-02"), None);
        assert_eq!(charge_class("Usage", "2024-01-20", "2024-02"), None);
    }
}
