//! Exact money: decimal strings become [`Decimal`] without passing through f64.
//!
//! Invariant: on the CSV path no f64 ever touches a money value. Parquet DOUBLE
//! columns are converted once per value with [`from_f64`] (shortest round-trip
//! representation), then summed exactly.

use rust_decimal::Decimal;
use std::str::FromStr;

pub use rust_decimal::Decimal as Money;

/// Why a money field could not be parsed: the field's text (bytes that are
/// not UTF-8 replaced), shown escaped and cut ([`crate::read::quoted`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a decimal number", crate::read::quoted(.0.as_bytes()))]
pub struct BadNumber(pub String);

/// Parse a decimal field as AWS writes it: `12.3400000000`, `-0.01`, `1.5E-7`,
/// an empty field (zero). The literal `NULL` (FOCUS samples) is treated as empty.
pub fn parse_money(raw: &[u8]) -> Result<Option<Decimal>, BadNumber> {
    let Some(raw) = non_null(raw) else {
        return Ok(None);
    };
    if let Some(d) = parse_plain(raw) {
        return Ok(Some(d));
    }
    let bad = || BadNumber(String::from_utf8_lossy(raw).into_owned());
    let s = std::str::from_utf8(raw).map_err(|_| bad())?;
    if s.contains(['e', 'E']) {
        return Decimal::from_scientific(s).map(Some).map_err(|_| bad());
    }
    Decimal::from_str_exact(s).map(Some).map_err(|_| bad())
}

/// A money value for people to read: rounded to cents, thousands grouped
/// (`-1,234.50`). Display only; files and sums keep every digit.
pub fn display(m: Decimal) -> String {
    let s = format!("{:.2}", m.round_dp(2));
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
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

/// The trimmed text of a number field, `None` when it is empty or null
/// (the one null rule of [`parse_money`] and [`parse_fixed`]).
#[inline]
fn non_null(raw: &[u8]) -> Option<&[u8]> {
    let raw = trim(raw);
    (!(raw.is_empty() || raw == b"NULL" || raw == b"null")).then_some(raw)
}

/// [`parse_money`] straight to [`Fixed`] units, for the plain
/// `[-+]digits[.digits]` form with at most 12 decimals below 4·10^6 (what AWS
/// writes): `Some(value)` is exactly `parse_money(raw)` as units (`Some(None)`
/// for a null). `None` means "not in that form": the caller takes
/// [`parse_money`], which has the other forms and the error.
#[inline]
pub fn parse_fixed(raw: &[u8]) -> Option<Option<Fixed>> {
    let Some(raw) = non_null(raw) else {
        return Some(None);
    };
    let (neg, digits) = match raw[0] {
        b'-' => (true, &raw[1..]),
        b'+' => (false, &raw[1..]),
        _ => (false, raw),
    };
    // 19 digits cannot overflow a u64 before the bound check.
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut units: u64 = 0;
    let mut decimals: Option<u32> = None;
    let mut ndigits = 0;
    for &b in digits {
        match b {
            b'0'..=b'9' if ndigits < 19 => {
                units = units * 10 + u64::from(b - b'0');
                ndigits += 1;
                if let Some(d) = decimals.as_mut() {
                    *d += 1;
                }
            }
            b'.' if decimals.is_none() => decimals = Some(0),
            _ => return None,
        }
    }
    let scale = decimals.unwrap_or(0);
    if ndigits == 0 || scale > FIXED_SCALE {
        return None;
    }
    let units = i128::from(units) * POW10[(FIXED_SCALE - scale) as usize];
    if units >= FIXED_MAX {
        return None;
    }
    Some(Some(if neg { -units } else { units } as Fixed))
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
    if let Some(r) = twelve_decimals(v) {
        return Some(Decimal::from_i128_with_scale(i128::from(r), 12));
    }
    // ryu prints the shortest representation that round-trips to `v`.
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v);
    parse_plain(s.as_bytes())
        .or_else(|| Decimal::from_scientific(s).ok())
        .or_else(|| Decimal::from_str(s).ok())
        .or_else(|| Decimal::from_f64_retain(v))
}

