//! The usage gate: other domains take one execution before they start work
//! and settle it afterwards.
//!
//! ```text
//! let r = billing.reserve_execution(db, actor, ReserveExecution::default()).await?;
//! match do_the_work().await {
//!     Ok(_) => billing.commit_execution(db, actor, r.id).await?,
//!     Err(_) => billing.release_execution(db, actor, r.id).await?,
//! };
//! ```
//!
//! Rules, in the order they are checked:
//! 1. The caller needs a subscription whose status is `active` or `trial` and
//!    whose current period contains now; otherwise `LIMIT_EXCEEDED`.
//! 2. The budget seam ([`BudgetCheck`]) must allow the estimated cost.
//! 3. Running agents (unsettled reservations) are capped by the tier's
//!    `max_concurrent_agents`; over the cap is `LIMIT_EXCEEDED` (a plan
//!    limit, not a request rate: waiting does not help until an agent ends).
//! 4. The execution comes from the plan (tier limit + the subscription's
//!    `additional_executions` add-on), then from execution packs, soonest
//!    expiring first (expired, depleted and inactive packs are skipped), then
//!    as overage when the tier allows it (the tier's overage price is added to
//!    the period's usage record); otherwise `LIMIT_EXCEEDED`.
//!
//! Every counter moves through a conditional `UPDATE ... WHERE <room left>`
//! whose affected-row count says whether the unit was taken, so concurrent
//! reservations on PostgreSQL never overshoot a limit and SQLite (one
//! connection) needs no row locks. The gate runs on whatever connection it is
//! given: inside a caller's transaction it commits or rolls back with it (the
//! GraphQL mutations do this). A refusal after an earlier step took an agent
//! slot gives the slot back before answering, so on the pool too a refusal
//! leaves nothing; only a database failure between statements needs the
//! caller's transaction to stay all-or-nothing.
//!
//! Settling is exactly once: `commit` and `release` move a `reserved` row and
//! only the call that moved it touches the counters. Repeating the same
//! settlement answers `false` (a no-op); the other settlement of an already
//! settled reservation is `INVALID_TRANSITION`. A reservation left unsettled
//! past its `expires_at` (a crashed worker) is released by the period job.
//!
//! A holder keeps an unsettled reservation alive by extending it; only
//! abandoned ones are released. [`Billing::extend_reservation`] moves a
//! `reserved` row's `expires_at` to now + `reservation_ttl`, so work that runs
//! longer than the TTL (a long run, pause/resume cycles) stays reserved, is
//! charged when committed, and keeps its agent slot while it runs.

use crate::settings::Billing;
use chrono::{DateTime, Duration, Utc};
use kernel::actor::Actor;
use kernel::db::raw;
use kernel::error::Error;
use sea_orm::{ConnectionTrait, Value};
use std::future::Future;
use uuid::Uuid;

/// Subscription statuses that may use executions.
const USABLE_STATUSES: &str = "('active', 'trial')";

/// How long a reservation may stay unsettled before the cleanup job releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationTtl(pub Duration);

impl Default for ReservationTtl {
    fn default() -> Self {
        Self(Duration::hours(1))
    }
}

/// What the caller asks the gate for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReserveExecution {
    /// The work's estimated cost in nano-dollars (1e-9 USD), for the budget check.
    estimated_cost_nanos: i64,
}

impl ReserveExecution {
    /// A request with an estimated cost in nano-dollars.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `estimatedCostNanos` when negative.
    pub fn with_estimated_cost(nanos: i64) -> Result<Self, Error> {
        if nanos < 0 {
            return Err(Error::bad_input(
                "estimatedCostNanos",
                "must not be negative",
            ));
        }
        Ok(Self {
            estimated_cost_nanos: nanos,
        })
    }

    /// The estimated cost in nano-dollars.
    pub fn estimated_cost_nanos(&self) -> i64 {
        self.estimated_cost_nanos
    }
}

/// Where a reserved execution was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The plan's limit plus add-on executions.
    Plan,
    /// An execution pack.
    Pack(Uuid),
    /// Beyond every allowance, charged at the tier's overage price (cents).
    Overage(i64),
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Pack(_) => "pack",
            Self::Overage(_) => "overage",
        }
    }
}

