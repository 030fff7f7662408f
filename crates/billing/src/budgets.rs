//! Budgets over UTC windows, their once-per-window alerts, the pre-flight
//! check the usage gate calls, the month-end forecast and the daily summaries.
//!
//! Windows: a day is a UTC calendar day; a week starts Monday 00:00 UTC (ISO
//! 8601); a month starts on the 1st at 00:00 UTC. Spend in a window is the sum
//! of the user's `daily_cost_summaries` for the days in it, so it is never
//! stored twice and cannot drift from the cost rows.

use crate::Billing;
use crate::cost_entity::{budget_alert, cost_budget, daily_cost_summary};
use crate::nanos::{MAX_INPUT_NANOS, Nanos};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use kernel::Error;
use kernel::actor::Actor;
use kernel::db::raw;
use kernel::id::new_id;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};
use serde_json::json;
use uuid::Uuid;

/// The longest range of daily summaries one request may read.
pub const MAX_SUMMARY_DAYS: i64 = 366;

/// The outbox kind of a budget reaching its alert threshold.
pub const THRESHOLD_EVENT: &str = "cost_budget.threshold_reached";
/// The outbox kind of a budget reaching 100 %.
pub const LIMIT_EVENT: &str = "cost_budget.limit_reached";

/// The span a budget covers, on UTC boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// One UTC day.
    Daily,
    /// Monday to Sunday, UTC.
    Weekly,
    /// A calendar month, UTC.
    Monthly,
}

impl Window {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }

    /// The window holding `day`: its first day and the first day after it.
    pub fn bounds(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        let start = match self {
            Self::Daily => day,
            Self::Weekly => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
            Self::Monthly => day.with_day(1).unwrap_or(day),
        };
        let end = match self {
            Self::Daily => start + Days::new(1),
            Self::Weekly => start + Days::new(7),
            Self::Monthly => start + Months::new(1),
        };
        (start, end)
    }
}

/// A whole percentage between 1 and 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(i32);

impl Percent {
    /// Parses a percentage.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `field` outside 1..=100.
    pub fn parse(field: &str, value: i32) -> Result<Self, Error> {
        if (1..=100).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Error::bad_input(field, "must be between 1 and 100"))
        }
    }

    /// The value.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// A positive budget limit of at most one million dollars.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` otherwise.
pub fn parse_limit(field: &str, text: &str) -> Result<Nanos, Error> {
    let limit = Nanos::parse_usd(field, text)?;
    if limit.0 <= 0 || limit.0 > MAX_INPUT_NANOS {
        return Err(Error::bad_input(field, "must be more than 0"));
    }
    Ok(limit)
}

/// A parsed new budget.
#[derive(Debug, Clone, Copy)]
pub struct NewBudget {
    /// Its window.
    pub window: Window,
    /// The spend it allows per window.
    pub limit: Nanos,
    /// The percentage of the limit that raises the early alert (default 80).
    pub alert_threshold: Percent,
    /// Whether reaching the limit stops new work.
    pub auto_stop_on_limit: bool,
}

/// A parsed change to a budget; `None` keeps the value.
#[derive(Debug, Clone, Copy, Default)]
pub struct BudgetChange {
    /// A new limit.
    pub limit: Option<Nanos>,
    /// A new threshold.
    pub alert_threshold: Option<Percent>,
    /// Stop work at the limit or not.
    pub auto_stop_on_limit: Option<bool>,
    /// Switch the budget on or off.
    pub is_active: Option<bool>,
}

/// A budget with its current window and the spend in it.
#[derive(Debug, Clone)]
pub struct BudgetStatus {
    /// The budget.
    pub budget: cost_budget::Model,
    /// The first day of the current window.
    pub window_start: NaiveDate,
    /// The first day after it.
    pub window_end: NaiveDate,
    /// Spend in the window so far.
    pub spend: Nanos,
}

/// The month-end forecast: month-to-date spend / days elapsed × days in month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forecast {
    /// The first day of the month.
    pub month_start: NaiveDate,
    /// Spend from the 1st through today.
    pub month_to_date: Nanos,
    /// Days elapsed, today included.
    pub days_elapsed: i64,
    /// Days in the month.
    pub days_in_month: i64,
    /// The projected spend for the whole month, rounded down to the nano-dollar.
    pub projected: Nanos,
}