/// Fast path of [`from_f64`]: a value with at most 12 decimals (what AWS writes)
/// is found exactly: r / 10^12 rounds back to `v`, so r·10^-12 is a decimal for `v`.
#[inline]
fn twelve_decimals(v: f64) -> Option<i64> {
    if v.abs() < 9_000.0 {
        // `(v * 1e12).round()` without a libm call: |x| < 2^53, so the
        // truncation and the fraction are exact; ties round away from zero.
        let x = v * 1e12;
        let t = x as i64;
        let frac = x - t as f64;
        let r = t + i64::from(frac >= 0.5) - i64::from(frac <= -0.5);
        if r as f64 / 1e12 == v {
            return Some(r);
        }
    }
    None
}

/// Decimals of a [`Fixed`] amount.
pub const FIXED_SCALE: u32 = 12;

/// An amount as an integer of 10^-12 (AWS writes at most 12 decimals): the
/// unit of the Parquet fast path. Values made by [`fixed_from_f64`] /
/// [`fixed_from_decimal`] are below 4·10^18 in magnitude, so the sum or
/// difference of two cannot overflow.
pub type Fixed = i64;

const FIXED_MAX: i128 = 4_000_000_000_000_000_000;

/// `from_f64(v)` as a [`Fixed`]: the same value, or `None` where `from_f64`
/// fails or the value does not fit (more than 12 decimals, 4·10^6 or more).
#[inline]
pub fn fixed_from_f64(v: f64) -> Option<Fixed> {
    if v == 0.0 {
        return Some(0);
    }
    match twelve_decimals(v) {
        Some(r) => Some(r),
        None => fixed_from_decimal(from_f64(v)?),
    }
}

/// `d` as a [`Fixed`], or `None` if it has more than 12 decimals or is 4·10^6 or more.
#[inline]
pub fn fixed_from_decimal(mut d: Decimal) -> Option<Fixed> {
    if d.scale() > FIXED_SCALE {
        d = d.normalize();
    }
    let scale = d.scale();
    if scale > FIXED_SCALE {
        return None;
    }
    d.mantissa()
        .checked_mul(POW10[(FIXED_SCALE - scale) as usize])
        .filter(|v| v.abs() < FIXED_MAX)
        .map(|v| v as Fixed)
}

/// An exact running sum that is cheap to add to: a fixed-point i128 at 18
/// decimals, with a [`Decimal`] beside it for any value that does not fit
/// (more than 18 decimals, or i128 overflow). Nothing is ever rounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accumulator {
    fixed: i128,
    spill: Decimal,
}

