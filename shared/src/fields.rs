//! Column naming: one logical [`Field`] per billing column curlew reads, found
//! in any dialect by a canonical form of the header name.
//!
//! `lineItem/UnblendedCost`, `line_item_unblended_cost` and `LineItem_UnblendedCost`
//! all canonicalise to `lineitemunblendedcost`, so the legacy slash style, the
//! legacy Athena snake_case and CUR 2.0 share one table. FOCUS names
//! (`BilledCost`) canonicalise the same way. Map columns of CUR 2.0 (`product`)
//! are consulted through [`MAP_FALLBACKS`].

/// Which family of billing data a file holds, detected from its header/schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// Legacy CUR with `lineItem/UnblendedCost` style headers (CSV).
    Cur1Slash,
    /// Legacy CUR in the Athena/Parquet snake_case style (`line_item_unblended_cost`).
    Cur1Snake,
    /// CUR 2.0 Data Export (snake_case, `product` / `resource_tags` map columns).
    Cur2,
    /// FOCUS 1.x (`BilledCost`, `EffectiveCost`, `SubAccountId`, ...).
    Focus,
}

impl Dialect {
    pub fn is_focus(self) -> bool {
        matches!(self, Dialect::Focus)
    }

    /// Detect the dialect from the raw column names of a file.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> Option<Dialect> {
        let has = |want: &str| names.clone().into_iter().any(|n| n == want);
        let canon_has = |want: &str| names.clone().into_iter().any(|n| canonical(n) == want);
        if has("lineItem/UnblendedCost") || has("lineItem/LineItemType") {
            Some(Dialect::Cur1Slash)
        } else if canon_has("lineitemunblendedcost") || canon_has("lineitemlineitemtype") {
            if has("product")
                || has("resource_tags")
                || has("bill_billing_period_start_date") && has("cost_category")
            {
                Some(Dialect::Cur2)
            } else {
                Some(Dialect::Cur1Snake)
            }
        } else if has("BilledCost") && (has("ChargeCategory") || has("ChargePeriodStart")) {
            Some(Dialect::Focus)
        } else {
            None
        }
    }
}

/// Lower-case ASCII alphanumerics only: the dialect-free form of a column name.
pub fn canonical(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

macro_rules! fields {
    ($($variant:ident => [$($name:literal),+ $(,)?]),+ $(,)?) => {
        /// A logical column curlew reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field { $($variant),+ }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$variant),+];

            /// Canonical names that hold this field, most preferred first.
            pub fn candidates(self) -> &'static [&'static str] {
                match self { $(Field::$variant => &[$($name),+]),+ }
            }
        }
    };
}

