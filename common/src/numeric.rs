//! NUMERIC arithmetic where PostgreSQL's answer depends on more than the
//! operands' values: the scale of a quotient.
//!
//! PostgreSQL's `numeric / numeric` (and so `AVG` of integers and numerics)
//! picks the quotient's scale with `select_div_scale`: enough decimals for at
//! least 16 significant digits, never fewer than either operand shows, then
//! rounds half away from zero. `1 / 3` is `0.33333333333333333333` and `3 / 2`
//! is `1.5000000000000000`. Eddy's decimals hold 28 digits, so a scale past
//! 28 is cut to 28 — the one place its text can differ, for quotients below
//! 10^-12.

use crate::value::CastError;
use crate::SqlType;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// `NUMERIC(precision, scale)`: how many digits in all and after the point.
/// A value of the type is rounded (half away from zero) to `scale` decimals
/// and shown with exactly that many; one needing more than `precision -
/// scale` digits before the point does not fit (22003).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typmod {
    pub precision: u32,
    pub scale: u32,
}

impl Typmod {
    /// `d` as a value of this type, as PostgreSQL's `numeric(d, typmod)`.
    pub fn apply(self, d: Decimal) -> Result<Decimal, CastError> {
        let mut rounded =
            d.round_dp_with_strategy(self.scale, RoundingStrategy::MidpointAwayFromZero);
        rounded.rescale(self.scale);
        let int_digits = rounded
            .trunc()
            .abs()
            .mantissa()
            .to_string()
            .trim_start_matches('0')
            .len();
        if int_digits > (self.precision - self.scale) as usize {
            return Err(CastError::FieldOverflow {
                precision: self.precision,
                scale: self.scale,
            });
        }
        Ok(rounded)
    }

    /// The type's name, `numeric(p,s)`.
    pub fn name(self) -> String {
        format!("{}({},{})", SqlType::Numeric, self.precision, self.scale)
    }
}

/// Significant digits PostgreSQL keeps in a quotient at least.
const MIN_SIG_DIGITS: i64 = 16;
/// PostgreSQL stores numerics in base-10000 digits of 4 decimal digits.
const DEC_DIGITS: i64 = 4;

/// `a / b` as PostgreSQL computes it; `None` on division by zero or overflow.
pub fn pg_div(a: Decimal, b: Decimal) -> Option<Decimal> {
    if b.is_zero() {
        return None;
    }
    let (w1, f1) = weight_and_first_digit(a);
    let (w2, f2) = weight_and_first_digit(b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = (MIN_SIG_DIGITS - qweight * DEC_DIGITS)
        .max(i64::from(a.scale()))
        .max(i64::from(b.scale()))
        .clamp(0, i64::from(Decimal::MAX_SCALE));
    let q = a.checked_div(b)?;
    let mut rounded =
        q.round_dp_with_strategy(rscale as u32, RoundingStrategy::MidpointAwayFromZero);
    // Show exactly `rscale` decimals, as PostgreSQL's display scale does.
    rounded.rescale(rscale as u32);
    Some(rounded)
}

/// The weight (position of the leading base-10000 digit, 0 for units) and
/// the value of that leading digit, as PostgreSQL's `NumericVar` holds them.
fn weight_and_first_digit(x: Decimal) -> (i64, u32) {
    if x.is_zero() {
        return (0, 0);
    }
    let x = x.abs();
    let digits = x.mantissa().unsigned_abs().to_string();
    // Decimal exponent of the leading decimal digit: x = 0.d × 10^(exp + 1).
    let exp = digits.len() as i64 - 1 - i64::from(x.scale());
    let weight = exp.div_euclid(DEC_DIGITS);
    // The leading base-10000 digit covers decimal exponents
    // weight*4 .. weight*4+3; it holds the top (exp - weight*4 + 1) digits.
    let take = (exp - weight * DEC_DIGITS + 1) as usize;
    let first = digits[..take.min(digits.len())].parse::<u32>().unwrap_or(0)
        * 10u32.pow(take.saturating_sub(digits.len()) as u32);
    (weight, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn div(a: &str, b: &str) -> String {
        pg_div(Decimal::from_str(a).unwrap(), Decimal::from_str(b).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn quotients_have_postgres_scale() {
        // Each expected value is what PostgreSQL 15 prints for `a::numeric / b::numeric`.
        assert_eq!(div("1", "3"), "0.33333333333333333333");
        assert_eq!(div("3", "2"), "1.5000000000000000");
        assert_eq!(div("10", "4"), "2.5000000000000000");
        assert_eq!(div("1", "4"), "0.25000000000000000000");
        assert_eq!(div("100000", "3"), "33333.333333333333");
        assert_eq!(div("7.50", "2"), "3.7500000000000000");
        assert_eq!(div("2", "3"), "0.66666666666666666667");
        assert_eq!(div("-2", "3"), "-0.66666666666666666667");
        assert_eq!(div("123456789012", "7"), "17636684144.57142857");
        assert_eq!(div("1", "30000"), "0.000033333333333333333333");
    }

    #[test]
    fn typmods_round_and_bound_as_postgres() {
        let t = Typmod {
            precision: 5,
            scale: 2,
        };
        let d = |s: &str| Decimal::from_str(s).unwrap();
        // Each as PostgreSQL 15 answers `x::numeric(5,2)`.
        assert_eq!(t.apply(d("123.456")).unwrap().to_string(), "123.46");
        assert_eq!(t.apply(d("-1.005")).unwrap().to_string(), "-1.01");
        assert_eq!(t.apply(d("7")).unwrap().to_string(), "7.00");
        assert_eq!(t.apply(d("999.994")).unwrap().to_string(), "999.99");
        assert!(t.apply(d("999.995")).is_err());
        assert!(t.apply(d("1234.5")).is_err());
        let whole = Typmod {
            precision: 3,
            scale: 0,
        };
        assert_eq!(whole.apply(d("2.5")).unwrap().to_string(), "3");
    }

    #[test]
    fn weights_follow_base_10000() {
        assert_eq!(weight_and_first_digit(Decimal::from(3)), (0, 3));
        assert_eq!(weight_and_first_digit(Decimal::from(12345)), (1, 1));
        assert_eq!(
            weight_and_first_digit(Decimal::from_str("0.5").unwrap()),
            (-1, 5000)
        );
        assert_eq!(
            weight_and_first_digit(Decimal::from_str("0.00005").unwrap()),
            (-2, 5000)
        );
    }
}