/// `mtd × days_in_month / days_elapsed` in integers, multiplied first and
/// rounded down, so the forecast of an even spend is exact.
pub fn project(month_to_date: i64, days_elapsed: i64, days_in_month: i64) -> i64 {
    if days_elapsed <= 0 {
        return 0;
    }
    let p = i128::from(month_to_date) * i128::from(days_in_month) / i128::from(days_elapsed);
    i64::try_from(p).unwrap_or(i64::MAX)
}

/// Spend of `user_id` in `[start, end)`.
pub(crate) async fn spend_between(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<i64, Error> {
    // SUM of BIGINT is NUMERIC on PostgreSQL; the cast keeps one integer type.
    let stmt = raw(
        db.get_database_backend(),
        "SELECT CAST(COALESCE(SUM(total_cost_nanos), 0) AS BIGINT) AS spend \
         FROM daily_cost_summaries WHERE user_id = ? AND day >= ? AND day < ?",
        vec![user_id.into(), start.into(), end.into()],
    );
    let row = db.query_one_raw(stmt).await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "spend")?,
        None => 0,
    })
}

fn budget_view(b: &cost_budget::Model) -> serde_json::Value {
    json!({
        "window": b.window,
        "limitUsd": Nanos(b.limit_nanos).to_usd(),
        "alertThreshold": b.alert_threshold,
        "autoStopOnLimit": b.auto_stop_on_limit,
        "isActive": b.is_active,
    })
}

/// What the audit log records of a budget.
pub fn audit_view(b: &cost_budget::Model) -> serde_json::Value {
    budget_view(b)
}

