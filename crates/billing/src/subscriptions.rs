//! Subscribing, changing tier with a shown-then-applied proration, and
//! cancelling. Every write is a conditional statement, so two racing calls
//! cannot both succeed on PostgreSQL, and SQLite (one connection) is serial.

use crate::Billing;
use crate::entity::{
    subscription_tier as tier, subscription_usage_record as usage, user_agent_add_on,
    user_subscription as sub,
};
use crate::gateway::{Charge, GatewayError};
use crate::quote::{self, Frequency, Quote, period_price, prorate};
use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use kernel::actor::Actor;
use kernel::error::{Error, Result, is_unique_violation};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, sea_query::Expr,
};
use uuid::Uuid;

/// A subscription's state (seed 004 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Paid and in period.
    Active,
    /// In a free trial; nothing charged yet.
    Trial,
    /// The last invoice failed.
    PastDue,
    /// Paused by the provider or an operator.
    Paused,
    /// Ended; kept as history.
    Cancelled,
}

impl Status {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trial => "trial",
            Self::PastDue => "past_due",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored form; unknown text reads as cancelled (grants nothing).
    pub fn parse(text: &str) -> Self {
        match text {
            "active" => Self::Active,
            "trial" => Self::Trial,
            "past_due" => Self::PastDue,
            "paused" => Self::Paused,
            _ => Self::Cancelled,
        }
    }
}

/// The API error for a failed charge: a declined card is the customer's to
/// fix (`BAD_USER_INPUT` on `payment`), an unreachable provider is internal.
pub fn gateway_error(err: GatewayError) -> Error {
    match err {
        GatewayError::Declined(reason) => {
            Error::bad_input("payment", format!("payment declined: {reason}"))
        }
        other @ GatewayError::Unavailable(_) => Error::internal(other),
    }
}

/// A parsed `subscribe` request.
#[derive(Debug, Clone, Copy)]
pub struct Subscribe {
    /// The tier to subscribe to.
    pub tier_id: Uuid,
    /// How often to pay.
    pub frequency: Frequency,
    /// Start with the tier's free trial instead of paying now.
    pub trial: bool,
}

/// What changing to another tier now would cost, before it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProrationQuote {
    /// The tier changed to.
    pub tier_id: Uuid,
    /// The subscription's frequency, kept by the change.
    pub frequency: Frequency,
    /// The instant prorated at: now, floored to the minute, so a shown quote
    /// holds for the rest of that minute.
    pub prorated_at: DateTime<Utc>,
    /// Seconds left in the current period at `prorated_at`.
    pub remaining_seconds: i64,
    /// The current period's length in seconds.
    pub period_seconds: i64,
    /// Credit for the unused part of the current tier's period price.
    pub credit_cents: i64,
    /// The new tier's period price for the same unused part.
    pub charge_cents: i64,
    /// What is charged now: `charge - credit` when positive, else 0.
    pub amount_due_cents: i64,
    /// What is kept as account credit: `credit - charge` when positive, else 0.
    pub credit_balance_cents: i64,
}

fn now_floor_minute(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now)
}

impl Billing {
    /// The active tiers, in display order.
    ///
    /// # Errors
    /// Internal on database failure.
    #[tracing::instrument(skip_all)]
    pub async fn tiers(&self, db: &impl ConnectionTrait) -> Result<Vec<tier::Model>> {
        Ok(tier::Entity::find()
            .filter(tier::Column::IsActive.eq(true))
            .order_by_asc(tier::Column::SortOrder)
            .order_by_asc(tier::Column::Id)
            .all(db)
            .await?)
    }

    /// One active tier.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown or retired tier.
    pub async fn active_tier(&self, db: &impl ConnectionTrait, id: Uuid) -> Result<tier::Model> {
        tier::Entity::find_by_id(id)
            .filter(tier::Column::IsActive.eq(true))
            .one(db)
            .await?
            .ok_or(Error::NotFound("tier"))
    }

