//! What each sample column holds, resolved once per column (not per cell).

use super::rows::{units_str, usage_type, GenRow, RowGen, REGIONS, SERVICES};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    LineItemId,
    TimeInterval,
    InvoiceId,
    InvoicingEntity,
    BillingEntity,
    BillType,
    Payer,
    BpStart,
    BpEnd,
    Account,
    Lit,
    UsageStart,
    UsageEnd,
    ProductCode,
    UsageType,
    Operation,
    Az,
    ResourceId,
    UsageAmount,
    NormFactor,
    NormUsage,
    Currency,
    UnblendedRate,
    Unblended,
    BlendedRate,
    Blended,
    NetRate,
    Net,
    Description,
    TaxType,
    LegalEntity,
    ProductName,
    ProductFamily,
    Region,
    RegionCode,
    Location,
    ServiceCode,
    ServiceName,
    Sku,
    ProductUsageType,
    ProductOperation,
    PublicOnDemandCost,
    PublicOnDemandRate,
    Term,
    Unit,
    RiEffective,
    RiArn,
    RiUnusedUpfront,
    RiUnusedRecurring,
    RiUnusedQuantity,
    SpTotal,
    SpArn,
    SpUsed,
    SpEffective,
    SpOffering,
    Tag(u8),
    Filler(u16),
    Blank,
}

/// Map a legacy slash column to its cell kind; `filler` indexes unmodelled columns.
pub fn cell_of(col: &str, filler: u16) -> Cell {
    use Cell::*;
    match col {
        "identity/LineItemId" => LineItemId,
        "identity/TimeInterval" => TimeInterval,
        "bill/InvoiceId" => InvoiceId,
        "bill/InvoicingEntity" => InvoicingEntity,
        "bill/BillingEntity" => BillingEntity,
        "bill/BillType" => BillType,
        "bill/PayerAccountId" => Payer,
        "bill/BillingPeriodStartDate" => BpStart,
        "bill/BillingPeriodEndDate" => BpEnd,
        "lineItem/UsageAccountId" => Account,
        "lineItem/LineItemType" => Lit,
        "lineItem/UsageStartDate" => UsageStart,
        "lineItem/UsageEndDate" => UsageEnd,
        "lineItem/ProductCode" => ProductCode,
        "lineItem/UsageType" => UsageType,
        "lineItem/Operation" => Operation,
        "lineItem/AvailabilityZone" => Az,
        "lineItem/ResourceId" => ResourceId,
        "lineItem/UsageAmount" => UsageAmount,
        "lineItem/NormalizationFactor" => NormFactor,
        "lineItem/NormalizedUsageAmount" => NormUsage,
        "lineItem/CurrencyCode" => Currency,
        "lineItem/UnblendedRate" => UnblendedRate,
        "lineItem/UnblendedCost" => Unblended,
        "lineItem/BlendedRate" => BlendedRate,
        "lineItem/BlendedCost" => Blended,
        "lineItem/NetUnblendedRate" => NetRate,
        "lineItem/NetUnblendedCost" => Net,
        "lineItem/LineItemDescription" => Description,
        "lineItem/TaxType" => TaxType,
        "lineItem/LegalEntity" => LegalEntity,
        "product/ProductName" => ProductName,
        "product/productFamily" => ProductFamily,
        "product/region" => Region,
        "product/regionCode" => RegionCode,
        "product/location" => Location,
        "product/servicecode" => ServiceCode,
        "product/servicename" => ServiceName,
        "product/sku" => Sku,
        "product/usagetype" => ProductUsageType,
        "product/operation" => ProductOperation,
        "pricing/publicOnDemandCost" => PublicOnDemandCost,
        "pricing/publicOnDemandRate" => PublicOnDemandRate,
        "pricing/term" => Term,
        "pricing/unit" => Unit,
        "reservation/EffectiveCost" => RiEffective,
        "reservation/ReservationARN" => RiArn,
        "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod" => RiUnusedUpfront,
        "reservation/UnusedRecurringFee" => RiUnusedRecurring,
        "reservation/UnusedQuantity" => RiUnusedQuantity,
        "savingsPlan/TotalCommitmentToDate" => SpTotal,
        "savingsPlan/SavingsPlanARN" => SpArn,
        "savingsPlan/UsedCommitment" => SpUsed,
        "savingsPlan/SavingsPlanEffectiveCost" => SpEffective,
        "savingsPlan/OfferingType" => SpOffering,
        c if c.starts_with("resourceTags/") => Tag(filler as u8),
        c if c.starts_with("reservation/")
            || c.starts_with("savingsPlan/")
            || c.starts_with("pricing/") =>
        {
            Blank
        }
        _ => Filler(filler),
    }
}