fields! {
    // --- CUR (all generations) ---
    PayerAccount => ["billpayeraccountid"],
    BillingPeriodStart => ["billbillingperiodstartdate", "billingperiodstart"],
    UsageAccount => ["lineitemusageaccountid"],
    LineItemType => ["lineitemlineitemtype"],
    UsageStart => ["lineitemusagestartdate"],
    ProductCode => ["lineitemproductcode"],
    ProductName => ["productproductname"],
    UsageType => ["lineitemusagetype"],
    Region => ["productregioncode", "productregion"],
    AvailabilityZone => ["lineitemavailabilityzone", "availabilityzone"],
    Currency => ["lineitemcurrencycode", "billingcurrency"],
    UsageAmount => ["lineitemusageamount"],
    UnblendedCost => ["lineitemunblendedcost"],
    NetUnblendedCost => ["lineitemnetunblendedcost"],
    BlendedCost => ["lineitemblendedcost"],
    PublicOnDemandCost => ["pricingpublicondemandcost"],
    SpEffectiveCost => ["savingsplansavingsplaneffectivecost"],
    SpTotalCommitment => ["savingsplantotalcommitmenttodate"],
    SpUsedCommitment => ["savingsplanusedcommitment"],
    RiEffectiveCost => ["reservationeffectivecost"],
    RiUnusedAmortizedUpfront => ["reservationunusedamortizedupfrontfeeforbillingperiod"],
    RiUnusedRecurring => ["reservationunusedrecurringfee"],
    ReservationArn => ["reservationreservationarn"],
    // --- commitments (crate::commitments): read on commitment rows only ---
    SavingsPlanArn => ["savingsplansavingsplanarn"],
    RiUnusedQuantity => ["reservationunusedquantity"],
    CommitmentDiscountId => ["commitmentdiscountid"],
    CommitmentDiscountStatus => ["commitmentdiscountstatus"],
    CommitmentDiscountType => ["commitmentdiscounttype"],
    CommitmentDiscountQuantity => ["commitmentdiscountquantity"],
    // --- FOCUS ---
    BillingAccountId => ["billingaccountid"],
    SubAccountId => ["subaccountid"],
    ChargePeriodStart => ["chargeperiodstart"],
    ChargeCategory => ["chargecategory"],
    ServiceName => ["servicename"],
    RegionId => ["regionid"],
    ProviderName => ["serviceprovidername", "providername"],
    BilledCost => ["billedcost"],
    EffectiveCost => ["effectivecost"],
    ListCost => ["listcost"],
    ContractedCost => ["contractedcost"],
    ConsumedQuantity => ["consumedquantity"],
    XServiceCode => ["xservicecode"],
    XUsageType => ["xusagetype"],
    // Finality: AWS fills it once the month is invoiced.
    InvoiceId => ["billinvoiceid", "invoiceid"],
    // --- tag and cost category maps: CUR 2.0 `resource_tags` / `cost_category`
    // (a map in Parquet, JSON text in CSV), FOCUS `Tags` / `x_CostCategories`;
    // read for a dimension, and the tag map by the export ---
    TagsMap => ["tags", "resourcetags"],
    CostCategoriesMap => ["xcostcategories", "costcategory"],
    // --- the tenant's dimensions (crate::dimensions), by position: never
    // found by name ("-" is no canonical name), only by ColumnMap::resolve_with ---
    Dim0 => ["-"],
    Dim1 => ["-"],
    Dim2 => ["-"],
    Dim3 => ["-"],
    // --- read only by the line-level export (`crate::export`), never projected
    // for a rollup: see [`Field::is_export_only`]. CUR and FOCUS names share a
    // field where they mean the same.
    UsageEnd => ["lineitemusageenddate", "chargeperiodend"],
    BillingPeriodEnd => ["billbillingperiodenddate", "billingperiodend"],
    InvoicingEntity => ["billinvoicingentity", "invoiceissuername"],
    LegalEntity => ["lineitemlegalentity", "publishername"],
    Description => ["lineitemlineitemdescription", "chargedescription"],
    Operation => ["lineitemoperation", "xoperation"],
    ResourceId => ["lineitemresourceid", "resourceid"],
    SkuId => ["productsku", "skuid"],
    PricingUnit => ["pricingunit"],
    ConsumedUnit => ["consumedunit"],
    FocusChargeClass => ["chargeclass"],
    FocusChargeFrequency => ["chargefrequency"],
    FocusServiceCategory => ["servicecategory"],
    FocusRegionName => ["regionname"],
    FocusLineItemType => ["xlineitemtype"],
    PricingQuantity => ["pricingquantity"],
    ListUnitPrice => ["pricingpublicondemandrate", "listunitprice"],
}

/// The field of the `i`th dimension ([`crate::dimensions::MAX_DIMENSIONS`] of them).
pub const DIMS: [Field; crate::dimensions::MAX_DIMENSIONS] =
    [Field::Dim0, Field::Dim1, Field::Dim2, Field::Dim3];