impl Billing {
    async fn own_budget(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<cost_budget::Model, Error> {
        cost_budget::Entity::find_by_id(id)
            .filter(cost_budget::Column::UserId.eq(actor.user_id))
            .one(db)
            .await?
            .ok_or(Error::NotFound("budget"))
    }

    /// Creates a budget for the caller.
    ///
    /// # Errors
    /// `CONFLICT` on `window` when the caller has a budget for that window.
    #[tracing::instrument(name = "billing.create_budget", skip_all, err(level = "debug"))]
    pub async fn create_budget(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        req: NewBudget,
    ) -> Result<cost_budget::Model, Error> {
        let now = self.clock.now();
        cost_budget::ActiveModel {
            id: Set(new_id()),
            user_id: Set(actor.user_id),
            window: Set(req.window.as_str().to_owned()),
            limit_nanos: Set(req.limit.0),
            alert_threshold: Set(req.alert_threshold.get()),
            auto_stop_on_limit: Set(req.auto_stop_on_limit),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(|e| {
            if kernel::error::is_unique_violation(&e) {
                Error::conflict("window", "a budget for this window exists")
            } else {
                e.into()
            }
        })
    }

    /// Changes one of the caller's budgets; returns it before and after. A new
    /// limit or threshold forgets the current window's alerts, so they can fire
    /// again under the new terms.
    ///
    /// # Errors
    /// `NOT_FOUND` when the budget is not the caller's.
    #[tracing::instrument(name = "billing.update_budget", skip_all, err(level = "debug"))]
    pub async fn update_budget(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
        change: BudgetChange,
    ) -> Result<(cost_budget::Model, cost_budget::Model), Error> {
        let old = self.own_budget(db, actor, id).await?;
        let mut am = old.clone().into_active_model();
        if let Some(limit) = change.limit {
            am.limit_nanos = Set(limit.0);
        }
        if let Some(t) = change.alert_threshold {
            am.alert_threshold = Set(t.get());
        }
        if let Some(stop) = change.auto_stop_on_limit {
            am.auto_stop_on_limit = Set(stop);
        }
        if let Some(active) = change.is_active {
            am.is_active = Set(active);
        }
        am.updated_at = Set(self.clock.now());
        let new = am.update(db).await?;
        if new.limit_nanos != old.limit_nanos || new.alert_threshold != old.alert_threshold {
            // New terms, new alerts: the current window may alert again under them.
            let window = Window::parse(&new.window).unwrap_or(Window::Monthly);
            let (start, _) = window.bounds(self.clock.now().date_naive());
            budget_alert::Entity::delete_many()
                .filter(budget_alert::Column::BudgetId.eq(new.id))
                .filter(budget_alert::Column::WindowStart.eq(start))
                .exec(db)
                .await?;
        }
        Ok((old, new))
    }

    /// Deletes one of the caller's budgets with its alert history.
    ///
    /// # Errors
    /// `NOT_FOUND` when the budget is not the caller's.
    #[tracing::instrument(name = "billing.delete_budget", skip_all, err(level = "debug"))]
    pub async fn delete_budget(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<cost_budget::Model, Error> {
        let old = self.own_budget(db, actor, id).await?;
        cost_budget::Entity::delete_by_id(old.id).exec(db).await?;
        Ok(old)
    }

    /// The caller's budgets (at most one per window) with their current spend.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "billing.budgets", skip_all, err(level = "debug"))]
    pub async fn budgets(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<Vec<BudgetStatus>, Error> {
        let budgets = cost_budget::Entity::find()
            .filter(cost_budget::Column::UserId.eq(actor.user_id))
            .order_by_asc(cost_budget::Column::Id)
            .all(db)
            .await?;
        let mut out = Vec::with_capacity(budgets.len());
        for budget in budgets {
            out.push(self.budget_status(db, budget).await?);
        }
        Ok(out)
    }

    /// A budget with its current window and the spend in it.
    ///
    /// # Errors
    /// Internal, when the database fails.
    pub async fn budget_status(
        &self,
        db: &impl ConnectionTrait,
        budget: cost_budget::Model,
    ) -> Result<BudgetStatus, Error> {
        let today = self.clock.now().date_naive();
        let window = Window::parse(&budget.window).unwrap_or(Window::Monthly);
        let (start, end) = window.bounds(today);
        let spend = spend_between(db, budget.user_id, start, end).await?;
        Ok(BudgetStatus {
            budget,
            window_start: start,
            window_end: end,
            spend: Nanos(spend),
        })
    }

    /// Raises the alerts the user's active budgets have reached in the window
    /// holding `day`: the threshold level and the 100 % level, each at most
    /// once per window. The unique `(budget_id, window_start, level)` key makes
    /// the second of two racing writers insert nothing, and only the writer
    /// whose insert counted emits the outbox event.
    pub(crate) async fn evaluate_budgets(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let budgets = cost_budget::Entity::find()
            .filter(cost_budget::Column::UserId.eq(user_id))
            .filter(cost_budget::Column::IsActive.eq(true))
            .all(db)
            .await?;
        for budget in budgets {
            let Some(window) = Window::parse(&budget.window) else {
                continue;
            };
            let (start, end) = window.bounds(day);
            let spend = spend_between(db, user_id, start, end).await?;
            let spend_pct_x100 = i128::from(spend) * 100;
            let limit = i128::from(budget.limit_nanos);
            // At a threshold of 100 the early alert is the limit alert; send one.
            if budget.alert_threshold < 100
                && spend_pct_x100 >= limit * i128::from(budget.alert_threshold)
            {
                self.raise_alert(db, &budget, start, "threshold", spend, now)
                    .await?;
            }
            if i128::from(spend) >= limit {
                self.raise_alert(db, &budget, start, "limit", spend, now)
                    .await?;
            }
        }
        Ok(())
    }

    async fn raise_alert(
        &self,
        db: &impl ConnectionTrait,
        budget: &cost_budget::Model,
        window_start: NaiveDate,
        level: &str,
        spend: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let stmt = raw(
            db.get_database_backend(),
            "INSERT INTO budget_alerts (id, budget_id, window_start, level, spend_nanos, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (budget_id, window_start, level) DO NOTHING",
            vec![
                new_id().into(),
                budget.id.into(),
                window_start.into(),
                level.into(),
                spend.into(),
                now.into(),
            ],
        );
        if db.execute_raw(stmt).await?.rows_affected() == 0 {
            return Ok(());
        }
        let kind = if level == "limit" {
            LIMIT_EVENT
        } else {
            THRESHOLD_EVENT
        };
        crate::events::emit(
            db,
            kind,
            budget.user_id,
            json!({
                "budgetId": budget.id,
                "window": budget.window,
                "windowStart": window_start,
                "level": level,
                "alertThreshold": budget.alert_threshold,
                "limitUsd": Nanos(budget.limit_nanos).to_usd(),
                "spendUsd": Nanos(spend).to_usd(),
                "autoStopOnLimit": budget.auto_stop_on_limit,
            }),
            now,
        )
        .await?;
        Ok(())
    }

    /// The pre-flight check of the usage gate: refuses when an active budget
    /// with auto-stop has reached its limit in the current window, or when
    /// `estimated_cost` would take the spend past it. Reaching the limit
    /// exactly is allowed; the next piece of work is then refused.
    ///
    /// # Errors
    /// `LIMIT_EXCEEDED` as above; `BAD_USER_INPUT` on `estimatedCost` when negative.
    #[tracing::instrument(name = "billing.budget_allows", skip_all, err(level = "debug"))]
    pub async fn budget_allows(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        estimated_cost: Nanos,
    ) -> Result<(), Error> {
        if estimated_cost.0 < 0 {
            return Err(Error::bad_input("estimatedCost", "must not be negative"));
        }
        let budgets = cost_budget::Entity::find()
            .filter(cost_budget::Column::UserId.eq(user_id))
            .filter(cost_budget::Column::IsActive.eq(true))
            .filter(cost_budget::Column::AutoStopOnLimit.eq(true))
            .all(db)
            .await?;
        let today = self.clock.now().date_naive();
        for budget in budgets {
            let Some(window) = Window::parse(&budget.window) else {
                continue;
            };
            let (start, end) = window.bounds(today);
            let spend = spend_between(db, user_id, start, end).await?;
            if spend >= budget.limit_nanos {
                return Err(Error::LimitExceeded(format!(
                    "the {} cost budget is used up",
                    budget.window
                )));
            }
            if i128::from(spend) + i128::from(estimated_cost.0) > i128::from(budget.limit_nanos) {
                return Err(Error::LimitExceeded(format!(
                    "the estimated cost would exceed the {} cost budget",
                    budget.window
                )));
            }
        }
        Ok(())
    }

    /// The caller's month-end forecast for the current UTC month.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "billing.cost_forecast", skip_all, err(level = "debug"))]
    pub async fn cost_forecast(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<Forecast, Error> {
        let today = self.clock.now().date_naive();
        let (start, end) = Window::Monthly.bounds(today);
        let tomorrow = today + Days::new(1);
        let mtd = spend_between(db, actor.user_id, start, tomorrow).await?;
        let days_elapsed = (tomorrow - start).num_days();
        let days_in_month = (end - start).num_days();
        Ok(Forecast {
            month_start: start,
            month_to_date: Nanos(mtd),
            days_elapsed,
            days_in_month,
            projected: Nanos(project(mtd, days_elapsed, days_in_month)),
        })
    }

    /// The caller's daily summaries from `from` through `to` (both UTC days,
    /// inclusive), oldest first; days without cost have no row.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `to` when it is before `from` or the range is longer
    /// than [`MAX_SUMMARY_DAYS`].
    #[tracing::instrument(name = "billing.cost_summaries", skip_all, err(level = "debug"))]
    pub async fn cost_summaries(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<daily_cost_summary::Model>, Error> {
        if to < from {
            return Err(Error::bad_input("to", "must not be before from"));
        }
        if (to - from).num_days() + 1 > MAX_SUMMARY_DAYS {
            return Err(Error::bad_input(
                "to",
                format!("the range may span at most {MAX_SUMMARY_DAYS} days"),
            ));
        }
        Ok(daily_cost_summary::Entity::find()
            .filter(daily_cost_summary::Column::UserId.eq(actor.user_id))
            .filter(daily_cost_summary::Column::Day.gte(from))
            .filter(daily_cost_summary::Column::Day.lte(to))
            .order_by_asc(daily_cost_summary::Column::Day)
            .all(db)
            .await?)
    }
}
