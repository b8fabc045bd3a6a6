//! Billing semantics of one line item: its FOCUS charge category and its
//! measures (the CUDOS `amortized_cost` rule, BilledCost = net unblended or unblended).

use crate::money::{Fixed, Money};
use std::ops::{Add, Sub};

/// The FOCUS 1.2 ChargeCategory of a legacy/CUR 2.0 line item type. `None`
/// for a type curlew does not know (it is still ingested; the summary lists
/// it). Since FOCUS 1.0, credits are `Credit` and Adjustment excludes credits
/// and refunds; a refund belongs to the category of what it refunds, which
/// the CUR row does not say: usage (the README lists the deviation), a
/// correction of an earlier period by its ChargeClass. (The FinOps
/// Foundation's focus-converter 1.0 still says Adjustment for both.)
pub fn charge_category(line_item_type: &[u8]) -> Option<&'static str> {
    Some(match line_item_type {
        b"Tax" => "Tax",
        b"Fee" | b"RIFee" | b"SavingsPlanRecurringFee" | b"SavingsPlanUpfrontFee" => "Purchase",
        b"Credit" => "Credit",
        b"Refund" => "Usage",
        b"Usage" | b"DiscountedUsage" | b"SavingsPlanCoveredUsage" | b"SavingsPlanNegation" => {
            "Usage"
        }
        t if t.ends_with(b"Discount") => "Usage",
        _ => return None,
    })
}

/// What the measures are computed in: [`Money`], or [`Fixed`] on the fast path
/// (the same rules; a fixed-point sum or difference of two inputs cannot overflow).
pub trait Amount: Copy + Default + Add<Output = Self> + Sub<Output = Self> {}
impl Amount for Money {}
impl Amount for Fixed {}

/// The money and quantity of one line item, as curlew rolls it up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeasuresOf<T> {
    pub billed: T,
    pub effective: T,
    pub list: T,
    pub contracted: Option<T>,
    pub unblended: Option<T>,
    pub net_unblended: Option<T>,
    pub blended: Option<T>,
    pub usage_amount: T,
}

pub type Measures = MeasuresOf<Money>;

/// The raw CUR values the amortized rule needs; `None` where the file lacks the column
/// or the field is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct CurValuesOf<T> {
    pub unblended: Option<T>,
    pub net_unblended: Option<T>,
    pub blended: Option<T>,
    pub public_on_demand: Option<T>,
    pub usage_amount: Option<T>,
    pub sp_effective: Option<T>,
    pub sp_total_commitment: Option<T>,
    pub sp_used_commitment: Option<T>,
    pub ri_effective: Option<T>,
    pub ri_unused_amortized_upfront: Option<T>,
    pub ri_unused_recurring: Option<T>,
}

pub type CurValues = CurValuesOf<Money>;

/// Which extra inputs the amortized rule reads for a line item type; lets parsers
/// skip columns a row does not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmortizedInput {
    Unblended,
    SpEffective,
    SpCommitment,
    Zero,
    RiEffective,
    RiUnused,
}

/// The CUDOS `amortized_cost` CASE, input selection part.
pub fn amortized_input(
    line_item_type: &[u8],
    product_code: &[u8],
    has_reservation_arn: bool,
) -> AmortizedInput {
    match line_item_type {
        b"SavingsPlanCoveredUsage" => AmortizedInput::SpEffective,
        b"SavingsPlanRecurringFee" => AmortizedInput::SpCommitment,
        b"SavingsPlanNegation" | b"SavingsPlanUpfrontFee" => AmortizedInput::Zero,
        b"DiscountedUsage" => AmortizedInput::RiEffective,
        b"RIFee" => AmortizedInput::RiUnused,
        b"Fee" if has_reservation_arn => AmortizedInput::Zero,
        b"Refund" if product_code == b"ComputeSavingsPlans" => AmortizedInput::Zero,
        _ => AmortizedInput::Unblended,
    }
}

