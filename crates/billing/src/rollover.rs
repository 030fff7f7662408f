//! The period job: releases reservations nobody settled, expires packs, and
//! rolls every subscription whose period has ended into its next period.
//!
//! Rolling a period over archives it (its `subscription_usage_records` row is
//! closed: `closed_at` set, counters final), resets the period counters and
//! advances `current_period_start`/`current_period_end` by the payment
//! frequency, skipping whole periods the server was down for, and bills the
//! renewal (next period in advance, the ended period's overage in arrears)
//! through the payment gateway. A subscription marked `cancel_at_period_end`
//! ends instead (`cancelled`, like Stripe).
//!
//! Safe to run twice or on several instances at once: each subscription moves
//! in its own transaction whose first write is conditioned on the old period
//! start, so the second runner matches no row and rolls back.

use crate::entity::subscription_tier;
use crate::gate::{GateState, Settle, ensure_usage_record, exec, load_subscription};
use crate::gateway::{Charge, GatewayError};
use crate::quote::{Frequency, PriceTerms, period_price};
use crate::settings::Billing;
use chrono::{DateTime, Utc};
use kernel::db::raw;
use kernel::error::Error;
use kernel::jobs::Job;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, TransactionTrait};
use uuid::Uuid;

/// How many rows one run handles of each kind; the next tick takes the rest.
const BATCH: u64 = 500;

/// What one run of the period job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolloverReport {
    /// Stale reservations released.
    pub released: u64,
    /// Packs marked expired.
    pub packs_expired: u64,
    /// Subscriptions moved into their next period.
    pub rolled_over: u64,
    /// Subscriptions ended because they were set to cancel at period end.
    pub cancelled: u64,
}

/// The end of the period starting at `start` for a stored payment frequency
/// (unknown text counts as monthly).
pub fn period_end(start: DateTime<Utc>, frequency: &str) -> DateTime<Utc> {
    Frequency::parse(frequency)
        .unwrap_or(Frequency::Monthly)
        .period_end(start)
}

impl Billing {
    /// Runs the period job once over the whole database.
    ///
    /// # Errors
    /// Internal on database failure; work already committed stays.
    #[tracing::instrument(skip_all)]
    pub async fn run_period_job(&self, db: &DatabaseConnection) -> Result<RolloverReport, Error> {
        let now = self.clock.now();
        let mut report = RolloverReport {
            released: self.release_stale_reservations(db, now).await?,
            ..Default::default()
        };
        report.packs_expired = exec(
            db,
            "UPDATE user_execution_packs SET status = 'expired' \
             WHERE status IN ('active', 'depleted') AND expires_at IS NOT NULL AND expires_at <= ?",
            vec![now.into()],
        )
        .await?;
        let backend = db.get_database_backend();
        let due = db
            .query_all_raw(raw(
                backend,
                &format!(
                    "SELECT id FROM user_subscriptions \
                     WHERE current_period_end <= ? AND status IN ('active', 'trial', 'past_due') \
                     ORDER BY current_period_end LIMIT {BATCH}"
                ),
                vec![now.into()],
            ))
            .await?;
        for row in due {
            let subscription_id: Uuid = row.try_get("", "id")?;
            let txn = db.begin().await?;
            match self.roll_over_one(&txn, subscription_id, now).await? {
                Some(cancelled) => {
                    txn.commit().await?;
                    if cancelled {
                        report.cancelled += 1;
                    } else {
                        report.rolled_over += 1;
                    }
                }
                None => txn.rollback().await?,
            }
        }
        tracing::info!(?report, "period job ran");
        Ok(report)
    }

    async fn release_stale_reservations(
        &self,
        db: &DatabaseConnection,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let backend = db.get_database_backend();
        let stale = db
            .query_all_raw(raw(
                backend,
                &format!(
                    "SELECT id FROM usage_reservations WHERE status = 'reserved' AND expires_at <= ? \
                     ORDER BY expires_at LIMIT {BATCH}"
                ),
                vec![now.into()],
            ))
            .await?;
        let mut released = 0;
        for row in stale {
            let id: Uuid = row.try_get("", "id")?;
            let txn = db.begin().await?;
            if self.settle(&txn, None, id, Settle::Release).await? {
                released += 1;
            }
            txn.commit().await?;
        }
        Ok(released)
    }

