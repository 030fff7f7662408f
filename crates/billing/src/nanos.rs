//! Exact US-dollar amounts as integer nano-dollars (1e-9 USD).
//!
//! Costs of single tokens are fractions of a cent, so cents are too coarse;
//! floats would round. A nano-dollar is fine enough that a price per million
//! tokens given to the cent (or to a thousandth of a cent) divides exactly per
//! token, and an `i64` still holds 9.2 billion dollars.

use kernel::Error;

/// Nano-dollars in one dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// The largest amount accepted from a client: one million dollars.
pub const MAX_INPUT_NANOS: i64 = 1_000_000 * NANOS_PER_USD;

/// An exact amount in nano-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub i64);

impl Nanos {
    /// Parses a decimal dollar string (`"3"`, `"0.075"`, `"12.500000001"`)
    /// exactly: at most nine decimals, not negative, at most [`MAX_INPUT_NANOS`].
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `field` for anything else.
    pub fn parse_usd(field: &str, text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::bad_input(
                field,
                "must be a dollar amount like 12.50 (at most 9 decimals)",
            )
        };
        let text = text.trim();
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || whole.len() > 7
            || frac.len() > 9
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (text.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac_nanos: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().map_err(|_| bad())?
        };
        let nanos = whole * NANOS_PER_USD + frac_nanos;
        if nanos > MAX_INPUT_NANOS {
            return Err(Error::bad_input(field, "must be at most 1000000 dollars"));
        }
        Ok(Self(nanos))
    }

    /// The amount as an exact decimal dollar string with nine decimals (`"3.703701000"`).
    pub fn to_usd(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = NANOS_PER_USD as u64;
        format!("{sign}{}.{:09}", abs / per, abs % per)
    }
}

/// `amount × rate / per`, rounded half up, exact in between (`i128`).
///
/// The one rounding rule of cost tracking: it applies only when a rate does not
/// divide evenly (a price per million tokens that is not a whole number of
/// nano-dollars per token); each component is rounded once, then summed.
///
/// # Errors
/// Internal when the result does not fit an `i64` (inputs are bounded at the edge).
pub fn scale(amount: i64, rate: i64, per: i64) -> Result<i64, Error> {
    let num = i128::from(amount) * i128::from(rate);
    let per = i128::from(per);
    let rounded = (num + per / 2) / per;
    i64::try_from(rounded).map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_strings_parse_exactly_and_print_back() {
        assert_eq!(Nanos::parse_usd("p", "3").unwrap(), Nanos(3_000_000_000));
        assert_eq!(Nanos::parse_usd("p", "0.075").unwrap(), Nanos(75_000_000));
        assert_eq!(
            Nanos::parse_usd("p", "12.000000001").unwrap(),
            Nanos(12_000_000_001)
        );
        assert_eq!(Nanos(3_703_701_000).to_usd(), "3.703701000");
        assert_eq!(Nanos(-5).to_usd(), "-0.000000005");
        for bad in [
            "",
            "-1",
            "1.",
            ".5",
            "1.0000000001",
            "1e3",
            "abc",
            "10000000",
        ] {
            assert!(Nanos::parse_usd("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scaling_rounds_half_up_only_when_inexact() {
        assert_eq!(
            scale(1_234_567, 3_000_000_000, 1_000_000).unwrap(),
            3_703_701_000
        );
        // 0.0375 $/M is 37.5 nano-dollars a token: 1 token rounds up to 38.
        assert_eq!(scale(1, 37_500_000, 1_000_000).unwrap(), 38);
        assert_eq!(scale(1, 37_400_000, 1_000_000).unwrap(), 37);
    }
}
