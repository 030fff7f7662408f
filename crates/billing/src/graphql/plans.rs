//! Plans, quotes and subscriptions in GraphQL: public `tiers` and `quote`,
//! the caller's `subscription` and `prorationQuote`, and the mutations that
//! subscribe, change tier, cancel and buy packs and add-ons.

use crate::Billing;
use crate::entity::{
    agent_add_on, execution_pack, subscription_tier, user_agent_add_on, user_execution_pack,
    user_subscription,
};
use crate::quote::{Frequency, Quote};
use crate::subscriptions::{ProrationQuote as Proration, Status, Subscribe};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use sea_orm::EntityTrait;
use serde_json::json;

fn billing<'a>(ctx: &Context<'a>) -> &'a Billing {
    ctx.data_unchecked::<Billing>()
}

/// How often a subscription is billed.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PaymentFrequency {
    /// Every 7 days: monthly x 12 / 52 plus the weekly premium.
    Weekly,
    /// Every calendar month: the monthly price.
    Monthly,
    /// Every 6 months: 6 x monthly less the six-month discount.
    SixMonth,
    /// Every 12 months: 12 x monthly less the annual discount.
    Annual,
}

impl From<PaymentFrequency> for Frequency {
    fn from(f: PaymentFrequency) -> Self {
        match f {
            PaymentFrequency::Weekly => Self::Weekly,
            PaymentFrequency::Monthly => Self::Monthly,
            PaymentFrequency::SixMonth => Self::SixMonth,
            PaymentFrequency::Annual => Self::Annual,
        }
    }
}

impl From<Frequency> for PaymentFrequency {
    fn from(f: Frequency) -> Self {
        match f {
            Frequency::Weekly => Self::Weekly,
            Frequency::Monthly => Self::Monthly,
            Frequency::SixMonth => Self::SixMonth,
            Frequency::Annual => Self::Annual,
        }
    }
}

/// Where a subscription stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SubscriptionStatus {
    /// Paid and in period.
    Active,
    /// In a free trial; nothing charged yet.
    Trial,
    /// The last invoice failed.
    PastDue,
    /// Paused.
    Paused,
    /// Ended.
    Cancelled,
}

impl From<Status> for SubscriptionStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => Self::Active,
            Status::Trial => Self::Trial,
            Status::PastDue => Self::PastDue,
            Status::Paused => Self::Paused,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

/// A plan. Prices are integer cents; percentages are whole percent.
#[derive(SimpleObject, Clone)]
pub struct SubscriptionTier {
    /// Opaque id.
    pub id: ID,
    /// Stable identifier (`starter`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Monthly list price, cents.
    pub monthly_price_cents: i64,
    /// One-time fee on a first subscription, cents.
    pub setup_fee_cents: i64,
    /// Added to the weekly price, whole percent.
    pub weekly_premium_percent: i32,
    /// Off six months, whole percent.
    pub six_month_discount_percent: i32,
    /// Off twelve months, whole percent.
    pub annual_discount_percent: i32,
    /// Agents the plan allows.
    pub max_agents: i32,
    /// Agents that may run at once.
    pub max_concurrent_agents: i32,
    /// Executions per month.
    pub monthly_execution_limit: i32,
    /// Longest execution, minutes.
    pub max_execution_duration_minutes: i32,
    /// GHL accounts allowed; null = unlimited.
    pub max_ghl_accounts: Option<i32>,
    /// Feature flags of the plan.
    pub features: Json<serde_json::Value>,
    /// Swarm strategies the plan may use.
    pub allowed_strategies: Json<serde_json::Value>,
    /// Display order; also the rank that minimum tiers compare.
    pub sort_order: i32,
    /// Shown with a "popular" badge.
    pub is_popular: bool,
    /// Whether executions past the limit are allowed and charged.
    pub overage_enabled: bool,
    /// Charge per overage execution, cents.
    pub overage_price_cents: Option<i64>,
    /// Free trial days a first subscription may start with.
    pub trial_days: i32,
}

