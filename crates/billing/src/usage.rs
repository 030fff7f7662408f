//! The caller's usage in the current period, as the gate counts it.

use crate::gate::load_state;
use crate::settings::Billing;
use chrono::{DateTime, Utc};
use kernel::actor::Actor;
use kernel::db::raw;
use kernel::error::Error;
use sea_orm::ConnectionTrait;

/// Executions and agents of the caller's current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSummary {
    /// The subscription's status.
    pub status: String,
    /// Period start.
    pub period_start: DateTime<Utc>,
    /// Period end (exclusive).
    pub period_end: DateTime<Utc>,
    /// The tier's executions per period.
    pub plan_limit: i64,
    /// Add-on executions on top of the plan limit, per period.
    pub add_on_executions: i64,
    /// Executions counted against plan limit plus add-ons.
    pub plan_used: i64,
    /// Executions left in usable packs; `None` when an unlimited pack is usable.
    pub pack_executions_remaining: Option<i64>,
    /// Executions taken in this period from every source.
    pub executions_used: i64,
    /// Executions taken beyond every allowance (charged as overage).
    pub overage_executions: i64,
    /// The overage charged so far in this period, in cents.
    pub overage_charged_cents: i64,
    /// Agents running now (reservations not yet settled).
    pub running_agents: i64,
    /// The tier's cap on running agents.
    pub max_concurrent_agents: i64,
}

impl Billing {
    /// The caller's usage in the current period; `None` without a subscription.
    ///
    /// # Errors
    /// Internal on database failure.
    #[tracing::instrument(skip_all, fields(user_id = %actor.user_id))]
    pub async fn usage(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<Option<UsageSummary>, Error> {
        let Some(s) = load_state(db, actor.user_id).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let backend = db.get_database_backend();
        let packs = db
            .query_one_raw(raw(
                backend,
                "SELECT COALESCE(SUM(executions_remaining), 0) AS remaining, \
                 COALESCE(SUM(CASE WHEN executions_remaining IS NULL THEN 1 ELSE 0 END), 0) \
                 AS unlimited FROM user_execution_packs WHERE user_id = ? AND status = 'active' \
                 AND (expires_at IS NULL OR expires_at > ?)",
                vec![actor.user_id.into(), now.into()],
            ))
            .await?;
        let (remaining, unlimited) = match packs {
            Some(row) => (
                row.try_get::<i64>("", "remaining")?,
                row.try_get::<i64>("", "unlimited")?,
            ),
            None => (0, 0),
        };
        let record = db
            .query_one_raw(raw(
                backend,
                "SELECT executions_used, overage_executions, overage_charged_cents \
                 FROM subscription_usage_records WHERE user_id = ? AND period_start = ?",
                vec![actor.user_id.into(), s.period_start.into()],
            ))
            .await?;
        let (used, overage, cents) = match record {
            Some(row) => (
                i64::from(row.try_get::<i32>("", "executions_used")?),
                i64::from(row.try_get::<i32>("", "overage_executions")?),
                row.try_get::<i64>("", "overage_charged_cents")?,
            ),
            None => (s.executions_used, 0, 0),
        };
        Ok(Some(UsageSummary {
            status: s.status,
            period_start: s.period_start,
            period_end: s.period_end,
            plan_limit: s.execution_limit,
            add_on_executions: s.additional_executions,
            plan_used: s.executions_used,
            pack_executions_remaining: (unlimited == 0).then_some(remaining),
            executions_used: used,
            overage_executions: overage,
            overage_charged_cents: cents,
            running_agents: s.running_agents,
            max_concurrent_agents: s.max_concurrent_agents,
        }))
    }
}
