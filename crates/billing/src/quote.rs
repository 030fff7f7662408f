//! Prices for a tier and a payment frequency, in integer cents.
//!
//! The rounding rule: each line (the period price, the proration credit, the
//! proration charge) is computed as one exact fraction of integers and rounded
//! half up to a whole cent once, at the end of the line. Nothing is rounded
//! in between and no float is ever involved. The setup fee is its own line.

use crate::entity::subscription_tier;
use chrono::{DateTime, Duration, Months, Utc};

/// How often a subscription is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// Every 7 days; monthly x 12 / 52 plus the weekly premium.
    Weekly,
    /// Every calendar month; the list price.
    Monthly,
    /// Every 6 calendar months; 6 x monthly less the six-month discount.
    SixMonth,
    /// Every 12 calendar months; 12 x monthly less the annual discount.
    Annual,
}

impl Frequency {
    /// The stored form (seed 004 `paymentFrequency`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::SixMonth => "six_month",
            Self::Annual => "annual",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            "six_month" => Some(Self::SixMonth),
            "annual" => Some(Self::Annual),
            _ => None,
        }
    }

    /// The end of a period of this frequency that starts at `start`; calendar
    /// months clamp to the month's last day (Jan 31 + 1 month = Feb 28/29).
    pub fn period_end(self, start: DateTime<Utc>) -> DateTime<Utc> {
        let months = match self {
            Self::Weekly => return start + Duration::days(7),
            Self::Monthly => 1,
            Self::SixMonth => 6,
            Self::Annual => 12,
        };
        start
            .checked_add_months(Months::new(months))
            .unwrap_or(start + Duration::days(30 * i64::from(months)))
    }
}

/// The percentages and list price a price is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceTerms {
    /// The monthly list price, cents, >= 0.
    pub monthly_cents: i64,
    /// Whole percent added to the weekly price.
    pub weekly_premium_percent: i32,
    /// Whole percent off six months.
    pub six_month_discount_percent: i32,
    /// Whole percent off twelve months.
    pub annual_discount_percent: i32,
}

impl PriceTerms {
    /// The terms as a subscription records them (`metadata.priceTerms`), so a
    /// later tier price change does not re-price it until it changes tier.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "monthlyCents": self.monthly_cents,
            "weeklyPremiumPercent": self.weekly_premium_percent,
            "sixMonthDiscountPercent": self.six_month_discount_percent,
            "annualDiscountPercent": self.annual_discount_percent,
        })
    }

    /// The terms a subscription locked in, when its metadata records them.
    pub fn locked(metadata: Option<&serde_json::Value>) -> Option<Self> {
        let t = metadata?.get("priceTerms")?;
        let int = |k: &str| t.get(k).and_then(serde_json::Value::as_i64);
        let pct = |k: &str| int(k).and_then(|v| i32::try_from(v).ok());
        Some(Self {
            monthly_cents: int("monthlyCents")?,
            weekly_premium_percent: pct("weeklyPremiumPercent")?,
            six_month_discount_percent: pct("sixMonthDiscountPercent")?,
            annual_discount_percent: pct("annualDiscountPercent")?,
        })
    }
}

impl From<&subscription_tier::Model> for PriceTerms {
    fn from(t: &subscription_tier::Model) -> Self {
        Self {
            monthly_cents: t.monthly_price_cents,
            weekly_premium_percent: t.weekly_premium_percent,
            six_month_discount_percent: t.six_month_discount_percent,
            annual_discount_percent: t.annual_discount_percent,
        }
    }
}

/// `numerator / denominator` rounded half up; both non-negative, denominator > 0.
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i64 {
    debug_assert!(numerator >= 0 && denominator > 0);
    let q = (2 * numerator + denominator) / (2 * denominator);
    i64::try_from(q).unwrap_or(i64::MAX)
}

/// The price of one period at `frequency`, in cents (the rounding rule above).
pub fn period_price(terms: PriceTerms, frequency: Frequency) -> i64 {
    let monthly = i128::from(terms.monthly_cents.max(0));
    let pct = |p: i32| i128::from(p.clamp(0, 100));
    match frequency {
        Frequency::Monthly => terms.monthly_cents.max(0),
        Frequency::Weekly => {
            let premium = i128::from(terms.weekly_premium_percent.max(0));
            div_round_half_up(monthly * 12 * (100 + premium), 52 * 100)
        }
        Frequency::SixMonth => div_round_half_up(
            monthly * 6 * (100 - pct(terms.six_month_discount_percent)),
            100,
        ),
        Frequency::Annual => div_round_half_up(
            monthly * 12 * (100 - pct(terms.annual_discount_percent)),
            100,
        ),
    }
}

/// `amount_cents` x `remaining / total` seconds, rounded half up; 0 when the
/// period has no length, the whole amount when `remaining >= total`.
pub fn prorate(amount_cents: i64, remaining_secs: i64, total_secs: i64) -> i64 {
    if total_secs <= 0 || remaining_secs <= 0 || amount_cents <= 0 {
        return 0;
    }
    let remaining = remaining_secs.min(total_secs);
    div_round_half_up(
        i128::from(amount_cents) * i128::from(remaining),
        i128::from(total_secs),
    )
}

/// What subscribing to a tier at a frequency costs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The quoted frequency.
    pub frequency: Frequency,
    /// One period's price, cents.
    pub period_price_cents: i64,
    /// The setup fee, cents; 0 unless this is the caller's first subscription.
    pub setup_fee_cents: i64,
    /// What is charged at the start: period price plus setup fee.
    pub total_cents: i64,
}

/// The quote for `tier` at `frequency`; `first` adds the tier's setup fee.
pub fn quote(tier: &subscription_tier::Model, frequency: Frequency, first: bool) -> Quote {
    let period_price_cents = period_price(tier.into(), frequency);
    let setup_fee_cents = if first {
        tier.setup_fee_cents.max(0)
    } else {
        0
    };
    Quote {
        frequency,
        period_price_cents,
        setup_fee_cents,
        total_cents: period_price_cents.saturating_add(setup_fee_cents),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(monthly: i64) -> PriceTerms {
        PriceTerms {
            monthly_cents: monthly,
            weekly_premium_percent: 15,
            six_month_discount_percent: 5,
            annual_discount_percent: 10,
        }
    }

    #[test]
    fn starter_prices_follow_the_documented_rule() {
        // 99_700 x 12 x 115 / 5200 = 26_458.85 -> 26_459
        assert_eq!(period_price(terms(99_700), Frequency::Weekly), 26_459);
        assert_eq!(period_price(terms(99_700), Frequency::Monthly), 99_700);
        // 99_700 x 6 x 0.95 = 568_290
        assert_eq!(period_price(terms(99_700), Frequency::SixMonth), 568_290);
        // 99_700 x 12 x 0.90 = 1_076_760
        assert_eq!(period_price(terms(99_700), Frequency::Annual), 1_076_760);
    }

    #[test]
    fn halves_round_up() {
        assert_eq!(div_round_half_up(5, 2), 3);
        assert_eq!(div_round_half_up(7, 4), 2);
        assert_eq!(div_round_half_up(5, 4), 1);
        assert_eq!(prorate(101, 1, 2), 51);
    }

    #[test]
    fn calendar_months_clamp_to_the_last_day() {
        let jan31 = DateTime::parse_from_rfc3339("2027-01-31T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Frequency::Monthly.period_end(jan31).to_rfc3339(),
            "2027-02-28T10:00:00+00:00"
        );
    }
}