impl From<subscription_tier::Model> for SubscriptionTier {
    fn from(m: subscription_tier::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            slug: m.slug,
            name: m.name,
            description: m.description,
            monthly_price_cents: m.monthly_price_cents,
            setup_fee_cents: m.setup_fee_cents,
            weekly_premium_percent: m.weekly_premium_percent,
            six_month_discount_percent: m.six_month_discount_percent,
            annual_discount_percent: m.annual_discount_percent,
            max_agents: m.max_agents,
            max_concurrent_agents: m.max_concurrent_agents,
            monthly_execution_limit: m.monthly_execution_limit,
            max_execution_duration_minutes: m.max_execution_duration_minutes,
            max_ghl_accounts: m.max_ghl_accounts,
            features: Json(m.features),
            allowed_strategies: Json(m.allowed_strategies),
            sort_order: m.sort_order,
            is_popular: m.is_popular,
            overage_enabled: m.overage_enabled,
            overage_price_cents: m.overage_price_cents,
            trial_days: m.trial_days,
        }
    }
}

/// What subscribing costs, computed on the server in integer cents.
#[derive(SimpleObject, Clone)]
pub struct PriceQuote {
    /// The quoted tier.
    pub tier_id: ID,
    /// The quoted frequency.
    pub frequency: PaymentFrequency,
    /// One period's price, cents (rounded half up once).
    pub period_price_cents: i64,
    /// The setup fee, cents; 0 when the caller has subscribed before.
    pub setup_fee_cents: i64,
    /// Charged when subscribing: period price plus setup fee.
    pub total_cents: i64,
}

impl PriceQuote {
    fn new(tier_id: &ID, q: Quote) -> Self {
        Self {
            tier_id: tier_id.clone(),
            frequency: q.frequency.into(),
            period_price_cents: q.period_price_cents,
            setup_fee_cents: q.setup_fee_cents,
            total_cents: q.total_cents,
        }
    }
}

