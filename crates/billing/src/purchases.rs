//! Buying execution packs and agent add-ons. The monthly pack cap and the
//! per-user add-on cap are enforced by unique indexes and conditional
//! updates, so concurrent purchases cannot exceed them.

use crate::Billing;
use crate::entity::{
    agent_add_on, execution_pack, subscription_tier as tier, subscription_usage_record as usage,
    user_agent_add_on, user_execution_pack, user_subscription as sub,
};
use crate::subscriptions::Status;
use chrono::Duration;
use kernel::actor::Actor;
use kernel::error::{Error, Result, is_unique_violation};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use uuid::Uuid;

/// Most add-on units bought in one call.
pub const MAX_ADD_ON_QUANTITY: i32 = 100;

impl Billing {
    /// The active execution packs, in display order.
    ///
    /// # Errors
    /// Internal on database failure.
    pub async fn execution_packs(
        &self,
        db: &impl ConnectionTrait,
    ) -> Result<Vec<execution_pack::Model>> {
        Ok(execution_pack::Entity::find()
            .filter(execution_pack::Column::IsActive.eq(true))
            .order_by_asc(execution_pack::Column::SortOrder)
            .order_by_asc(execution_pack::Column::Id)
            .all(db)
            .await?)
    }

    /// The active agent add-ons, in display order.
    ///
    /// # Errors
    /// Internal on database failure.
    pub async fn agent_add_ons(
        &self,
        db: &impl ConnectionTrait,
    ) -> Result<Vec<agent_add_on::Model>> {
        Ok(agent_add_on::Entity::find()
            .filter(agent_add_on::Column::IsActive.eq(true))
            .order_by_asc(agent_add_on::Column::SortOrder)
            .order_by_asc(agent_add_on::Column::Id)
            .all(db)
            .await?)
    }