/// One execution taken and not yet settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reservation row; pass it to commit or release.
    pub id: Uuid,
    /// The user whose allowance it was taken from.
    pub user_id: Uuid,
    /// Where the execution came from.
    pub source: Source,
    /// The start of the period it was counted in.
    pub period_start: DateTime<Utc>,
    /// When the cleanup job releases it if nobody settled it.
    pub expires_at: DateTime<Utc>,
}

/// The seam through which cost budgets refuse work before it starts.
///
/// The gate calls [`BudgetCheck::allows`] before taking anything; an error
/// refuses the reservation with that error and leaves every counter as it was.
pub trait BudgetCheck: Sync {
    /// Whether `user_id` may start work estimated at `estimated_cost_nanos`.
    ///
    /// # Errors
    /// The refusal (typically `LIMIT_EXCEEDED`), or an internal error.
    fn allows<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_id: Uuid,
        estimated_cost_nanos: i64,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The default budget check: allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBudget;

impl BudgetCheck for NoBudget {
    async fn allows<C: ConnectionTrait>(&self, _: &C, _: Uuid, _: i64) -> Result<(), Error> {
        Ok(())
    }
}

/// The platform's budget check: the caller's cost budgets with
/// `auto_stop_on_limit` refuse work once spent, or when the estimate would
/// cross them (the pre-flight check of [`Billing::budget_allows`]).
#[derive(Debug, Clone, Copy)]
pub struct CostBudgets<'a>(pub &'a Billing);

impl BudgetCheck for CostBudgets<'_> {
    async fn allows<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_id: Uuid,
        estimated_cost_nanos: i64,
    ) -> Result<(), Error> {
        self.0
            .budget_allows(conn, user_id, crate::nanos::Nanos(estimated_cost_nanos))
            .await
    }
}

/// The subscription and tier numbers the gate decides on.
#[derive(Debug, Clone)]
pub(crate) struct GateState {
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    pub tier_id: Uuid,
    pub status: String,
    pub payment_frequency: String,
    pub cancel_at_period_end: bool,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub executions_used: i64,
    pub additional_executions: i64,
    pub running_agents: i64,
    pub execution_limit: i64,
    pub agent_limit: i64,
    pub max_concurrent_agents: i64,
    pub overage_price_cents: Option<i64>,
}

impl GateState {
    fn usable_at(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status.as_str(), "active" | "trial")
            && self.period_start <= now
            && now < self.period_end
    }
}

/// Runs a write and answers how many rows it changed.
pub(crate) async fn exec(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, Error> {
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(raw(backend, sql, values))
        .await?
        .rows_affected())
}