/// The caller's subscription.
#[derive(SimpleObject, Clone)]
pub struct UserSubscription {
    /// Opaque id.
    pub id: ID,
    /// The plan.
    pub tier: SubscriptionTier,
    /// Where it stands.
    pub status: SubscriptionStatus,
    /// How often it is billed.
    pub payment_frequency: PaymentFrequency,
    /// Start of the current period.
    pub current_period_start: DateTime<Utc>,
    /// End of the current period (of the trial, while in trial).
    pub current_period_end: DateTime<Utc>,
    /// Ends at the period's end instead of renewing.
    pub cancel_at_period_end: bool,
    /// Executions used in this period.
    pub executions_used_this_period: i32,
    /// Agents spawned in this period.
    pub agents_spawned_this_period: i32,
    /// Agent slots added by add-ons.
    pub additional_agent_slots: i32,
    /// When the trial ends, for a trial.
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Proration credit kept for later invoices, cents.
    pub credit_balance_cents: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl UserSubscription {
    fn new(m: user_subscription::Model, tier: subscription_tier::Model) -> Self {
        let credit = m
            .metadata
            .as_ref()
            .and_then(|v| v.get("creditBalanceCents"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        Self {
            id: ID(m.id.to_string()),
            tier: tier.into(),
            status: Status::parse(&m.status).into(),
            payment_frequency: Frequency::parse(&m.payment_frequency)
                .unwrap_or(Frequency::Monthly)
                .into(),
            current_period_start: m.current_period_start,
            current_period_end: m.current_period_end,
            cancel_at_period_end: m.cancel_at_period_end,
            executions_used_this_period: m.executions_used_this_period,
            agents_spawned_this_period: m.agents_spawned_this_period,
            additional_agent_slots: m.additional_agent_slots,
            trial_ends_at: m.trial_ends_at,
            cancelled_at: m.cancelled_at,
            credit_balance_cents: credit,
            created_at: m.created_at,
        }
    }
}

/// What a tier change costs now, shown before it is applied.
#[derive(SimpleObject, Clone)]
pub struct ProrationQuote {
    /// The tier changed to.
    pub tier_id: ID,
    /// The frequency, kept by the change.
    pub frequency: PaymentFrequency,
    /// The instant prorated at (now, floored to the minute).
    pub prorated_at: DateTime<Utc>,
    /// Seconds left in the current period.
    pub remaining_seconds: i64,
    /// The current period's length, seconds.
    pub period_seconds: i64,
    /// Credit for the unused part of the current tier, cents.
    pub credit_cents: i64,
    /// The new tier's price for the same part, cents.
    pub charge_cents: i64,
    /// Charged now: charge less credit, at least 0. Pass it to `changeTier`.
    pub amount_due_cents: i64,
    /// Kept as account credit when the credit exceeds the charge, cents.
    pub credit_balance_cents: i64,
}

impl From<Proration> for ProrationQuote {
    fn from(p: Proration) -> Self {
        Self {
            tier_id: ID(p.tier_id.to_string()),
            frequency: p.frequency.into(),
            prorated_at: p.prorated_at,
            remaining_seconds: p.remaining_seconds,
            period_seconds: p.period_seconds,
            credit_cents: p.credit_cents,
            charge_cents: p.charge_cents,
            amount_due_cents: p.amount_due_cents,
            credit_balance_cents: p.credit_balance_cents,
        }
    }
}

/// The result of `changeTier`.
#[derive(SimpleObject, Clone)]
pub struct ChangeTierPayload {
    /// The subscription on its new tier.
    pub subscription: UserSubscription,
    /// The proration that was applied.
    pub proration: ProrationQuote,
}

/// A one-time execution bundle for sale.
#[derive(SimpleObject, Clone)]
pub struct ExecutionPack {
    /// Opaque id.
    pub id: ID,
    /// Stable identifier.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Executions included; null = unlimited.
    pub execution_count: Option<i32>,
    /// Days it stays valid; null = until the billing period ends.
    pub valid_for_days: Option<i32>,
    /// Price, cents.
    pub price_cents: i64,
    /// Lowest tier that may buy it.
    pub min_tier_id: Option<ID>,
    /// Purchases allowed per user per UTC month.
    pub max_per_month: Option<i32>,
}

impl From<execution_pack::Model> for ExecutionPack {
    fn from(m: execution_pack::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            slug: m.slug,
            name: m.name,
            description: m.description,
            execution_count: m.execution_count,
            valid_for_days: m.valid_for_days,
            price_cents: m.price_cents,
            min_tier_id: m.min_tier_id.map(|id| ID(id.to_string())),
            max_per_month: m.max_per_month,
        }
    }
}

/// Recurring extra agent slots for sale.
#[derive(SimpleObject, Clone)]
pub struct AgentAddOn {
    /// Opaque id.
    pub id: ID,
    /// Stable identifier.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Agent slots per unit.
    pub additional_agents: i32,
    /// Price per unit per month, cents.
    pub monthly_price_cents: i64,
    /// Lowest tier that may buy it.
    pub min_tier_id: Option<ID>,
    /// Most units one user may hold.
    pub max_per_user: Option<i32>,
}

impl From<agent_add_on::Model> for AgentAddOn {
    fn from(m: agent_add_on::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            slug: m.slug,
            name: m.name,
            description: m.description,
            additional_agents: m.additional_agents,
            monthly_price_cents: m.monthly_price_cents,
            min_tier_id: m.min_tier_id.map(|id| ID(id.to_string())),
            max_per_user: m.max_per_user,
        }
    }
}

/// An execution pack the caller bought.
#[derive(SimpleObject, Clone)]
pub struct ExecutionPackPurchase {
    /// Opaque id.
    pub id: ID,
    /// The pack bought.
    pub pack_id: ID,
    /// Executions included; null = unlimited.
    pub executions_included: Option<i32>,
    /// Executions left; null = unlimited.
    pub executions_remaining: Option<i32>,
    /// When it was bought.
    pub purchased_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// What was paid, cents.
    pub price_paid_cents: i64,
    /// `active`, `depleted` or `expired`.
    pub status: String,
}

impl From<user_execution_pack::Model> for ExecutionPackPurchase {
    fn from(m: user_execution_pack::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            pack_id: ID(m.pack_id.to_string()),
            executions_included: m.executions_included,
            executions_remaining: m.executions_remaining,
            purchased_at: m.purchased_at,
            expires_at: m.expires_at,
            price_paid_cents: m.price_paid_cents,
            status: m.status,
        }
    }
}

/// An agent add-on the caller holds.
#[derive(SimpleObject, Clone)]
pub struct AgentAddOnHolding {
    /// Opaque id.
    pub id: ID,
    /// The add-on held.
    pub add_on_id: ID,
    /// Units held.
    pub quantity: i32,
    /// `active` or `cancelled`.
    pub status: String,
    /// When the first unit was bought.
    pub started_at: DateTime<Utc>,
}