/// Decimal places of the fixed-point sums ([`Accumulator`], the rollup's
/// group sums and the output's DECIMAL(38,18)).
pub const SUM_SCALE: u32 = 18;
const ACC_SCALE: u32 = SUM_SCALE;
const POW10: [i128; 19] = {
    let mut t = [1i128; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `d` as an integer of 1e-[`SUM_SCALE`], if it has at most that many decimals
/// and fits.
#[inline]
pub fn to_sum_units(d: Decimal) -> Option<i128> {
    let scale = d.scale();
    if scale > ACC_SCALE {
        return None;
    }
    d.mantissa()
        .checked_mul(POW10[(ACC_SCALE - scale) as usize])
}

/// `d` as an integer of 1e-[`SUM_SCALE`], rounded half away from zero past
/// that many decimals (as a DECIMAL(38,18) column stores it); `None` when it
/// does not fit DECIMAL(38,18) (|d| >= 1e20). Never rescales the decimal
/// itself: a 96-bit mantissa cannot hold 18 decimals of a value >= 8e10.
pub fn to_sum_units_rounded(d: Decimal) -> Option<i128> {
    let d = if d.scale() > ACC_SCALE {
        d.round_dp_with_strategy(
            ACC_SCALE,
            rust_decimal::RoundingStrategy::MidpointAwayFromZero,
        )
    } else {
        d
    };
    to_sum_units(d).filter(|u| u.unsigned_abs() < 10u128.pow(38))
}

/// A [`Fixed`] amount as an integer of 1e-[`SUM_SCALE`] (always exact).
#[inline]
pub fn fixed_to_sum_units(v: Fixed) -> i128 {
    i128::from(v) * POW10[(ACC_SCALE - FIXED_SCALE) as usize]
}

impl Accumulator {
    #[inline]
    pub fn add(&mut self, d: Decimal) {
        if let Some(v) = to_sum_units(d).and_then(|v| self.fixed.checked_add(v)) {
            self.fixed = v;
            return;
        }
        self.spill += d;
    }

    /// Add a [`Fixed`] amount (the same as adding the decimal it stands for).
    #[inline]
    pub fn add_fixed(&mut self, v: Fixed) {
        match self.fixed.checked_add(fixed_to_sum_units(v)) {
            Some(s) => self.fixed = s,
            None => self.spill += Decimal::new(v, FIXED_SCALE),
        }
    }

    /// Add another running sum.
    pub fn merge(&mut self, o: &Accumulator) {
        match self.fixed.checked_add(o.fixed) {
            Some(s) => self.fixed = s,
            None => self.spill += fixed_to_decimal(o.fixed),
        }
        self.spill += o.spill;
    }

    /// The exact sum (trailing zeros removed).
    pub fn value(&self) -> Decimal {
        if self.spill.is_zero() {
            if let Ok(fixed) = Decimal::try_from_i128_with_scale(self.fixed, ACC_SCALE) {
                return fixed.normalize();
            }
        }
        let mut m = self.fixed;
        let mut scale = ACC_SCALE;
        while scale > 0 && m % 10 == 0 {
            m /= 10;
            scale -= 1;
        }
        let fixed = Decimal::try_from_i128_with_scale(m, scale)
            .unwrap_or_else(|_| fixed_to_decimal(self.fixed));
        (fixed + self.spill).normalize()
    }
}

/// A fixed-point amount as a decimal: beyond 28 significant digits, the integer
/// and fraction parts are added separately.
fn fixed_to_decimal(v: i128) -> Decimal {
    Decimal::try_from_i128_with_scale(v, ACC_SCALE).unwrap_or_else(|_| {
        let int = Decimal::from_i128_with_scale(v / POW10[ACC_SCALE as usize], 0);
        int + Decimal::from_i128_with_scale(v % POW10[ACC_SCALE as usize], ACC_SCALE)
    })
}

/// Parse a decimal that is known to be valid (used for constants and tests).
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).expect("valid decimal literal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_rounds_to_cents_and_groups_thousands() {
        for (v, shown) in [
            ("-1234567.891", "-1,234,567.89"),
            ("999.995", "1,000.00"),
            ("0", "0.00"),
            ("-0.5", "-0.50"),
            ("123", "123.00"),
        ] {
            assert_eq!(display(dec(v)), shown, "{v}");
        }
    }

    #[test]
    fn sum_units_of_large_values_keep_every_decimal() {
        // 18 decimals of 9.1e11 need a 30-digit mantissa: more than a Decimal holds.
        assert_eq!(
            to_sum_units_rounded(dec("910000000000.5")),
            Some(910_000_000_000_500_000_000_000_000_000)
        );
        assert_eq!(
            to_sum_units_rounded(dec("-0.0000000000000000015")),
            Some(-2),
            "half away from zero past 18 decimals"
        );
        assert_eq!(
            to_sum_units_rounded(dec("99999999999999999999.9")),
            Some(99_999_999_999_999_999_999_900_000_000_000_000_000)
        );
        assert_eq!(to_sum_units_rounded(dec("100000000000000000000")), None);
    }

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

    /// `parse_fixed` is `parse_money` in units wherever it answers, and
    /// declines (so the row takes `parse_money`) exactly where units cannot
    /// hold the value: more than 12 decimals, 4·10^6 or more, other forms.
    #[test]
    fn parse_fixed_is_parse_money_in_units() {
        let cases: &[&[u8]] = &[
            b"",
            b"  ",
            b"NULL",
            b"null",
            b"0",
            b"-0",
            b"+0.0",
            b"1",
            b"1.",
            b".5",
            b"-.5",
            b"0.000000000001",
            b"-0.000000000001",
            b"0.0000000000001",
            b"1.5000000000000",
            b"12.345678901234",
            b" 7.25 ",
            b"3999999.999999999999",
            b"4000000",
            b"4000000.000000000000",
            b"-3999999.999999999999",
            b"1e-3",
            b"1E5",
            b"abc",
            b"-",
            b".",
            b"1.2.3",
            b"+",
            b"9999999999999999999",
            b"99999999999999999999",
            b"0000000000000000001.5",
            b"\xff1",
        ];
        for raw in cases {
            let exact = parse_money(raw);
            match parse_fixed(raw) {
                Some(None) => assert_eq!(exact, Ok(None), "{raw:?}"),
                Some(Some(units)) => {
                    let d = exact.unwrap_or_else(|e| panic!("{raw:?}: {e:?}"));
                    assert_eq!(d.and_then(fixed_from_decimal), Some(units), "{raw:?}");
                }
                None => {
                    // Declined: the value is not in units (an error, a
                    // scientific form, too many decimals or too large) or has
                    // more than 19 digits (zero padded): parse_money reads it.
                    if let Ok(Some(d)) = exact {
                        let plain = !raw.iter().any(|b| *b == b'e' || *b == b'E');
                        let digits = raw.iter().filter(|b| b.is_ascii_digit()).count();
                        assert!(
                            !plain
                                || digits > 19
                                || d.scale() > FIXED_SCALE
                                || fixed_from_decimal(d).is_none(),
                            "{raw:?} declined though {d} fits"
                        );
                    }
                }
            }
        }
        assert_eq!(parse_fixed(b"-12.5"), Some(Some(-12_500_000_000_000)));
        assert_eq!(parse_fixed(b"0.0000000000001"), None);
        assert_eq!(parse_fixed(b"4000000"), None);
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
    fn fixed_point_agrees_with_decimals() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let (mut a, mut b) = (Accumulator::default(), Accumulator::default());
        for i in 0..300_000u32 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = match i % 4 {
                0 => unit * 10f64.powi((i % 20) as i32 - 10),
                1 => f64::from_bits(x),
                2 => ((x >> 20) % 10_000_000_000_000) as f64 / 1e10 - 400.0,
                _ => (x % 1_000_000) as f64 / 100.0 + 0.5e-12,
            };
            // The fast path rounds as `(v * 1e12).round()` does.
            if v.abs() < 9_000.0 {
                let r = (v * 1e12).round();
                assert_eq!(
                    twelve_decimals(v),
                    (r / 1e12 == v).then_some(r as i64),
                    "{v}"
                );
            }
            let d = from_f64(v);
            match fixed_from_f64(v) {
                Some(f) => {
                    assert_eq!(Some(Decimal::new(f, FIXED_SCALE)), d, "{v}");
                    a.add_fixed(f);
                    b.add(d.unwrap());
                }
                None => assert!(
                    d.is_none_or(|d| d.normalize().scale() > 12 || d.abs() >= dec("4000000")),
                    "{v}"
                ),
            }
        }
        assert_eq!(a.value(), b.value());
        let mut m = a;
        m.merge(&b);
        a.add(b.value());
        assert_eq!(m.value(), a.value());
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