/// Whether a legacy column holds a number (DOUBLE in Parquet).
pub fn is_numeric(cell: Cell, col: &str) -> bool {
    use Cell::*;
    matches!(
        cell,
        UsageAmount
            | NormFactor
            | NormUsage
            | UnblendedRate
            | Unblended
            | BlendedRate
            | Blended
            | NetRate
            | Net
            | PublicOnDemandCost
            | PublicOnDemandRate
            | RiEffective
            | RiUnusedUpfront
            | RiUnusedRecurring
            | RiUnusedQuantity
            | SpTotal
            | SpUsed
            | SpEffective
    ) || (cell == Blank
        && (col.ends_with("Fee")
            || col.ends_with("Cost")
            || col.ends_with("Units")
            || col.ends_with("Usage")))
}

/// Whether a legacy column is a timestamp.
pub fn is_timestamp(cell: Cell) -> bool {
    matches!(
        cell,
        Cell::BpStart | Cell::BpEnd | Cell::UsageStart | Cell::UsageEnd
    )
}

const FILLER_VALUES: &[&str] = &[
    "",
    "",
    "",
    "Yes",
    "No",
    "Standard",
    "General Purpose",
    "NA",
    "Shared",
    "Up to 10 Gigabit",
    "64-bit",
    "Linux",
    "8 GiB",
    "Used",
];
const TAGS: &[&[&str]] = &[
    &["web-1", "api-gateway", "batch-worker", ""],
    &["payments", "search", "platform", "data", ""],
    &["prod", "staging", "dev", ""],
    &["CC-1001", "CC-2002", "CC-3003", ""],
];

/// Context shared by all rows of a sample.
pub struct Ctx {
    pub year: i32,
    pub month: u32,
    pub next_year: i32,
    pub next_month: u32,
    pub invoice: String,
}

fn ts(out: &mut String, y: i32, m: u32, d: u32, h: u32) {
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:00:00Z");
}

fn money_or_empty(out: &mut String, v: i64, present: bool) {
    if present {
        units_str(v, out);
    }
}