impl From<user_agent_add_on::Model> for AgentAddOnHolding {
    fn from(m: user_agent_add_on::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            add_on_id: ID(m.add_on_id.to_string()),
            quantity: m.quantity,
            status: m.status,
            started_at: m.started_at,
        }
    }
}

/// Input of `subscribe`.
#[derive(InputObject)]
pub struct SubscribeInput {
    /// The tier.
    pub tier_id: ID,
    /// How often to pay.
    pub frequency: PaymentFrequency,
    /// Start with the tier's free trial (first subscription only): nothing is
    /// charged until it ends.
    #[graphql(default)]
    pub trial: bool,
}

/// Input of `changeTier`.
#[derive(InputObject)]
pub struct ChangeTierInput {
    /// The new tier.
    pub tier_id: ID,
    /// `amountDueCents` of the `prorationQuote` the customer accepted; a
    /// different current quote refuses the change with `CONFLICT`.
    pub expected_amount_cents: i64,
}

/// Input of `buyAgentAddOn`.
#[derive(InputObject)]
pub struct BuyAgentAddOnInput {
    /// The add-on.
    pub add_on_id: ID,
    /// Units to buy, 1 to 100.
    #[graphql(default = 1)]
    pub quantity: i32,
}

/// Plans and subscription queries.
#[derive(Default)]
pub struct PlansQuery;

#[Object]
impl PlansQuery {
    /// The plans on sale, in display order. A short fixed catalogue, so a list.
    async fn tiers(&self, ctx: &Context<'_>) -> Result<Vec<SubscriptionTier>> {
        let tiers = billing(ctx).tiers(ctx.db()).await.gql()?;
        Ok(tiers.into_iter().map(Into::into).collect())
    }

    /// What subscribing to `tierId` at `frequency` costs, in cents; includes the
    /// setup fee unless the signed-in caller has subscribed before.
    async fn quote(
        &self,
        ctx: &Context<'_>,
        tier_id: ID,
        frequency: PaymentFrequency,
    ) -> Result<PriceQuote> {
        let id = parse_id(&tier_id, "tierId").gql()?;
        let q = billing(ctx)
            .quote(ctx.db(), ctx.maybe_actor(), id, frequency.into())
            .await
            .gql()?;
        Ok(PriceQuote::new(&tier_id, q))
    }

    /// The execution packs on sale.
    async fn execution_packs(&self, ctx: &Context<'_>) -> Result<Vec<ExecutionPack>> {
        let packs = billing(ctx).execution_packs(ctx.db()).await.gql()?;
        Ok(packs.into_iter().map(Into::into).collect())
    }

    /// The agent add-ons on sale.
    async fn agent_add_ons(&self, ctx: &Context<'_>) -> Result<Vec<AgentAddOn>> {
        let add_ons = billing(ctx).agent_add_ons(ctx.db()).await.gql()?;
        Ok(add_ons.into_iter().map(Into::into).collect())
    }

    /// The caller's subscription that has not ended; null when there is none.
    async fn subscription(&self, ctx: &Context<'_>) -> Result<Option<UserSubscription>> {
        let actor = ctx.actor()?;
        let db = ctx.db();
        let Some(s) = billing(ctx)
            .live_subscription(db, actor.user_id)
            .await
            .gql()?
        else {
            return Ok(None);
        };
        let tier = subscription_tier::Entity::find_by_id(s.tier_id)
            .one(db)
            .await
            .gql()?
            .ok_or(kernel::Error::NotFound("tier"))
            .gql()?;
        Ok(Some(UserSubscription::new(s, tier)))
    }

    /// What moving the caller's subscription to `tierId` would cost now.
    async fn proration_quote(&self, ctx: &Context<'_>, tier_id: ID) -> Result<ProrationQuote> {
        let actor = ctx.actor()?;
        let id = parse_id(&tier_id, "tierId").gql()?;
        let q = billing(ctx)
            .proration_quote(ctx.db(), actor, id)
            .await
            .gql()?;
        Ok(q.into())
    }
}

/// Plans and subscription mutations.
#[derive(Default)]
pub struct PlansMutation;

async fn with_tier(
    db: &impl sea_orm::ConnectionTrait,
    s: user_subscription::Model,
) -> Result<UserSubscription> {
    let tier = subscription_tier::Entity::find_by_id(s.tier_id)
        .one(db)
        .await
        .gql()?
        .ok_or(kernel::Error::NotFound("tier"))
        .gql()?;
    Ok(UserSubscription::new(s, tier))
}