impl Field {
    /// Money and quantities (read as numbers); everything else is text.
    pub fn is_numeric(self) -> bool {
        use Field::*;
        matches!(
            self,
            UsageAmount
                | UnblendedCost
                | NetUnblendedCost
                | BlendedCost
                | PublicOnDemandCost
                | SpEffectiveCost
                | SpTotalCommitment
                | SpUsedCommitment
                | RiEffectiveCost
                | RiUnusedAmortizedUpfront
                | RiUnusedRecurring
                | RiUnusedQuantity
                | CommitmentDiscountQuantity
                | BilledCost
                | EffectiveCost
                | ListCost
                | ContractedCost
                | ConsumedQuantity
                | PricingQuantity
                | ListUnitPrice
        )
    }

    /// Columns only the line-level export reads: a rollup never projects or
    /// decodes them.
    pub fn is_export_only(self) -> bool {
        (self as usize) >= (Field::UsageEnd as usize)
    }
}

use crate::dimensions::{Dimensions, Kind};

/// The map column a dimension is read from when no flat column holds it:
/// cost categories from their own map, else (FOCUS 1.2) from the tag map.
pub fn map_of(kind: Kind, columns: &ColumnMap) -> Option<Field> {
    match kind {
        Kind::Tag => Some(Field::TagsMap),
        Kind::CostCategory => Some(Field::CostCategoriesMap)
            .filter(|f| columns.get(*f).is_some())
            .or(Some(Field::TagsMap)),
    }
    .filter(|f| columns.get(*f).is_some())
}

/// Fields that CUR 2.0 may only carry inside a map column: (field, map column, key).
pub const MAP_FALLBACKS: &[(Field, &str, &[&str])] = &[
    (
        Field::Region,
        "product",
        &["region_code", "region", "regionCode"],
    ),
    (
        Field::ProductName,
        "product",
        &["product_name", "productName"],
    ),
];

/// The fields a dialect cannot be ingested without.
pub fn required(dialect: Dialect) -> &'static [Field] {
    match dialect {
        Dialect::Focus => &[
            Field::BilledCost,
            Field::ChargePeriodStart,
            Field::SubAccountId,
        ],
        _ => &[
            Field::UnblendedCost,
            Field::LineItemType,
            Field::UsageAccount,
            Field::UsageStart,
        ],
    }
}

/// The source column name to show in an error for a missing field.
pub fn display_name(field: Field, dialect: Dialect) -> String {
    let canon = field.candidates()[0];
    match dialect {
        Dialect::Focus => match field {
            Field::BilledCost => "BilledCost".into(),
            Field::ChargePeriodStart => "ChargePeriodStart".into(),
            Field::SubAccountId => "SubAccountId".into(),
            _ => canon.into(),
        },
        Dialect::Cur1Slash => match field {
            Field::UnblendedCost => "lineItem/UnblendedCost".into(),
            Field::LineItemType => "lineItem/LineItemType".into(),
            Field::UsageAccount => "lineItem/UsageAccountId".into(),
            Field::UsageStart => "lineItem/UsageStartDate".into(),
            _ => canon.into(),
        },
        _ => match field {
            Field::UnblendedCost => "line_item_unblended_cost".into(),
            Field::LineItemType => "line_item_line_item_type".into(),
            Field::UsageAccount => "line_item_usage_account_id".into(),
            Field::UsageStart => "line_item_usage_start_date".into(),
            _ => canon.into(),
        },
    }
}

/// Where each field sits in a particular file: column index per [`Field`],
/// and for a field whose candidates the file has several of, the next one:
/// a row whose preferred column is empty takes its value from there (legacy
/// CUR leaves `product/regionCode` empty on inter-region transfer and
/// `global` rows that do carry `product/region`).
#[derive(Debug, Clone, Default)]
pub struct ColumnMap {
    index: Vec<Option<usize>>,
    alternate: Vec<Option<usize>>,
}