    /// The user's subscription that is not cancelled, if any.
    ///
    /// # Errors
    /// Internal on database failure.
    pub async fn live_subscription(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<Option<sub::Model>> {
        Ok(sub::Entity::find()
            .filter(sub::Column::UserId.eq(user_id))
            .filter(sub::Column::Status.ne(Status::Cancelled.as_str()))
            .one(db)
            .await?)
    }

    async fn has_subscribed_before(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<bool> {
        Ok(sub::Entity::find()
            .filter(sub::Column::UserId.eq(user_id))
            .count(db)
            .await?
            > 0)
    }

    /// The price of `tier_id` at `frequency`; the setup fee is included unless
    /// the caller has subscribed before (anonymous callers see it).
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown tier.
    #[tracing::instrument(skip_all)]
    pub async fn quote(
        &self,
        db: &impl ConnectionTrait,
        actor: Option<&Actor>,
        tier_id: Uuid,
        frequency: Frequency,
    ) -> Result<Quote> {
        let tier = self.active_tier(db, tier_id).await?;
        let first = match actor {
            Some(a) => !self.has_subscribed_before(db, a.user_id).await?,
            None => true,
        };
        Ok(quote::quote(&tier, frequency, first))
    }

    /// Subscribes the caller: charges setup fee (first subscription only) plus
    /// the first period, or starts the tier's trial with no charge.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown tier; `CONFLICT` when the caller already has a
    /// live subscription (also when two calls race); `BAD_USER_INPUT` on `trial`
    /// when the tier has no trial or this is not a first subscription, on
    /// `payment` when the charge is declined.
    #[tracing::instrument(skip_all)]
    pub async fn subscribe(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        req: Subscribe,
    ) -> Result<sub::Model> {
        let tier = self.active_tier(db, req.tier_id).await?;
        if self.live_subscription(db, actor.user_id).await?.is_some() {
            return Err(already_subscribed());
        }
        let first = !self.has_subscribed_before(db, actor.user_id).await?;
        let now = self.clock.now();
        let (status, end, trial_ends_at) = if req.trial {
            if tier.trial_days <= 0 {
                return Err(Error::bad_input("trial", "this tier has no trial"));
            }
            if !first {
                return Err(Error::bad_input(
                    "trial",
                    "only a first subscription has a trial",
                ));
            }
            let end = now + Duration::days(i64::from(tier.trial_days));
            (Status::Trial, end, Some(end))
        } else {
            (Status::Active, req.frequency.period_end(now), None)
        };
        let id = kernel::id::new_id();
        let row = sub::ActiveModel {
            id: Set(id),
            user_id: Set(actor.user_id),
            tier_id: Set(tier.id),
            status: Set(status.as_str().to_owned()),
            payment_frequency: Set(req.frequency.as_str().to_owned()),
            current_period_start: Set(now),
            current_period_end: Set(end),
            cancel_at_period_end: Set(false),
            stripe_customer_id: Set(None),
            stripe_subscription_id: Set(None),
            executions_used_this_period: Set(0),
            agents_spawned_this_period: Set(0),
            additional_agent_slots: Set(0),
            additional_executions: Set(0),
            trial_ends_at: Set(trial_ends_at),
            cancelled_at: Set(None),
            cancellation_reason: Set(None),
            // The price is locked until the subscription changes tier.
            metadata: Set(Some(
                serde_json::json!({ "priceTerms": quote::PriceTerms::from(&tier).to_json() }),
            )),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // The partial unique index decides a race; the loser gets CONFLICT.
        let created = match sub::Entity::insert(row).exec_with_returning(db).await {
            Ok(m) => m,
            Err(e) if is_unique_violation(&e) => return Err(already_subscribed()),
            Err(e) => return Err(e.into()),
        };
        open_period(db, &created, &tier, now).await?;
        if status == Status::Active {
            let q = quote::quote(&tier, req.frequency, first);
            self.charge(
                actor.user_id,
                q.total_cents,
                format!("{} subscription ({})", tier.name, req.frequency.as_str()),
                format!("subscribe:{id}"),
            )
            .await?;
        }
        Ok(created)
    }

    /// Takes `cents` through the gateway; nothing is charged for 0.
    pub(crate) async fn charge(
        &self,
        user_id: Uuid,
        cents: i64,
        description: String,
        idempotency_key: String,
    ) -> Result<Option<String>> {
        if cents <= 0 {
            return Ok(None);
        }
        let payment = self
            .gateway
            .charge(&Charge {
                user_id,
                amount_cents: cents,
                currency: "usd".into(),
                description,
                idempotency_key,
            })
            .await
            .map_err(gateway_error)?;
        Ok(Some(payment.provider_id))
    }

    /// What moving the caller's subscription to `new_tier` would cost now.
    ///
    /// # Errors
    /// `NOT_FOUND` without a live subscription or for an unknown tier;
    /// `BAD_USER_INPUT` on `tierId` when it is the current tier.
    #[tracing::instrument(skip_all)]
    pub async fn proration_quote(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        new_tier: Uuid,
    ) -> Result<ProrationQuote> {
        let current = self
            .live_subscription(db, actor.user_id)
            .await?
            .ok_or(Error::NotFound("subscription"))?;
        let (quote, _) = self.prorate_change(db, &current, new_tier).await?;
        Ok(quote)
    }

    async fn prorate_change(
        &self,
        db: &impl ConnectionTrait,
        current: &sub::Model,
        new_tier: Uuid,
    ) -> Result<(ProrationQuote, tier::Model)> {
        let to = self.active_tier(db, new_tier).await?;
        if to.id == current.tier_id {
            return Err(Error::bad_input("tierId", "already on this tier"));
        }
        let from = tier::Entity::find_by_id(current.tier_id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("tier"))?;
        let frequency = Frequency::parse(&current.payment_frequency).unwrap_or(Frequency::Monthly);
        let at = now_floor_minute(self.clock.now());
        let period_seconds =
            (current.current_period_end - current.current_period_start).num_seconds();
        let remaining_seconds = (current.current_period_end - at)
            .num_seconds()
            .clamp(0, period_seconds.max(0));
        // A trial has paid nothing, so it is neither credited nor charged.
        let paid = Status::parse(&current.status) != Status::Trial;
        let (credit, charge) = if paid {
            (
                prorate(
                    period_price((&from).into(), frequency),
                    remaining_seconds,
                    period_seconds,
                ),
                prorate(
                    period_price((&to).into(), frequency),
                    remaining_seconds,
                    period_seconds,
                ),
            )
        } else {
            (0, 0)
        };
        Ok((
            ProrationQuote {
                tier_id: to.id,
                frequency,
                prorated_at: at,
                remaining_seconds,
                period_seconds,
                credit_cents: credit,
                charge_cents: charge,
                amount_due_cents: (charge - credit).max(0),
                credit_balance_cents: (credit - charge).max(0),
            },
            to,
        ))
    }

    /// Moves the caller to `new_tier`, charging exactly the proration quote the
    /// caller saw: `expected_amount_cents` must equal its `amount_due_cents`.
    ///
    /// # Errors
    /// As [`Billing::proration_quote`]; `CONFLICT` on `expectedAmountCents`
    /// when the quote changed, or when another change won a race.
    #[tracing::instrument(skip_all)]
    pub async fn change_tier(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        new_tier: Uuid,
        expected_amount_cents: i64,
    ) -> Result<(sub::Model, ProrationQuote)> {
        let current = self
            .live_subscription(db, actor.user_id)
            .await?
            .ok_or(Error::NotFound("subscription"))?;
        let (quote, to) = self.prorate_change(db, &current, new_tier).await?;
        if quote.amount_due_cents != expected_amount_cents {
            return Err(Error::conflict(
                "expectedAmountCents",
                format!(
                    "the proration quote changed: {} cents are due now",
                    quote.amount_due_cents
                ),
            ));
        }
        let now = self.clock.now();
        let mut metadata = current
            .metadata
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        if quote.credit_balance_cents > 0 {
            let prior = metadata
                .get("creditBalanceCents")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            metadata["creditBalanceCents"] = (prior + quote.credit_balance_cents).into();
        }
        // A tier change takes the new tier's current price.
        metadata["priceTerms"] = quote::PriceTerms::from(&to).to_json();
        // Only the state the quote was computed from may change.
        let res = sub::Entity::update_many()
            .col_expr(sub::Column::TierId, Expr::value(to.id))
            .col_expr(sub::Column::Metadata, Expr::value(metadata))
            .col_expr(sub::Column::UpdatedAt, Expr::value(now))
            .filter(sub::Column::Id.eq(current.id))
            .filter(sub::Column::TierId.eq(current.tier_id))
            .filter(sub::Column::Status.eq(current.status.clone()))
            .exec(db)
            .await?;
        if res.rows_affected != 1 {
            return Err(Error::conflict(
                "tierId",
                "the subscription changed meanwhile",
            ));
        }
        usage::Entity::update_many()
            .col_expr(usage::Column::TierId, Expr::value(to.id))
            .col_expr(
                usage::Column::ExecutionLimit,
                Expr::value(to.monthly_execution_limit),
            )
            .col_expr(
                usage::Column::AgentLimit,
                Expr::value(to.max_agents.saturating_add(current.additional_agent_slots)),
            )
            .filter(usage::Column::UserId.eq(actor.user_id))
            .filter(usage::Column::PeriodStart.eq(current.current_period_start))
            .exec(db)
            .await?;
        self.charge(
            actor.user_id,
            quote.amount_due_cents,
            format!("Change to {} (prorated)", to.name),
            format!(
                "change_tier:{}:{}:{}",
                current.id,
                to.id,
                quote.prorated_at.timestamp()
            ),
        )
        .await?;
        let updated = sub::Entity::find_by_id(current.id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("subscription"))?;
        Ok((updated, quote))
    }

    /// Cancels the caller's subscription: at the period's end (a flag; it keeps
    /// working until then), or now (cancelled, the period ends now, add-ons end).
    /// No refund is made for the unused part, as with Stripe's default.
    ///
    /// # Errors
    /// `NOT_FOUND` without a live subscription; `CONFLICT` when it changed meanwhile.
    #[tracing::instrument(skip_all)]
    pub async fn cancel_subscription(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        at_period_end: bool,
    ) -> Result<sub::Model> {
        let current = self
            .live_subscription(db, actor.user_id)
            .await?
            .ok_or(Error::NotFound("subscription"))?;
        let now = self.clock.now();
        let mut update = sub::Entity::update_many()
            .col_expr(sub::Column::UpdatedAt, Expr::value(now))
            .filter(sub::Column::Id.eq(current.id))
            .filter(sub::Column::Status.ne(Status::Cancelled.as_str()));
        if at_period_end {
            update = update.col_expr(sub::Column::CancelAtPeriodEnd, Expr::value(true));
        } else {
            update = update
                .col_expr(sub::Column::Status, Expr::value(Status::Cancelled.as_str()))
                .col_expr(sub::Column::CancelledAt, Expr::value(now))
                .col_expr(sub::Column::CurrentPeriodEnd, Expr::value(now))
                .col_expr(
                    sub::Column::CancellationReason,
                    Expr::value("cancelled by the customer"),
                );
        }
        if update.exec(db).await?.rows_affected != 1 {
            return Err(Error::conflict(
                "subscription",
                "the subscription changed meanwhile",
            ));
        }
        if !at_period_end {
            end_add_ons(db, actor.user_id, now).await?;
        }
        sub::Entity::find_by_id(current.id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("subscription"))
    }
}

fn already_subscribed() -> Error {
    Error::conflict(
        "tierId",
        "you already have a subscription; change its tier instead",
    )
}

/// Ends every active add-on of the user.
pub(crate) async fn end_add_ons(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    user_agent_add_on::Entity::update_many()
        .col_expr(user_agent_add_on::Column::Status, Expr::value("cancelled"))
        .col_expr(user_agent_add_on::Column::CancelledAt, Expr::value(now))
        .filter(user_agent_add_on::Column::UserId.eq(user_id))
        .filter(user_agent_add_on::Column::Status.eq("active"))
        .exec(db)
        .await?;
    Ok(())
}

/// Opens the usage record of the subscription's current period; a no-op when
/// it exists already (unique per user and period start).
///
/// # Errors
/// Internal on database failure.
pub async fn open_period(
    db: &impl ConnectionTrait,
    s: &sub::Model,
    t: &tier::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = usage::ActiveModel {
        id: Set(kernel::id::new_id()),
        user_id: Set(s.user_id),
        period_start: Set(s.current_period_start),
        period_end: Set(s.current_period_end),
        tier_id: Set(t.id),
        execution_limit: Set(t.monthly_execution_limit),
        agent_limit: Set(t.max_agents.saturating_add(s.additional_agent_slots)),
        executions_used: Set(0),
        peak_concurrent_agents: Set(0),
        additional_executions_purchased: Set(0),
        additional_executions_used: Set(0),
        overage_executions: Set(0),
        overage_charged_cents: Set(0),
        metadata: Set(None),
        created_at: Set(now),
    };
    usage::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([usage::Column::UserId, usage::Column::PeriodStart])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