    /// Moves one subscription past its ended period; `None` when another
    /// runner did it first. `Some(true)` when it was cancelled instead.
    async fn roll_over_one(
        &self,
        db: &impl ConnectionTrait,
        subscription_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, Error> {
        let Some(s) = load_subscription(db, subscription_id).await? else {
            return Ok(None);
        };
        if s.period_end > now || !matches!(s.status.as_str(), "active" | "trial" | "past_due") {
            return Ok(None);
        }
        let (user_id, frequency, cancel) = (
            s.user_id,
            s.payment_frequency.clone(),
            s.cancel_at_period_end,
        );
        let mut start = s.period_end;
        let mut end = period_end(start, &frequency);
        while end <= now && end > start {
            start = end;
            end = period_end(start, &frequency);
        }
        let moved = if cancel {
            exec(
                db,
                "UPDATE user_subscriptions SET status = 'cancelled', cancelled_at = ?, updated_at = ? \
                 WHERE id = ? AND current_period_start = ?",
                vec![
                    s.period_end.into(),
                    now.into(),
                    s.subscription_id.into(),
                    s.period_start.into(),
                ],
            )
            .await?
        } else {
            exec(
                db,
                "UPDATE user_subscriptions SET current_period_start = ?, current_period_end = ?, \
                 executions_used_this_period = 0, agents_spawned_this_period = 0, updated_at = ? \
                 WHERE id = ? AND current_period_start = ?",
                vec![
                    start.into(),
                    end.into(),
                    now.into(),
                    s.subscription_id.into(),
                    s.period_start.into(),
                ],
            )
            .await?
        };
        if moved != 1 {
            return Ok(None);
        }
        // Archive the ended period: make sure its record exists, then close it.
        ensure_usage_record(db, user_id, &s, now).await?;
        exec(
            db,
            "UPDATE subscription_usage_records SET closed_at = ? \
             WHERE user_id = ? AND period_start = ? AND closed_at IS NULL",
            vec![now.into(), user_id.into(), s.period_start.into()],
        )
        .await?;
        if !cancel {
            let mut next = s.clone();
            next.period_start = start;
            next.period_end = end;
            ensure_usage_record(db, user_id, &next, now).await?;
            self.charge_renewal(db, &s, start).await?;
        }
        Ok(Some(cancel))
    }

    /// Bills the new period in advance plus the ended period's overage in
    /// arrears, as a Stripe renewal invoice does; an ended trial converts to
    /// `active` on payment. A decline leaves the subscription `past_due` (the
    /// gate refuses it); an unreachable provider fails the run, which rolls
    /// back and retries at the next tick under the same idempotency key.
    async fn charge_renewal(
        &self,
        db: &impl ConnectionTrait,
        s: &GateState,
        new_start: DateTime<Utc>,
    ) -> Result<(), Error> {
        let tier = subscription_tier::Entity::find_by_id(s.tier_id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("tier"))?;
        let frequency = Frequency::parse(&s.payment_frequency).unwrap_or(Frequency::Monthly);
        // A subscription renews at the price it locked in, not the tier's current one.
        let locked = crate::entity::user_subscription::Entity::find_by_id(s.subscription_id)
            .one(db)
            .await?
            .and_then(|sub| PriceTerms::locked(sub.metadata.as_ref()));
        let terms = locked.unwrap_or_else(|| PriceTerms::from(&tier));
        let period_cents = period_price(terms, frequency);
        let backend = db.get_database_backend();
        let overage_cents: i64 = match db
            .query_one_raw(raw(
                backend,
                "SELECT overage_charged_cents FROM subscription_usage_records \
                 WHERE user_id = ? AND period_start = ?",
                vec![s.user_id.into(), s.period_start.into()],
            ))
            .await?
        {
            Some(row) => row.try_get("", "overage_charged_cents")?,
            None => 0,
        };
        let amount_cents = period_cents + overage_cents;
        let (status, payment_id) = if amount_cents <= 0 {
            ("active", None)
        } else {
            let charge = Charge {
                user_id: s.user_id,
                amount_cents,
                currency: "usd".into(),
                description: format!("{} renewal", tier.name),
                idempotency_key: format!(
                    "renewal:{}:{}",
                    s.subscription_id,
                    new_start.timestamp_micros()
                ),
            };
            match self.gateway.charge(&charge).await {
                Ok(payment) => ("active", Some(payment.provider_id)),
                Err(GatewayError::Declined(reason)) => {
                    tracing::warn!(subscription_id = %s.subscription_id, %reason, "renewal declined");
                    ("past_due", None)
                }
                Err(err @ GatewayError::Unavailable(_)) => return Err(Error::internal(err)),
            }
        };
        exec(
            db,
            "UPDATE user_subscriptions SET status = ? WHERE id = ?",
            vec![status.into(), s.subscription_id.into()],
        )
        .await?;
        let invoice = serde_json::json!({
            "renewal": {
                "periodCents": period_cents,
                "overageCents": overage_cents,
                "amountCents": amount_cents,
                "paymentId": payment_id,
                "status": status,
            }
        });
        exec(
            db,
            "UPDATE subscription_usage_records SET metadata = ? WHERE user_id = ? AND period_start = ?",
            vec![invoice.into(), s.user_id.into(), new_start.into()],
        )
        .await?;
        Ok(())
    }
}

/// The period job as a [`Job`] for `kernel::jobs`.
#[derive(Debug, Clone)]
pub struct PeriodJob {
    /// The billing services.
    pub billing: Billing,
    /// The database it runs on.
    pub db: DatabaseConnection,
}

#[async_trait::async_trait]
impl Job for PeriodJob {
    fn name(&self) -> &'static str {
        "billing.period_rollover"
    }

    async fn run(&self) -> Result<(), Error> {
        self.billing.run_period_job(&self.db).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn periods_advance_by_frequency_and_clamp_month_ends() {
        let jan31 = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
        assert_eq!(
            period_end(jan31, "monthly"),
            Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap()
        );
        assert_eq!(
            period_end(jan31, "weekly") - jan31,
            chrono::Duration::days(7)
        );
        assert_eq!(
            period_end(jan31, "six_month"),
            Utc.with_ymd_and_hms(2026, 7, 31, 12, 0, 0).unwrap()
        );
        assert_eq!(
            period_end(jan31, "annual"),
            Utc.with_ymd_and_hms(2027, 1, 31, 12, 0, 0).unwrap()
        );
    }
}