    /// The caller's subscription that may buy extras (active or in trial) and its tier.
    async fn buying_subscription(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<(sub::Model, tier::Model)> {
        let s = self
            .live_subscription(db, actor.user_id)
            .await?
            .filter(|s| matches!(Status::parse(&s.status), Status::Active | Status::Trial))
            .ok_or(Error::Forbidden("an active subscription is required"))?;
        let t = tier::Entity::find_by_id(s.tier_id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("tier"))?;
        Ok((s, t))
    }

    /// Refuses when `have` ranks below the minimum tier (by `sort_order`).
    async fn require_tier(
        &self,
        db: &impl ConnectionTrait,
        have: &tier::Model,
        min: Option<Uuid>,
    ) -> Result<()> {
        let Some(min) = min else { return Ok(()) };
        let min = tier::Entity::find_by_id(min)
            .one(db)
            .await?
            .ok_or(Error::NotFound("tier"))?;
        if have.sort_order < min.sort_order {
            return Err(Error::Forbidden(
                "your tier is below this item's minimum tier",
            ));
        }
        Ok(())
    }

    /// Buys one execution pack for the caller: at most `max_per_month` of
    /// this pack per UTC calendar month, only from its minimum tier up. It
    /// expires after `valid_for_days`, or with the current billing period.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown pack; `FORBIDDEN` without an active
    /// subscription or below the minimum tier; `LIMIT_EXCEEDED` past the
    /// monthly cap; `CONFLICT` when a concurrent purchase took the same slot;
    /// `BAD_USER_INPUT` on `payment` when declined.
    #[tracing::instrument(skip_all)]
    pub async fn buy_execution_pack(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        pack_id: Uuid,
    ) -> Result<user_execution_pack::Model> {
        let pack = execution_pack::Entity::find_by_id(pack_id)
            .filter(execution_pack::Column::IsActive.eq(true))
            .one(db)
            .await?
            .ok_or(Error::NotFound("execution pack"))?;
        let (s, t) = self.buying_subscription(db, actor).await?;
        self.require_tier(db, &t, pack.min_tier_id).await?;
        let now = self.clock.now();
        let month = now.format("%Y-%m").to_string();
        let bought = user_execution_pack::Entity::find()
            .filter(user_execution_pack::Column::UserId.eq(actor.user_id))
            .filter(user_execution_pack::Column::PackId.eq(pack.id))
            .filter(user_execution_pack::Column::PurchaseMonth.eq(month.clone()))
            .count(db)
            .await?;
        let seq = i32::try_from(bought + 1).unwrap_or(i32::MAX);
        if pack.max_per_month.is_some_and(|cap| seq > cap) {
            return Err(Error::LimitExceeded(format!(
                "this pack can be bought {} times a month",
                pack.max_per_month.unwrap_or_default()
            )));
        }
        let expires_at = match pack.valid_for_days {
            Some(days) => now + Duration::days(i64::from(days)),
            None => s.current_period_end,
        };
        let id = kernel::id::new_id();
        let row = user_execution_pack::ActiveModel {
            id: Set(id),
            user_id: Set(actor.user_id),
            pack_id: Set(pack.id),
            executions_included: Set(pack.execution_count),
            executions_remaining: Set(pack.execution_count),
            purchased_at: Set(now),
            expires_at: Set(Some(expires_at)),
            price_paid_cents: Set(pack.price_cents),
            stripe_payment_intent_id: Set(None),
            status: Set("active".into()),
            purchase_month: Set(month),
            purchase_seq: Set(seq),
            metadata: Set(None),
        };
        match user_execution_pack::Entity::insert(row)
            .exec_without_returning(db)
            .await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::conflict(
                    "packId",
                    "a concurrent purchase of this pack won; retry",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(count) = pack.execution_count {
            usage::Entity::update_many()
                .col_expr(
                    usage::Column::AdditionalExecutionsPurchased,
                    Expr::col(usage::Column::AdditionalExecutionsPurchased).add(count),
                )
                .filter(usage::Column::UserId.eq(actor.user_id))
                .filter(usage::Column::PeriodStart.eq(s.current_period_start))
                .exec(db)
                .await?;
        }
        let payment = self
            .charge(
                actor.user_id,
                pack.price_cents,
                format!("Execution pack {}", pack.name),
                format!("execution_pack:{id}"),
            )
            .await?;
        user_execution_pack::Entity::update_many()
            .col_expr(
                user_execution_pack::Column::StripePaymentIntentId,
                Expr::value(payment),
            )
            .filter(user_execution_pack::Column::Id.eq(id))
            .exec(db)
            .await?;
        user_execution_pack::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("execution pack"))
    }

    /// Buys `quantity` units of an agent add-on: charges the first month and
    /// raises the subscription's agent slots. The held quantity never exceeds
    /// `max_per_user`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `quantity` outside 1..=100; `NOT_FOUND` for an
    /// unknown add-on; `FORBIDDEN` without an active subscription or below the
    /// minimum tier; `LIMIT_EXCEEDED` past the cap; `CONFLICT` on a lost race.
    #[tracing::instrument(skip_all)]
    pub async fn buy_agent_add_on(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        add_on_id: Uuid,
        quantity: i32,
    ) -> Result<user_agent_add_on::Model> {
        if !(1..=MAX_ADD_ON_QUANTITY).contains(&quantity) {
            return Err(Error::bad_input("quantity", "must be between 1 and 100"));
        }
        let add_on = agent_add_on::Entity::find_by_id(add_on_id)
            .filter(agent_add_on::Column::IsActive.eq(true))
            .one(db)
            .await?
            .ok_or(Error::NotFound("agent add-on"))?;
        let (s, t) = self.buying_subscription(db, actor).await?;
        self.require_tier(db, &t, add_on.min_tier_id).await?;
        let cap = add_on.max_per_user.unwrap_or(i32::MAX);
        if quantity > cap {
            return Err(limit(cap));
        }
        let now = self.clock.now();
        use user_agent_add_on::Column as C;
        // Raise the live row only while the total stays within the cap.
        let raised = user_agent_add_on::Entity::update_many()
            .col_expr(C::Quantity, Expr::col(C::Quantity).add(quantity))
            .filter(C::UserId.eq(actor.user_id))
            .filter(C::AddOnId.eq(add_on.id))
            .filter(C::Status.eq("active"))
            .filter(Expr::col(C::Quantity).lte(cap - quantity))
            .exec(db)
            .await?;
        if raised.rows_affected == 0 {
            let held = user_agent_add_on::Entity::find()
                .filter(C::UserId.eq(actor.user_id))
                .filter(C::AddOnId.eq(add_on.id))
                .filter(C::Status.eq("active"))
                .count(db)
                .await?;
            if held > 0 {
                return Err(limit(cap));
            }
            let row = user_agent_add_on::ActiveModel {
                id: Set(kernel::id::new_id()),
                user_id: Set(actor.user_id),
                add_on_id: Set(add_on.id),
                quantity: Set(quantity),
                status: Set("active".into()),
                stripe_subscription_item_id: Set(None),
                started_at: Set(now),
                cancelled_at: Set(None),
                metadata: Set(None),
            };
            match user_agent_add_on::Entity::insert(row)
                .exec_without_returning(db)
                .await
            {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::conflict(
                        "addOnId",
                        "a concurrent purchase of this add-on won; retry",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let slots = add_on.additional_agents.saturating_mul(quantity);
        sub::Entity::update_many()
            .col_expr(
                sub::Column::AdditionalAgentSlots,
                Expr::col(sub::Column::AdditionalAgentSlots).add(slots),
            )
            .col_expr(sub::Column::UpdatedAt, Expr::value(now))
            .filter(sub::Column::Id.eq(s.id))
            .exec(db)
            .await?;
        usage::Entity::update_many()
            .col_expr(
                usage::Column::AgentLimit,
                Expr::col(usage::Column::AgentLimit).add(slots),
            )
            .filter(usage::Column::UserId.eq(actor.user_id))
            .filter(usage::Column::PeriodStart.eq(s.current_period_start))
            .exec(db)
            .await?;
        let cents = add_on
            .monthly_price_cents
            .saturating_mul(i64::from(quantity));
        self.charge(
            actor.user_id,
            cents,
            format!("Agent add-on {} x{quantity}", add_on.name),
            format!(
                "agent_add_on:{}:{}:{}",
                actor.user_id,
                add_on.id,
                now.timestamp_micros()
            ),
        )
        .await?;
        user_agent_add_on::Entity::find()
            .filter(C::UserId.eq(actor.user_id))
            .filter(C::AddOnId.eq(add_on.id))
            .filter(C::Status.eq("active"))
            .one(db)
            .await?
            .ok_or(Error::NotFound("agent add-on"))
    }
}

fn limit(cap: i32) -> Error {
    Error::LimitExceeded(format!("at most {cap} of this add-on per user"))
}
