//! The export's [`RowSink`]: each row's key and measures from
//! [`Normaliser::line`] (the rollup's own rules), its FOCUS values from
//! [`crate::focus`], its other columns passed through, appended to the
//! export file of its billing period.

use super::columns::COLUMNS;
use super::time::{parse_ms, period_bounds_ms};
use super::writer::{ExportFile, Value, WriteError};
use super::{OtherProviderRows, Totals};
use crate::fields::Field;
use crate::focus;
use crate::money::{to_sum_units_rounded, Money};
use crate::read::{quoted, BadField, Line, Normaliser, RowAccess, RowSink};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One input file's rows on their way to its export files.
pub struct FocusSink<'a> {
    out: &'a Path,
    file_name: &'a str,
    /// The delivery's billing period (its manifest's); `None` for bare files.
    period: Option<&'a str>,
    files: BTreeMap<String, ExportFile>,
    pub totals: BTreeMap<String, Totals>,
    pub other_providers: BTreeMap<String, OtherProviderRows>,
    /// Rows of another billing period than the manifest's: counted, not
    /// written (as ingestion counts them in `off_period`).
    pub off_period_rows: u64,
    /// The write that failed (the read then stops at that row).
    pub error: Option<WriteError>,
    tags: BTreeMap<String, serde_json::Value>,
}

fn text<R: RowAccess>(r: &R, f: Field) -> Result<Option<&str>, BadField> {
    utf8(r.text(f), f)
}

fn utf8(b: &[u8], f: Field) -> Result<Option<&str>, BadField> {
    if b.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(b).map(Some).map_err(|_| BadField {
        field: f,
        problem: format!("{} is not UTF-8 text", quoted(b)),
    })
}

fn number<R: RowAccess>(r: &R, f: Field) -> Result<Option<Money>, BadField> {
    r.number(f).map_err(|e| BadField {
        field: f,
        problem: e.to_string(),
    })
}

/// A decimal as DECIMAL(38,18) units; a value beyond it is the row's error.
fn units(v: Money, column: &str, f: Field) -> Result<i128, BadField> {
    to_sum_units_rounded(v).ok_or_else(|| BadField {
        field: f,
        problem: format!("{column} {v} does not fit DECIMAL(38,18), the export's type for money and quantities (|value| < 1e20); the amount is corrupt"),
    })
}

/// The export's key of a legacy tag column: the key CUR 2.0's
/// `resource_tags` map has for it, AWS's Athena renaming without the
/// `resource_tags_` prefix (`resourceTags/user:CostCenter` and
/// `resource_tags_user_cost_center` -> `user_cost_center`), so a tag has one
/// key whatever the input format.
pub fn legacy_tag_key(column: &str) -> String {
    let athena = crate::sample::athena_name(column);
    match athena.strip_prefix("resource_tags_") {
        Some(key) => key.to_owned(),
        None => athena,
    }
}

impl<'a> FocusSink<'a> {
    pub fn new(out: &'a Path, file_name: &'a str, period: Option<&'a str>) -> Self {
        FocusSink {
            out,
            file_name,
            period,
            files: BTreeMap::new(),
            totals: BTreeMap::new(),
            other_providers: BTreeMap::new(),
            off_period_rows: 0,
            error: None,
            tags: BTreeMap::new(),
        }
    }