/// The caller's subscription with its tier's limits, if any: the live one, or
/// else the latest cancelled one (a user keeps cancelled rows as history).
pub(crate) async fn load_state(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Option<GateState>, Error> {
    load_state_where(db, "s.user_id = ?", user_id).await
}

/// One subscription by id with its tier's limits.
pub(crate) async fn load_subscription(
    db: &impl ConnectionTrait,
    subscription_id: Uuid,
) -> Result<Option<GateState>, Error> {
    load_state_where(db, "s.id = ?", subscription_id).await
}

async fn load_state_where(
    db: &impl ConnectionTrait,
    filter: &str,
    id: Uuid,
) -> Result<Option<GateState>, Error> {
    let backend = db.get_database_backend();
    let stmt = raw(
        backend,
        &format!(
            "SELECT s.id, s.user_id, s.tier_id, s.status, s.payment_frequency, \
             s.cancel_at_period_end, s.current_period_start, s.current_period_end, \
             s.executions_used_this_period, s.additional_executions, s.running_agents, \
             t.monthly_execution_limit, t.max_agents, t.max_concurrent_agents, \
             t.overage_enabled, t.overage_price_cents \
             FROM user_subscriptions s JOIN subscription_tiers t ON t.id = s.tier_id \
             WHERE {filter} \
             ORDER BY CASE WHEN s.status = 'cancelled' THEN 1 ELSE 0 END, s.created_at DESC, s.id DESC \
             LIMIT 1"
        ),
        vec![id.into()],
    );
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    let int = |col: &str| -> Result<i64, Error> { Ok(i64::from(row.try_get::<i32>("", col)?)) };
    let overage_enabled: bool = row.try_get("", "overage_enabled")?;
    let overage_price: Option<i64> = row.try_get("", "overage_price_cents")?;
    Ok(Some(GateState {
        subscription_id: row.try_get("", "id")?,
        user_id: row.try_get("", "user_id")?,
        tier_id: row.try_get("", "tier_id")?,
        status: row.try_get("", "status")?,
        payment_frequency: row.try_get("", "payment_frequency")?,
        cancel_at_period_end: row.try_get("", "cancel_at_period_end")?,
        period_start: row.try_get("", "current_period_start")?,
        period_end: row.try_get("", "current_period_end")?,
        executions_used: int("executions_used_this_period")?,
        additional_executions: int("additional_executions")?,
        running_agents: int("running_agents")?,
        execution_limit: int("monthly_execution_limit")?,
        agent_limit: int("max_agents")?,
        max_concurrent_agents: int("max_concurrent_agents")?,
        // Overage needs both the switch and a price; a tier without a price refuses.
        overage_price_cents: overage_price.filter(|_| overage_enabled),
    }))
}

/// Makes sure the period's usage record exists (several callers may race; the
/// unique (user, period start) index keeps one).
pub(crate) async fn ensure_usage_record(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    s: &GateState,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    exec(
        db,
        "INSERT INTO subscription_usage_records \
         (id, user_id, period_start, period_end, tier_id, execution_limit, agent_limit, \
          executions_used, peak_concurrent_agents, additional_executions_purchased, \
          additional_executions_used, overage_executions, overage_charged_cents, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, ?) \
         ON CONFLICT (user_id, period_start) DO NOTHING",
        vec![
            kernel::id::new_id().into(),
            user_id.into(),
            s.period_start.into(),
            s.period_end.into(),
            s.tier_id.into(),
            (s.execution_limit + s.additional_executions).into(),
            s.agent_limit.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

impl Billing {
    /// Takes one execution for `actor`, checked against the caller's auto-stop
    /// cost budgets ([`CostBudgets`]).
    ///
    /// # Errors
    /// See [`Billing::reserve_execution_with`].
    #[tracing::instrument(skip_all, fields(user_id = %actor.user_id))]
    pub async fn reserve_execution(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        req: ReserveExecution,
    ) -> Result<Reservation, Error> {
        self.reserve_execution_with(db, actor, req, &CostBudgets(self))
            .await
    }

    /// Takes one execution for `actor` after `budget` allowed its estimated cost.
    ///
    /// # Errors
    /// `LIMIT_EXCEEDED` with no usable subscription, at the concurrent-agent
    /// cap, or with nothing left and no overage; the budget's refusal; internal
    /// on database failure.
    #[tracing::instrument(skip_all, fields(user_id = %actor.user_id))]
    pub async fn reserve_execution_with(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        req: ReserveExecution,
        budget: &impl BudgetCheck,
    ) -> Result<Reservation, Error> {
        let user_id = actor.user_id;
        let now = self.clock.now();
        let s = match load_state(db, user_id).await? {
            Some(s) if s.usable_at(now) => s,
            _ => {
                return Err(Error::LimitExceeded(
                    "no active subscription for the current period".into(),
                ));
            }
        };
        budget.allows(db, user_id, req.estimated_cost_nanos).await?;

        // The guard every subscription write repeats: same tier, same period, still usable.
        let guard = format!(
            "id = ? AND tier_id = ? AND current_period_start = ? AND status IN {USABLE_STATUSES} \
             AND running_agents < ?"
        );
        let guard_values = || -> Vec<Value> {
            vec![
                s.subscription_id.into(),
                s.tier_id.into(),
                s.period_start.into(),
                s.max_concurrent_agents.into(),
            ]
        };
        // Plan first: an agent slot and an execution in one statement.
        let mut values = guard_values();
        values.push(s.execution_limit.into());
        let took_plan = exec(
            db,
            &format!(
                "UPDATE user_subscriptions SET running_agents = running_agents + 1, \
                 executions_used_this_period = executions_used_this_period + 1 \
                 WHERE {guard} AND executions_used_this_period < ? + additional_executions"
            ),
            values,
        )
        .await?
            == 1;
        let source = if took_plan {
            Source::Plan
        } else {
            let took_slot = exec(
                db,
                &format!(
                    "UPDATE user_subscriptions SET running_agents = running_agents + 1 WHERE {guard}"
                ),
                guard_values(),
            )
            .await?
                == 1;
            if !took_slot {
                return Err(self.why_refused(db, user_id, now).await);
            }
            match self.take_from_packs(db, user_id, now).await? {
                Some(pack_id) => Source::Pack(pack_id),
                None => match s.overage_price_cents {
                    Some(cents) => Source::Overage(cents),
                    None => {
                        give_back_slot(db, s.subscription_id).await?;
                        return Err(Error::LimitExceeded(
                            "no executions left in this period".into(),
                        ));
                    }
                },
            }
        };
        let reservation = Reservation {
            id: kernel::id::new_id(),
            user_id,
            source,
            period_start: s.period_start,
            expires_at: now + self.settings.reservation_ttl.0,
        };
        self.record_reservation(db, &s, &reservation, now).await?;
        Ok(reservation)
    }

    /// Names the reason a subscription write matched no row.
    async fn why_refused(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Error {
        match load_state(db, user_id).await {
            Ok(Some(s)) if s.usable_at(now) && s.running_agents >= s.max_concurrent_agents => {
                Error::LimitExceeded(format!(
                    "at most {} agents may run at once on this plan",
                    s.max_concurrent_agents
                ))
            }
            Ok(_) => Error::LimitExceeded("no active subscription for the current period".into()),
            Err(err) => err,
        }
    }

    /// Takes one execution from the soonest-expiring usable pack.
    async fn take_from_packs(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, Error> {
        let backend = db.get_database_backend();
        let usable = "status = 'active' AND (expires_at IS NULL OR expires_at > ?) \
                      AND (executions_remaining IS NULL OR executions_remaining > 0)";
        let rows = db
            .query_all_raw(raw(
                backend,
                &format!(
                    "SELECT id FROM user_execution_packs WHERE user_id = ? AND {usable} \
                     ORDER BY CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, \
                     purchased_at, id"
                ),
                vec![user_id.into(), now.into()],
            ))
            .await?;
        // A pack emptied by a concurrent caller between the read and the write
        // matches no row; the next one is tried.
        for row in rows {
            let pack_id: Uuid = row.try_get("", "id")?;
            let taken = exec(
                db,
                &format!(
                    "UPDATE user_execution_packs SET \
                     executions_remaining = executions_remaining - 1, \
                     status = CASE WHEN executions_remaining = 1 THEN 'depleted' ELSE status END \
                     WHERE id = ? AND {usable}"
                ),
                vec![pack_id.into(), now.into()],
            )
            .await?;
            if taken == 1 {
                return Ok(Some(pack_id));
            }
        }
        Ok(None)
    }

    /// Writes the reservation row and counts it in the period's usage record.
    async fn record_reservation(
        &self,
        db: &impl ConnectionTrait,
        s: &GateState,
        r: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (pack_id, overage_cents): (Option<Uuid>, i64) = match r.source {
            Source::Pack(id) => (Some(id), 0),
            Source::Overage(cents) => (None, cents),
            Source::Plan => (None, 0),
        };
        exec(
            db,
            "INSERT INTO usage_reservations \
             (id, user_id, subscription_id, period_start, source, pack_id, overage_cents, status, \
              expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?)",
            vec![
                r.id.into(),
                r.user_id.into(),
                s.subscription_id.into(),
                r.period_start.into(),
                r.source.as_str().into(),
                pack_id.into(),
                overage_cents.into(),
                r.expires_at.into(),
                now.into(),
            ],
        )
        .await?;
        // The period's record usually exists; create it only when the update finds none.
        let peak_of = Some(s.subscription_id);
        if usage_delta(db, r.user_id, r.period_start, r.source, 1, peak_of).await? == 0 {
            ensure_usage_record(db, r.user_id, s, now).await?;
            usage_delta(db, r.user_id, r.period_start, r.source, 1, peak_of).await?;
        }
        Ok(())
    }

    /// Keeps unsettled reservation `reservation_id` alive: its `expires_at`
    /// moves to at least `now` + `reservation_ttl`, through
    /// [`Self::extend_reservation_until`], so a longer hold set for a wait is
    /// never cut back. Answers whether it moved: `false` for a settled (or
    /// unknown) reservation, which stays as it is, and for one already held
    /// longer.
    ///
    /// # Errors
    /// Internal on database failure.
    pub async fn extend_reservation(
        &self,
        db: &impl ConnectionTrait,
        reservation_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.extend_reservation_until(db, reservation_id, now + self.settings.reservation_ttl.0)
            .await
    }

    /// Keeps unsettled reservation `reservation_id` alive until at least
    /// `until`, for work that waits longer than `reservation_ttl` between two
    /// [`Self::extend_reservation`] calls (a paused run, one waiting on an
    /// approval). Never shortens `expires_at`; answers whether it moved.
    ///
    /// # Errors
    /// Internal on database failure.
    pub async fn extend_reservation_until(
        &self,
        db: &impl ConnectionTrait,
        reservation_id: Uuid,
        until: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let moved = exec(
            db,
            "UPDATE usage_reservations SET expires_at = ? \
             WHERE id = ? AND status = 'reserved' AND expires_at < ?",
            vec![until.into(), reservation_id.into(), until.into()],
        )
        .await?;
        Ok(moved == 1)
    }

    /// Marks `reservation_id` committed: the work happened and the execution stays used.
    ///
    /// # Errors
    /// `NOT_FOUND` for another user's or an unknown reservation,
    /// `INVALID_TRANSITION` when it was released. Committing twice answers `false`.
    #[tracing::instrument(skip_all, fields(user_id = %actor.user_id))]
    pub async fn commit_execution(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        reservation_id: Uuid,
    ) -> Result<bool, Error> {
        self.settle(db, Some(actor.user_id), reservation_id, Settle::Commit)
            .await
    }

    /// Releases `reservation_id`: the work failed and the execution is given back.
    ///
    /// # Errors
    /// `NOT_FOUND` for another user's or an unknown reservation,
    /// `INVALID_TRANSITION` when it was committed. Releasing twice answers `false`.
    #[tracing::instrument(skip_all, fields(user_id = %actor.user_id))]
    pub async fn release_execution(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        reservation_id: Uuid,
    ) -> Result<bool, Error> {
        self.settle(db, Some(actor.user_id), reservation_id, Settle::Release)
            .await
    }

    /// Moves a `reserved` row to its settled state and, only if this call
    /// moved it, frees the agent slot (and on release gives the unit back).
    /// `owner` is `None` for the cleanup job.
    pub(crate) async fn settle(
        &self,
        db: &impl ConnectionTrait,
        owner: Option<Uuid>,
        reservation_id: Uuid,
        how: Settle,
    ) -> Result<bool, Error> {
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(raw(
                backend,
                "SELECT user_id, subscription_id, period_start, source, pack_id, overage_cents, \
                 status FROM usage_reservations WHERE id = ?",
                vec![reservation_id.into()],
            ))
            .await?;
        let Some(row) = row else {
            return Err(Error::NotFound("reservation"));
        };
        let user_id: Uuid = row.try_get("", "user_id")?;
        if owner.is_some_and(|o| o != user_id) {
            return Err(Error::NotFound("reservation"));
        }
        let moved = exec(
            db,
            "UPDATE usage_reservations SET status = ?, settled_at = ? \
             WHERE id = ? AND status = 'reserved'",
            vec![
                how.status().into(),
                self.clock.now().into(),
                reservation_id.into(),
            ],
        )
        .await?
            == 1;
        if !moved {
            let status: String = row.try_get("", "status")?;
            return if status == how.status() || status == "reserved" {
                // Either already settled this way, or settled this way by a
                // concurrent call between our read and our write.
                Ok(false)
            } else {
                Err(Error::InvalidTransition(format!(
                    "the reservation is already {status}"
                )))
            };
        }
        let subscription_id: Uuid = row.try_get("", "subscription_id")?;
        give_back_slot(db, subscription_id).await?;
        if how == Settle::Release {
            let period_start: DateTime<Utc> = row.try_get("", "period_start")?;
            let source = match row.try_get::<String>("", "source")?.as_str() {
                "pack" => Source::Pack(row.try_get("", "pack_id")?),
                "overage" => Source::Overage(row.try_get("", "overage_cents")?),
                _ => Source::Plan,
            };
            give_back_execution(db, subscription_id, period_start, source, self.clock.now())
                .await?;
            usage_delta(db, user_id, period_start, source, -1, None).await?;
        }
        Ok(true)
    }
}

/// How a reservation is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    Commit,
    Release,
}

impl Settle {
    fn status(self) -> &'static str {
        match self {
            Self::Commit => "committed",
            Self::Release => "released",
        }
    }
}

async fn give_back_slot(db: &impl ConnectionTrait, subscription_id: Uuid) -> Result<(), Error> {
    exec(
        db,
        "UPDATE user_subscriptions SET running_agents = running_agents - 1 \
         WHERE id = ? AND running_agents > 0",
        vec![subscription_id.into()],
    )
    .await?;
    Ok(())
}

/// Returns a released execution to where it came from. A plan execution of a
/// period that has since rolled over is not returned (that counter was reset);
/// an expired pack stays expired.
async fn give_back_execution(
    db: &impl ConnectionTrait,
    subscription_id: Uuid,
    period_start: DateTime<Utc>,
    source: Source,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    match source {
        Source::Plan => {
            exec(
                db,
                "UPDATE user_subscriptions \
                 SET executions_used_this_period = executions_used_this_period - 1 \
                 WHERE id = ? AND current_period_start = ? AND executions_used_this_period > 0",
                vec![subscription_id.into(), period_start.into()],
            )
            .await?;
        }
        Source::Pack(pack_id) => {
            exec(
                db,
                "UPDATE user_execution_packs SET \
                 executions_remaining = executions_remaining + 1, \
                 status = CASE WHEN status = 'depleted' THEN 'active' ELSE status END \
                 WHERE id = ? AND executions_remaining IS NOT NULL \
                 AND status IN ('active', 'depleted') AND (expires_at IS NULL OR expires_at > ?)",
                vec![pack_id.into(), now.into()],
            )
            .await?;
        }
        // The overage charge is taken back through the usage record below.
        Source::Overage(_) => {}
    }
    Ok(())
}

/// Adds `sign` (±1) of an execution from `source` to the period's usage
/// record, and raises its peak of concurrent agents to the running count of
/// `peak_of` (a subscription id) when given. Answers the rows changed.
async fn usage_delta(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    period_start: DateTime<Utc>,
    source: Source,
    sign: i64,
    peak_of: Option<Uuid>,
) -> Result<u64, Error> {
    let (from_pack, overage, cents) = match source {
        Source::Plan => (0, 0, 0),
        Source::Pack(_) => (sign, 0, 0),
        Source::Overage(cents) => (0, sign, sign * cents),
    };
    let running = "COALESCE((SELECT running_agents FROM user_subscriptions WHERE id = ?), 0)";
    exec(
        db,
        &format!(
            "UPDATE subscription_usage_records SET \
             executions_used = executions_used + ?, \
             additional_executions_used = additional_executions_used + ?, \
             overage_executions = overage_executions + ?, \
             overage_charged_cents = overage_charged_cents + ?, \
             peak_concurrent_agents = CASE WHEN peak_concurrent_agents < {running} \
             THEN {running} ELSE peak_concurrent_agents END \
             WHERE user_id = ? AND period_start = ?"
        ),
        vec![
            sign.into(),
            from_pack.into(),
            overage.into(),
            cents.into(),
            peak_of.into(),
            peak_of.into(),
            user_id.into(),
            period_start.into(),
        ],
    )
    .await
}