impl ColumnMap {
    /// Resolve every field against the file's column names (in file order).
    pub fn resolve<'a>(names: impl IntoIterator<Item = &'a str>) -> ColumnMap {
        Self::resolve_with(names, &Dimensions::default())
    }

    /// [`ColumnMap::resolve`], and each dimension to the flat column that
    /// holds it (legacy CUR); a dimension in a map column stays unresolved
    /// here (see [`ColumnMap::set`]).
    pub fn resolve_with<'a>(
        names: impl IntoIterator<Item = &'a str>,
        dims: &Dimensions,
    ) -> ColumnMap {
        Self::resolve_for(names, dims, false)
    }

    /// [`Self::resolve_with`] for a reader that feeds the line-level export
    /// (`export`), which also reads the tag map ([`Field::TagsMap`]) whatever
    /// the dimensions.
    pub fn resolve_for<'a>(
        names: impl IntoIterator<Item = &'a str>,
        dims: &Dimensions,
        export: bool,
    ) -> ColumnMap {
        let names: Vec<&str> = names.into_iter().collect();
        let mut map = Self::resolve_names(&names);
        for (d, field) in dims.iter().zip(DIMS) {
            map.index[field as usize] = names.iter().position(|n| d.is_column(n));
        }
        // A map column is read only for a dimension that may be in it (a
        // cost category may be in the combined tag map: FOCUS 1.2 `Tags`).
        let any = |kind: Kind| dims.iter().any(|d| d.kind == kind);
        for (wanted, field) in [
            (!dims.is_empty() || export, Field::TagsMap),
            (any(Kind::CostCategory), Field::CostCategoriesMap),
        ] {
            if !wanted {
                map.index[field as usize] = None;
                map.alternate[field as usize] = None;
            }
        }
        map
    }

    /// Point `field` at column `index` (a dimension read out of a map column).
    pub fn set(&mut self, field: Field, index: usize) {
        self.index[field as usize] = Some(index);
    }

    fn resolve_names(names: &[&str]) -> ColumnMap {
        let canon: Vec<String> = names.iter().map(|n| canonical(n)).collect();
        let present = |f: &Field| -> Vec<usize> {
            f.candidates()
                .iter()
                .filter_map(|want| canon.iter().position(|c| c == want))
                .collect()
        };
        let found: Vec<Vec<usize>> = Field::ALL.iter().map(present).collect();
        ColumnMap {
            index: found.iter().map(|cols| cols.first().copied()).collect(),
            alternate: found.iter().map(|cols| cols.get(1).copied()).collect(),
        }
    }

    pub fn get(&self, field: Field) -> Option<usize> {
        self.index[field as usize]
    }

    /// The column a row falls back to when `field`'s own is empty or null.
    pub fn alternate(&self, field: Field) -> Option<usize> {
        self.alternate[field as usize]
    }

    /// The fields with an alternate column in this file.
    pub fn with_alternates(&self) -> impl Iterator<Item = (Field, usize)> + '_ {
        Field::ALL
            .iter()
            .filter_map(|f| self.alternate(*f).map(|a| (*f, a)))
    }

    /// The first required field of `dialect` that this file lacks.
    pub fn missing_required(&self, dialect: Dialect) -> Option<Field> {
        required(dialect)
            .iter()
            .copied()
            .find(|f| self.get(*f).is_none())
    }

    /// Every column index this map uses, sorted (the Parquet projection).
    pub fn used_columns(&self) -> Vec<usize> {
        self.used_columns_for(false)
    }

    /// [`ColumnMap::used_columns`], with the export's own fields when `export`.
    pub fn used_columns_for(&self, export: bool) -> Vec<usize> {
        let wanted = |i: &usize| export || !Field::ALL[*i].is_export_only();
        let mut v: Vec<usize> = (0..Field::ALL.len())
            .filter(wanted)
            .flat_map(|i| [self.index[i], self.alternate[i]])
            .flatten()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_share_canonical_names() {
        assert_eq!(
            canonical("lineItem/UnblendedCost"),
            canonical("line_item_unblended_cost")
        );
        assert_eq!(
            canonical("reservation/ReservationARN"),
            canonical("reservation_reservation_a_r_n")
        );
        assert_eq!(
            canonical("savingsPlan/SavingsPlanEffectiveCost"),
            canonical("savings_plan_savings_plan_effective_cost")
        );
    }

    #[test]
    fn detects_each_dialect() {
        let slash = [
            "identity/LineItemId",
            "lineItem/UnblendedCost",
            "lineItem/LineItemType",
        ];
        assert_eq!(Dialect::detect(slash), Some(Dialect::Cur1Slash));
        let snake = [
            "line_item_unblended_cost",
            "line_item_line_item_type",
            "product_region",
        ];
        assert_eq!(Dialect::detect(snake), Some(Dialect::Cur1Snake));
        let cur2 = [
            "line_item_unblended_cost",
            "line_item_line_item_type",
            "product",
            "resource_tags",
        ];
        assert_eq!(Dialect::detect(cur2), Some(Dialect::Cur2));
        let focus = ["BilledCost", "ChargeCategory", "SubAccountId"];
        assert_eq!(Dialect::detect(focus), Some(Dialect::Focus));
        assert_eq!(Dialect::detect(["a", "b"]), None);
    }

    #[test]
    fn resolves_reordered_columns() {
        let m = ColumnMap::resolve([
            "resourceTags/user:team",
            "lineItem/UnblendedCost",
            "bill/PayerAccountId",
        ]);
        assert_eq!(m.get(Field::UnblendedCost), Some(1));
        assert_eq!(m.get(Field::PayerAccount), Some(2));
        assert_eq!(m.get(Field::BlendedCost), None);
        assert_eq!(
            m.missing_required(Dialect::Cur1Slash),
            Some(Field::LineItemType)
        );
    }

    #[test]
    fn dimensions_resolve_to_their_flat_columns_only() {
        let dims = Dimensions::from_args(&["team".into(), "app".into()], &["Env".into()]).unwrap();
        let m = ColumnMap::resolve_with(
            [
                "lineItem/UnblendedCost",
                "resourceTags/user:app",
                "costCategory/Env",
                "resourceTags/user:Team",
            ],
            &dims,
        );
        assert_eq!(m.get(Field::Dim0), Some(3));
        assert_eq!(m.get(Field::Dim1), Some(1));
        assert_eq!(m.get(Field::Dim2), Some(2));
        assert_eq!(m.get(Field::Dim3), None);
        let plain = ColumnMap::resolve(["resourceTags/user:Team", "-"]);
        assert_eq!(plain.get(Field::Dim0), None, "no dimension, no column");
        let cur2 = ColumnMap::resolve_with(["resource_tags", "cost_category"], &dims);
        assert_eq!(cur2.get(Field::TagsMap), Some(0));
        assert_eq!(cur2.get(Field::CostCategoriesMap), Some(1));
        assert_eq!(
            cur2.get(Field::Dim0),
            None,
            "in a map: the reader's to find"
        );
        let untouched = ColumnMap::resolve(["resource_tags", "cost_category"]);
        assert_eq!(
            untouched.get(Field::TagsMap),
            None,
            "no dimension: not read"
        );
        assert!(untouched.used_columns().is_empty());
    }

    #[test]
    fn a_field_with_two_candidate_columns_keeps_the_second_as_its_alternate() {
        let m = ColumnMap::resolve([
            "product/region",
            "lineItem/UnblendedCost",
            "product/regionCode",
        ]);
        assert_eq!(m.get(Field::Region), Some(2), "regionCode is preferred");
        assert_eq!(m.alternate(Field::Region), Some(0));
        assert_eq!(
            m.with_alternates().collect::<Vec<_>>(),
            [(Field::Region, 0)]
        );
        assert!(m.used_columns().contains(&0));
        let only = ColumnMap::resolve(["product/region"]);
        assert_eq!(only.get(Field::Region), Some(0));
        assert_eq!(only.alternate(Field::Region), None);
    }
}