    /// Close every file; the (period, path, rows) of each written.
    pub fn finish(&mut self) -> Result<Vec<(String, PathBuf, u64)>, WriteError> {
        let mut done = Vec::new();
        let files = std::mem::take(&mut self.files);
        let mut first_err = None;
        for (period, f) in files {
            if first_err.is_some() {
                f.abandon();
                continue;
            }
            let rows = f.rows;
            match f.finish() {
                Ok(path) => done.push((period, path, rows)),
                Err(e) => first_err = Some(e),
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// Remove every partial file.
    pub fn abandon(&mut self) {
        for (_, f) in std::mem::take(&mut self.files) {
            f.abandon();
        }
    }

    /// The row's tags as a JSON object (keys sorted), `None` without any.
    fn tags_json<R: RowAccess>(&mut self, r: &R) -> Result<Option<String>, BadField> {
        self.tags.clear();
        let tags = &mut self.tags;
        r.legacy_tags(&mut |column, v| {
            // Two columns with one key: the first wins (as AWS's renaming).
            tags.entry(legacy_tag_key(column)).or_insert_with(|| {
                serde_json::Value::String(String::from_utf8_lossy(v).into_owned())
            });
        });
        let raw = r.text(Field::TagsMap);
        if !raw.is_empty() {
            let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(raw)
                .map_err(|e| BadField {
                    field: Field::TagsMap,
                    problem: format!("{} is not a JSON object of tags: {e}", quoted(raw)),
                })?;
            self.tags.extend(parsed);
        }
        if self.tags.is_empty() {
            return Ok(None);
        }
        serde_json::to_string(&self.tags)
            .map(Some)
            .map_err(|e| BadField {
                field: Field::TagsMap,
                problem: e.to_string(),
            })
    }
}

impl RowSink for FocusSink<'_> {
    fn export(&self) -> bool {
        true
    }

    fn row<R: RowAccess>(&mut self, norm: &mut Normaliser, r: &R) -> Result<(), BadField> {
        let is_focus = norm.dialect.is_focus();
        let (item, _rule) = match norm.line(r)? {
            Line::OtherProvider {
                provider, billed, ..
            } => {
                let p = self
                    .other_providers
                    .entry(String::from_utf8_lossy(provider).into_owned())
                    .or_default();
                p.rows += 1;
                p.billed_cost += billed;
                return Ok(());
            }
            Line::Item { item, rule, .. } => (item, rule),
        };
        let g = item.group;
        let m = item.measures;
        let period = utf8(g.period, Field::BillingPeriodStart)?.unwrap_or_default();
        if self.period.is_some_and(|p| p != period) {
            self.off_period_rows += 1;
            return Ok(());
        }
        let (start_field, bad_time) = if is_focus {
            (Field::ChargePeriodStart, "ChargePeriodStart")
        } else {
            (Field::UsageStart, "the usage start")
        };
        let start = parse_ms(r.text(start_field)).ok_or_else(|| BadField {
            field: start_field,
            problem: format!(
                "{} is not a timestamp ({bad_time})",
                quoted(r.text(start_field))
            ),
        })?;
        let end_raw = r.text(Field::UsageEnd);
        let end = if end_raw.is_empty() {
            None
        } else {
            Some(parse_ms(end_raw).ok_or_else(|| BadField {
                field: Field::UsageEnd,
                problem: format!("{} is not a timestamp", quoted(end_raw)),
            })?)
        };
        let (bp_start, bp_end) = period_bounds_ms(period).ok_or_else(|| BadField {
            field: Field::BillingPeriodStart,
            problem: format!("{} is not a billing period", quoted(g.period)),
        })?;
        // Where a bad measure is reported: the column it came from.
        let (f_billed, f_list, f_qty) = if is_focus {
            (Field::BilledCost, Field::ListCost, Field::ConsumedQuantity)
        } else {
            (
                Field::UnblendedCost,
                Field::PublicOnDemandCost,
                Field::UsageAmount,
            )
        };
        let f_effective = if is_focus {
            Field::EffectiveCost
        } else {
            Field::UnblendedCost
        };
        let f_contracted = if is_focus {
            Field::ContractedCost
        } else {
            Field::UnblendedCost
        };
        let billed = units(m.billed, "BilledCost", f_billed)?;
        let effective = units(m.effective, "EffectiveCost", f_effective)?;
        let list = units(m.list, "ListCost", f_list)?;
        let contracted = units(
            m.contracted.unwrap_or(m.billed),
            "ContractedCost",
            f_contracted,
        )?;
        let consumed = if is_focus {
            number(r, Field::ConsumedQuantity)?
        } else {
            Some(m.usage_amount)
        };
        let consumed = consumed
            .map(|v| units(v, "ConsumedQuantity", f_qty))
            .transpose()?;
        let pricing_qty = if is_focus {
            number(r, Field::PricingQuantity)?
        } else {
            Some(m.usage_amount)
        };
        let pricing_qty = pricing_qty
            .map(|v| units(v, "PricingQuantity", Field::PricingQuantity))
            .transpose()?;
        let unit_price = number(r, Field::ListUnitPrice)?
            .map(|v| units(v, "ListUnitPrice", Field::ListUnitPrice))
            .transpose()?;

        let code = utf8(g.service_code, Field::ProductCode)?;
        let region = utf8(g.region, Field::Region)?;
        let lit = utf8(g.line_item_type, Field::LineItemType)?;
        let day = utf8(g.day, start_field)?.unwrap_or_default();
        let (charge_class, frequency, category, region_name, provider, commitment, lit) =
            if is_focus {
                (
                    text(r, Field::FocusChargeClass)?,
                    text(r, Field::FocusChargeFrequency)?,
                    text(r, Field::FocusServiceCategory)?
                        .unwrap_or_else(|| focus::service_category(code.unwrap_or_default())),
                    text(r, Field::FocusRegionName)?
                        .or_else(|| focus::region_name(region.unwrap_or_default())),
                    text(r, Field::ProviderName)?.unwrap_or(focus::PROVIDER_NAME),
                    text(r, Field::CommitmentDiscountId)?,
                    text(r, Field::FocusLineItemType)?,
                )
            } else {
                let t = lit.unwrap_or_default();
                (
                    focus::charge_class(t, day, period),
                    Some(focus::charge_frequency(t)),
                    focus::service_category(code.unwrap_or_default()),
                    focus::region_name(region.unwrap_or_default()),
                    focus::PROVIDER_NAME,
                    text(r, Field::ReservationArn)?.or(text(r, Field::SavingsPlanArn)?),
                    lit,
                )
            };
        let consumed_unit = if is_focus {
            text(r, Field::ConsumedUnit)?
        } else {
            text(r, Field::PricingUnit)?
        };
        let tags = self.tags_json(r)?;
        let values = [
            Value::Text(utf8(g.payer, Field::PayerAccount)?),
            Value::Text(utf8(g.currency, Field::Currency)?),
            Value::Time(Some(bp_start)),
            Value::Time(Some(bp_end)),
            Value::Time(Some(start)),
            Value::Time(end),
            Value::Text(utf8(g.charge_category, Field::LineItemType)?),
            Value::Text(charge_class),
            Value::Text(text(r, Field::Description)?),
            Value::Text(frequency),
            Value::Decimal(Some(billed)),
            Value::Decimal(Some(effective)),
            Value::Decimal(Some(list)),
            Value::Decimal(Some(contracted)),
            Value::Decimal(consumed),
            Value::Text(consumed_unit),
            Value::Decimal(pricing_qty),
            Value::Text(text(r, Field::PricingUnit)?),
            Value::Decimal(unit_price),
            Value::Text(Some(provider)),
            Value::Text(Some(
                text(r, Field::LegalEntity)?.unwrap_or(focus::PUBLISHER_NAME),
            )),
            Value::Text(Some(
                text(r, Field::InvoicingEntity)?.unwrap_or(focus::INVOICE_ISSUER_NAME),
            )),
            Value::Text(text(r, Field::InvoiceId)?),
            Value::Text(region),
            Value::Text(region_name),
            Value::Text(text(r, Field::AvailabilityZone)?),
            Value::Text(text(r, Field::ResourceId)?),
            Value::Text(Some(category)),
            Value::Text(utf8(g.service_name, Field::ProductName)?),
            Value::Text(text(r, Field::SkuId)?),
            Value::Text(utf8(g.account, Field::UsageAccount)?),
            Value::Text(commitment),
            Value::Text(tags.as_deref()),
            Value::Text(code),
            Value::Text(utf8(g.usage_type, Field::UsageType)?),
            Value::Text(text(r, Field::Operation)?),
            Value::Text(lit),
        ];
        debug_assert_eq!(values.len(), COLUMNS.len());
        let t = self.totals.entry(period.to_owned()).or_default();
        t.add(billed, effective, list, contracted, consumed.unwrap_or(0));
        if !self.files.contains_key(period) {
            let path = self
                .out
                .join(format!("billing_period={period}"))
                .join(self.file_name);
            match ExportFile::create(&path) {
                Ok(f) => {
                    self.files.insert(period.to_owned(), f);
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        let pushed = match self.files.get_mut(period) {
            Some(f) => f.push(&values),
            None => Ok(()),
        };
        pushed.map_err(|e| self.failed(e))
    }
}

impl FocusSink<'_> {
    /// Keep a write failure (it outranks the read error it becomes).
    fn failed(&mut self, e: WriteError) -> BadField {
        let problem = e.to_string();
        self.error = Some(e);
        BadField {
            field: Field::BilledCost,
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::legacy_tag_key;
    use crate::dimensions::Dimensions;

    /// The export names a legacy tag column's key by AWS's Athena renaming;
    /// a dimension finds a tag by canonical name. The two rules agree: the
    /// dimension that reads a column also finds the key the export gives it,
    /// so `--tag K` over an exported FOCUS file groups the same rows.
    #[test]
    fn the_exports_tag_keys_are_found_by_the_dimension_rule() {
        for (tag, columns) in [
            (
                "CostCenter",
                [
                    "resourceTags/user:CostCenter",
                    "resource_tags_user_cost_center",
                ],
            ),
            (
                "aws:createdBy",
                ["resourceTags/aws:createdBy", "resource_tags_aws_created_by"],
            ),
            (
                "team",
                ["resourceTags/user:team", "resource_tags_user_team"],
            ),
        ] {
            let dims = Dimensions::from_args(&[tag.to_string()], &[]).unwrap();
            let d = dims.iter().next().unwrap();
            for column in columns {
                assert!(d.is_column(column), "{tag} reads {column}");
                let key = legacy_tag_key(column);
                assert!(
                    d.map_key_match(&key) > 0,
                    "{tag} finds the export's key {key} (of {column})"
                );
            }
        }
    }
}