/// Measures of a CUR line item.
pub fn cur_measures<T: Amount>(rule: AmortizedInput, v: &CurValuesOf<T>) -> MeasuresOf<T> {
    let z = T::default();
    let unblended = v.unblended.unwrap_or(z);
    let amortized = match rule {
        AmortizedInput::Unblended => unblended,
        AmortizedInput::SpEffective => v.sp_effective.unwrap_or(z),
        AmortizedInput::SpCommitment => {
            v.sp_total_commitment.unwrap_or(z) - v.sp_used_commitment.unwrap_or(z)
        }
        AmortizedInput::Zero => z,
        AmortizedInput::RiEffective => v.ri_effective.unwrap_or(z),
        AmortizedInput::RiUnused => {
            v.ri_unused_amortized_upfront.unwrap_or(z) + v.ri_unused_recurring.unwrap_or(z)
        }
    };
    MeasuresOf {
        billed: v.net_unblended.unwrap_or(unblended),
        effective: amortized,
        list: v.public_on_demand.unwrap_or(z),
        // CUR has no contracted unit price; the unblended cost is the cost at
        // the account's own rates before discounts (FOCUS: ContractedCost is
        // never null).
        contracted: Some(unblended),
        unblended: Some(unblended),
        net_unblended: v.net_unblended,
        blended: Some(v.blended.unwrap_or(z)),
        usage_amount: v.usage_amount.unwrap_or(z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    fn vals() -> CurValues {
        CurValues {
            unblended: Some(dec("10")),
            sp_effective: Some(dec("6.5")),
            sp_total_commitment: Some(dec("100")),
            sp_used_commitment: Some(dec("92.25")),
            ri_effective: Some(dec("3.3")),
            ri_unused_amortized_upfront: Some(dec("1.1")),
            ri_unused_recurring: Some(dec("2.2")),
            ..CurValues::default()
        }
    }

    fn amortized(t: &str, code: &str, arn: bool) -> Money {
        cur_measures(amortized_input(t.as_bytes(), code.as_bytes(), arn), &vals()).effective
    }

    #[test]
    fn cudos_amortized_rule() {
        assert_eq!(
            amortized("SavingsPlanCoveredUsage", "AmazonEC2", false),
            dec("6.5")
        );
        assert_eq!(
            amortized("SavingsPlanRecurringFee", "ComputeSavingsPlans", false),
            dec("7.75")
        );
        assert_eq!(
            amortized("SavingsPlanNegation", "AmazonEC2", false),
            dec("0")
        );
        assert_eq!(
            amortized("SavingsPlanUpfrontFee", "ComputeSavingsPlans", false),
            dec("0")
        );
        assert_eq!(amortized("DiscountedUsage", "AmazonEC2", true), dec("3.3"));
        assert_eq!(amortized("RIFee", "AmazonEC2", true), dec("3.3"));
        assert_eq!(amortized("Fee", "AmazonEC2", true), dec("0"));
        assert_eq!(amortized("Fee", "AWSSupport", false), dec("10"));
        assert_eq!(amortized("Refund", "ComputeSavingsPlans", false), dec("0"));
        assert_eq!(amortized("Refund", "AmazonEC2", false), dec("10"));
        assert_eq!(amortized("Usage", "AmazonEC2", false), dec("10"));
        assert_eq!(amortized("SomeFutureType", "AmazonEC2", false), dec("10"));
    }

    #[test]
    fn billed_prefers_net_unblended() {
        let mut v = vals();
        assert_eq!(
            cur_measures(AmortizedInput::Unblended, &v).billed,
            dec("10")
        );
        v.net_unblended = Some(dec("9.1"));
        assert_eq!(
            cur_measures(AmortizedInput::Unblended, &v).billed,
            dec("9.1")
        );
    }

    #[test]
    fn charge_categories() {
        assert_eq!(charge_category(b"Tax"), Some("Tax"));
        assert_eq!(charge_category(b"RIFee"), Some("Purchase"));
        assert_eq!(charge_category(b"SavingsPlanUpfrontFee"), Some("Purchase"));
        assert_eq!(charge_category(b"Credit"), Some("Credit"));
        assert_eq!(charge_category(b"Refund"), Some("Usage"));
        assert_eq!(charge_category(b"EdpDiscount"), Some("Usage"));
        assert_eq!(charge_category(b"DiscountedUsage"), Some("Usage"));
        assert_eq!(charge_category(b"Whatever"), None);
    }
}