/// Render one cell of `g` into `out` (text; numbers as decimal strings).
pub fn render(cell: Cell, g: &GenRow, gen: &RowGen, ctx: &Ctx, out: &mut String) {
    use Cell::*;
    let svc = &SERVICES[g.service];
    let (_, operation, unit) = svc.usage[g.usage];
    let (region, location) = REGIONS[g.region];
    let d = g.day + 1;
    match cell {
        LineItemId => {
            let _ = write!(
                out,
                "{:016x}{:016x}{:020x}",
                g.id.wrapping_mul(0x2545_f491_4f6c_dd1d),
                g.id,
                g.id ^ 0xdead_beef
            );
        }
        TimeInterval => {
            ts(out, ctx.year, ctx.month, d, g.hour);
            out.push('/');
            ts(out, ctx.year, ctx.month, d, g.hour.min(22) + 1);
        }
        InvoiceId => out.push_str(&ctx.invoice),
        InvoicingEntity | BillingEntity | LegalEntity => out.push_str(if cell == BillingEntity {
            "AWS"
        } else {
            "Amazon Web Services, Inc."
        }),
        BillType => out.push_str("Anniversary"),
        Payer => out.push_str(&gen.payer),
        BpStart => ts(out, ctx.year, ctx.month, 1, 0),
        BpEnd => ts(out, ctx.next_year, ctx.next_month, 1, 0),
        Account => out.push_str(&gen.accounts[g.account]),
        Lit => out.push_str(g.line_item_type),
        UsageStart => ts(out, ctx.year, ctx.month, d, g.hour),
        UsageEnd => ts(out, ctx.year, ctx.month, d, g.hour.min(22) + 1),
        ProductCode => out.push_str(g.product_code),
        UsageType => {
            let _ = write!(out, "{}-", &region[..2].to_ascii_uppercase());
            usage_type(g, out);
        }
        Operation | ProductOperation => out.push_str(operation),
        Az => {
            if g.service.is_multiple_of(3) {
                let _ = write!(out, "{region}{}", ['a', 'b', 'c'][g.usage % 3]);
            }
        }
        ResourceId => {
            if g.line_item_type == "Usage" {
                let _ = write!(
                    out,
                    "arn:aws:{}:{region}:{}:resource/r-{:012x}",
                    svc.code.to_ascii_lowercase(),
                    gen.accounts[g.account],
                    g.id % gen.cardinality.resources()
                );
            }
        }
        UsageAmount => units_str(g.usage_amount, out),
        NormFactor => out.push_str(if g.service == 0 { "4" } else { "" }),
        NormUsage => {
            if g.service == 0 {
                units_str(g.usage_amount * 4, out);
            }
        }
        Currency => out.push_str("USD"),
        UnblendedRate | BlendedRate | NetRate => out.push_str("0.0960000000"),
        Unblended => units_str(g.unblended, out),
        Blended => units_str(g.blended, out),
        Net => units_str(g.net_unblended, out),
        Description => {
            out.push_str("$0.096 per On Demand Linux ");
            usage_type(g, out);
            let _ = write!(out, " in {location} ({})", g.line_item_type);
        }
        TaxType => out.push_str(if g.line_item_type == "Tax" { "VAT" } else { "" }),
        ProductName => out.push_str(svc.name),
        ProductFamily => out.push_str(svc.family),
        Region | RegionCode => out.push_str(region),
        Location => out.push_str(location),
        ServiceCode => out.push_str(svc.code),
        ServiceName => out.push_str(svc.name),
        Sku => {
            let _ = write!(
                out,
                "SKU{:013X}",
                (g.service * 131 + g.usage * 17 + g.region + usize::from(g.variant) * 4099) as u64
                    * 0x9E37_79B9
            );
        }
        ProductUsageType => usage_type(g, out),
        PublicOnDemandCost => units_str(g.public_on_demand, out),
        PublicOnDemandRate => out.push_str("0.1050000000"),
        Term => out.push_str(match g.line_item_type {
            "DiscountedUsage" | "RIFee" => "Reserved",
            "SavingsPlanCoveredUsage" => "Savings Plan",
            _ => "OnDemand",
        }),
        Unit => out.push_str(unit),
        RiEffective => money_or_empty(out, g.ri_effective, g.reservation_arn),
        RiUnusedUpfront => money_or_empty(out, g.ri_unused_upfront, g.line_item_type == "RIFee"),
        RiUnusedRecurring => {
            money_or_empty(out, g.ri_unused_recurring, g.line_item_type == "RIFee")
        }
        RiUnusedQuantity => money_or_empty(out, g.ri_unused_quantity, g.line_item_type == "RIFee"),
        RiArn => {
            if g.reservation_arn {
                let _ = write!(
                    out,
                    "arn:aws:ec2:{region}:{}:reserved-instances/{:08x}-1111-2222-3333-444455556666",
                    gen.payer, g.service
                );
            }
        }
        SpTotal => money_or_empty(
            out,
            g.sp_total_commitment,
            g.line_item_type == "SavingsPlanRecurringFee",
        ),
        SpUsed => money_or_empty(
            out,
            g.sp_used_commitment,
            g.line_item_type == "SavingsPlanRecurringFee",
        ),
        SpEffective => money_or_empty(
            out,
            g.sp_effective,
            g.line_item_type == "SavingsPlanCoveredUsage",
        ),
        SpArn => {
            if g.sp_arn {
                let _ = write!(
                    out,
                    "arn:aws:savingsplans::{}:savingsplan/{:08x}-aaaa-bbbb-cccc-ddddeeeeffff",
                    gen.payer, g.account
                );
            }
        }
        SpOffering => {
            if g.sp_arn {
                out.push_str("ComputeSavingsPlans");
            }
        }
        Tag(i) => {
            let vals = TAGS[i as usize % TAGS.len()];
            out.push_str(vals[(g.account + g.service * (i as usize + 1)) % vals.len()]);
        }
        Filler(i) => out.push_str(
            FILLER_VALUES[(i as usize * 7 + g.service * 3 + g.usage) % FILLER_VALUES.len()],
        ),
        Blank => {}
    }
}
