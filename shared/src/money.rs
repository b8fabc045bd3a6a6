//! Exact money: decimal strings become [`Decimal`] without passing through f64.
//!
//! Invariant: on the CSV path no f64 ever touches a money value. Parquet DOUBLE
//! columns are converted once per value with [`from_f64`] (shortest round-trip
//! representation), then summed exactly.

use rust_decimal::Decimal;
use std::str::FromStr;

pub use rust_decimal::Decimal as Money;

/// Why a money field could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a decimal number")]
pub struct BadNumber(pub String);

/// Parse a decimal field as AWS writes it: `12.3400000000`, `-0.01`, `1.5E-7`,
/// an empty field (zero). The literal `NULL` (FOCUS samples) is treated as empty.
pub fn parse_money(raw: &[u8]) -> Result<Option<Decimal>, BadNumber> {
    let raw = trim(raw);
    if raw.is_empty() || raw == b"NULL" || raw == b"null" {
        return Ok(None);
    }
    let bad = || BadNumber(String::from_utf8_lossy(raw).into_owned());
    let s = std::str::from_utf8(raw).map_err(|_| bad())?;
    if let Some(d) = parse_plain(raw) {
        return Ok(Some(d));
    }
    if s.contains(['e', 'E']) {
        return Decimal::from_scientific(s).map(Some).map_err(|_| bad());
    }
    Decimal::from_str_exact(s).map(Some).map_err(|_| bad())
}

/// Fast path for the common `[-]digits[.digits]` form with at most 28 digits.
fn parse_plain(raw: &[u8]) -> Option<Decimal> {
    let (neg, digits) = match raw.first()? {
        b'-' => (true, &raw[1..]),
        b'+' => (false, &raw[1..]),
        _ => (false, raw),
    };
    if digits.is_empty() || digits.len() > 29 {
        return None;
    }
    let mut mantissa: i128 = 0;
    let mut scale: u32 = 0;
    let mut seen_dot = false;
    let mut ndigits = 0;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + i128::from(b - b'0');
                ndigits += 1;
                if seen_dot {
                    scale += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if ndigits == 0 || ndigits > 28 {
        return None;
    }
    let m = if neg { -mantissa } else { mantissa };
    Decimal::try_from_i128_with_scale(m, scale).ok()
}

fn trim(raw: &[u8]) -> &[u8] {
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &raw[start..end]
}

/// Convert a Parquet DOUBLE once, to the shortest decimal that round-trips.
pub fn from_f64(v: f64) -> Option<Decimal> {
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return Some(Decimal::ZERO);
    }
    // Fast path: a value with at most 12 decimals (what AWS writes) is found
    // exactly: r / 10^12 rounds back to `v`, so r·10^-12 is a decimal for `v`.
    if v.abs() < 9_000.0 {
        let r = (v * 1e12).round();
        if r / 1e12 == v {
            return Some(Decimal::from_i128_with_scale(r as i128, 12));
        }
    }
    // ryu prints the shortest representation that round-trips to `v`.
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v);
    parse_plain(s.as_bytes())
        .or_else(|| Decimal::from_scientific(s).ok())
        .or_else(|| Decimal::from_str(s).ok())
        .or_else(|| Decimal::from_f64_retain(v))
}

/// An exact running sum that is cheap to add to: a fixed-point i128 at 18
/// decimals, with a [`Decimal`] beside it for any value that does not fit
/// (more than 18 decimals, or i128 overflow). Nothing is ever rounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accumulator {
    fixed: i128,
    spill: Decimal,
}

const ACC_SCALE: u32 = 18;
const POW10: [i128; 19] = {
    let mut t = [1i128; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Accumulator {
    #[inline]
    pub fn add(&mut self, d: Decimal) {
        let scale = d.scale();
        if scale <= ACC_SCALE {
            if let Some(v) = d
                .mantissa()
                .checked_mul(POW10[(ACC_SCALE - scale) as usize])
                .and_then(|v| self.fixed.checked_add(v))
            {
                self.fixed = v;
                return;
            }
        }
        self.spill += d;
    }

    /// The exact sum (trailing zeros removed).
    pub fn value(&self) -> Decimal {
        let mut m = self.fixed;
        let mut scale = ACC_SCALE;
        while scale > 0 && m % 10 == 0 {
            m /= 10;
            scale -= 1;
        }
        let fixed = Decimal::try_from_i128_with_scale(m, scale).unwrap_or_else(|_| {
            // Beyond 28 significant digits: the integer and fraction parts separately.
            let int = Decimal::from_i128_with_scale(self.fixed / POW10[ACC_SCALE as usize], 0);
            int + Decimal::from_i128_with_scale(self.fixed % POW10[ACC_SCALE as usize], ACC_SCALE)
        });
        (fixed + self.spill).normalize()
    }
}

/// Parse a decimal that is known to be valid (used for constants and tests).
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).expect("valid decimal literal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_scientific_and_empty() {
        assert_eq!(parse_money(b"12.3400000000").unwrap(), Some(dec("12.34")));
        assert_eq!(parse_money(b"-0.01").unwrap(), Some(dec("-0.01")));
        assert_eq!(parse_money(b"1.5E-7").unwrap(), Some(dec("0.00000015")));
        assert_eq!(parse_money(b"").unwrap(), None);
        assert_eq!(parse_money(b"NULL").unwrap(), None);
        assert_eq!(parse_money(b" 3 ").unwrap(), Some(dec("3")));
        assert!(parse_money(b"12,5").is_err());
        assert!(parse_money(b"abc").is_err());
        assert!(parse_money(b"1.2.3").is_err());
    }

    #[test]
    fn keeps_every_digit() {
        let v = parse_money(b"0.0000000012345678901234567")
            .unwrap()
            .unwrap();
        assert_eq!(v.to_string(), "0.0000000012345678901234567");
        let a = parse_money(b"0.1").unwrap().unwrap();
        let b = parse_money(b"0.2").unwrap().unwrap();
        assert_eq!((a + b).to_string(), "0.3");
    }

    #[test]
    fn accumulator_is_exact_including_spills() {
        let mut a = Accumulator::default();
        for v in [
            "0.1",
            "0.2",
            "-0.05",
            "1e-20",
            "123456789.123456789012345678",
        ] {
            a.add(parse_money(v.as_bytes()).unwrap().unwrap());
        }
        assert_eq!(
            a.value(),
            dec("123456789.373456789012345678") + dec("0.00000000000000000001")
        );
    }

    #[test]
    fn doubles_convert_to_shortest_decimal() {
        assert_eq!(from_f64(0.1).unwrap(), dec("0.1"));
        assert_eq!(from_f64(4064.4831315379).unwrap(), dec("4064.4831315379"));
        assert_eq!(from_f64(18406679.5089076).unwrap(), dec("18406679.5089076"));
        assert_eq!(from_f64(1e-10).unwrap(), dec("0.0000000001"));
        assert_eq!(from_f64(123456.789).unwrap(), dec("123456.789"));
        assert!(from_f64(f64::NAN).is_none());
    }
}