#[Object]
impl PlansMutation {
    /// Subscribes the caller: charges the setup fee (first subscription) and
    /// the first period, or starts a free trial. One live subscription per user.
    async fn subscribe(
        &self,
        ctx: &Context<'_>,
        input: SubscribeInput,
    ) -> Result<UserSubscription> {
        let actor = ctx.writer()?;
        let req = Subscribe {
            tier_id: parse_id(&input.tier_id, "tierId").gql()?,
            frequency: input.frequency.into(),
            trial: input.trial,
        };
        let mut txn = ctx.begin().await?;
        let s = billing(ctx).subscribe(&txn, actor, req).await.gql()?;
        txn.subject("user_subscription", s.id);
        txn.changes(None, Some(audit_view(&s)));
        let out = with_tier(&txn, s).await?;
        txn.commit().await.gql()?;
        Ok(out)
    }

    /// Moves the caller to another tier, charging exactly the accepted
    /// `prorationQuote` (`expectedAmountCents`).
    async fn change_tier(
        &self,
        ctx: &Context<'_>,
        input: ChangeTierInput,
    ) -> Result<ChangeTierPayload> {
        let actor = ctx.writer()?;
        let tier_id = parse_id(&input.tier_id, "tierId").gql()?;
        let mut txn = ctx.begin().await?;
        let (s, proration) = billing(ctx)
            .change_tier(&txn, actor, tier_id, input.expected_amount_cents)
            .await
            .gql()?;
        txn.subject("user_subscription", s.id);
        txn.changes(None, Some(audit_view(&s)));
        let subscription = with_tier(&txn, s).await?;
        txn.commit().await.gql()?;
        Ok(ChangeTierPayload {
            subscription,
            proration: proration.into(),
        })
    }

    /// Cancels the caller's subscription at the period's end, or now.
    async fn cancel_subscription(
        &self,
        ctx: &Context<'_>,
        at_period_end: bool,
    ) -> Result<UserSubscription> {
        let actor = ctx.writer()?;
        let mut txn = ctx.begin().await?;
        let s = billing(ctx)
            .cancel_subscription(&txn, actor, at_period_end)
            .await
            .gql()?;
        txn.subject("user_subscription", s.id);
        txn.changes(None, Some(audit_view(&s)));
        let out = with_tier(&txn, s).await?;
        txn.commit().await.gql()?;
        Ok(out)
    }

    /// Buys one execution pack (monthly cap and minimum tier enforced).
    async fn buy_execution_pack(
        &self,
        ctx: &Context<'_>,
        pack_id: ID,
    ) -> Result<ExecutionPackPurchase> {
        let actor = ctx.writer()?;
        let id = parse_id(&pack_id, "packId").gql()?;
        let mut txn = ctx.begin().await?;
        let p = billing(ctx)
            .buy_execution_pack(&txn, actor, id)
            .await
            .gql()?;
        txn.subject("user_execution_pack", p.id);
        txn.changes(
            None,
            Some(json!({"packId": p.pack_id, "pricePaidCents": p.price_paid_cents})),
        );
        txn.commit().await.gql()?;
        Ok(p.into())
    }

    /// Buys units of an agent add-on (cap per user and minimum tier enforced).
    async fn buy_agent_add_on(
        &self,
        ctx: &Context<'_>,
        input: BuyAgentAddOnInput,
    ) -> Result<AgentAddOnHolding> {
        let actor = ctx.writer()?;
        let id = parse_id(&input.add_on_id, "addOnId").gql()?;
        let mut txn = ctx.begin().await?;
        let h = billing(ctx)
            .buy_agent_add_on(&txn, actor, id, input.quantity)
            .await
            .gql()?;
        txn.subject("user_agent_add_on", h.id);
        txn.changes(
            None,
            Some(json!({"addOnId": h.add_on_id, "quantity": h.quantity})),
        );
        txn.commit().await.gql()?;
        Ok(h.into())
    }
}

fn audit_view(s: &user_subscription::Model) -> serde_json::Value {
    json!({
        "tierId": s.tier_id,
        "status": s.status,
        "paymentFrequency": s.payment_frequency,
        "currentPeriodEnd": s.current_period_end,
        "cancelAtPeriodEnd": s.cancel_at_period_end,
    })
}
