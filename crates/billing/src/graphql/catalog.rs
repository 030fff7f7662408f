//! Admin catalogue management in GraphQL: create and update tiers, execution
//! packs and agent add-ons. Admins only (`FORBIDDEN` otherwise); every input
//! is parsed at the edge (`BAD_USER_INPUT` naming the field); each mutation
//! runs in one transaction whose audit entry records the old and new values.
//! Nothing is deleted: `isActive: false` retires an item from sale.

use super::billing;
use super::plans::{AgentAddOn, ExecutionPack, SubscriptionTier};
use crate::catalog::{
    AddOnFields, NewAddOn, NewPack, NewTier, PackFields, TierFields, add_on_view, pack_view,
    tier_view,
};
use async_graphql::{Context, ID, InputObject, Object, Result};
use core_auth::admin::AdminCap;
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use uuid::Uuid;

fn opt_id(field: &str, value: Option<ID>) -> Result<Option<Uuid>> {
    value.map(|v| parse_id(&v, field)).transpose().gql()
}

/// A tier's full terms. Prices are integer cents; percentages whole percent.
#[derive(InputObject)]
pub struct TierInput {
    /// Stable identifier: lower-case letters, digits and `-`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Monthly list price, cents; greater than 0.
    pub monthly_price_cents: i64,
    /// One-time fee on a first subscription, cents; 0 or more.
    #[graphql(default)]
    pub setup_fee_cents: i64,
    /// Added to the weekly price, 0..=100.
    #[graphql(default)]
    pub weekly_premium_percent: i32,
    /// Off six months, 0..=100.
    #[graphql(default)]
    pub six_month_discount_percent: i32,
    /// Off twelve months, 0..=100.
    #[graphql(default)]
    pub annual_discount_percent: i32,
    /// Agents the plan allows; greater than 0.
    pub max_agents: i32,
    /// Agents that may run at once; greater than 0, at most `maxAgents`.
    pub max_concurrent_agents: i32,
    /// Executions per month; greater than 0.
    pub monthly_execution_limit: i32,
    /// Longest execution, minutes; greater than 0.
    #[graphql(default = 60)]
    pub max_execution_duration_minutes: i32,
    /// Whether executions past the limit are allowed and charged.
    #[graphql(default)]
    pub overage_enabled: bool,
    /// Charge per overage execution, cents; required when overage is enabled.
    pub overage_price_cents: Option<i64>,
    /// Free trial days, 0..=90.
    #[graphql(default)]
    pub trial_days: i32,
    /// Display order; also the rank minimum tiers compare.
    #[graphql(default)]
    pub sort_order: i32,
    /// On sale; false retires the tier (existing subscriptions keep it).
    #[graphql(default = true)]
    pub is_active: bool,
}

impl TierInput {
    fn parse(self) -> Result<NewTier> {
        NewTier::parse(TierFields {
            slug: self.slug,
            name: self.name,
            description: self.description,
            monthly_price_cents: self.monthly_price_cents,
            setup_fee_cents: self.setup_fee_cents,
            weekly_premium_percent: self.weekly_premium_percent,
            six_month_discount_percent: self.six_month_discount_percent,
            annual_discount_percent: self.annual_discount_percent,
            max_agents: self.max_agents,
            max_concurrent_agents: self.max_concurrent_agents,
            monthly_execution_limit: self.monthly_execution_limit,
            max_execution_duration_minutes: self.max_execution_duration_minutes,
            overage_enabled: self.overage_enabled,
            overage_price_cents: self.overage_price_cents,
            trial_days: self.trial_days,
            sort_order: self.sort_order,
            is_active: self.is_active,
        })
        .gql()
    }
}

/// An execution pack's full terms.
#[derive(InputObject)]
pub struct ExecutionPackInput {
    /// Stable identifier: lower-case letters, digits and `-`.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Executions included, greater than 0; null = unlimited.
    pub execution_count: Option<i32>,
    /// Days it stays valid, greater than 0; null = until the billing period ends.
    pub valid_for_days: Option<i32>,
    /// Price, cents; greater than 0.
    pub price_cents: i64,
    /// Lowest tier that may buy it; null = any.
    pub min_tier_id: Option<ID>,
    /// Purchases allowed per user per UTC month, greater than 0; null = no cap.
    pub max_per_month: Option<i32>,
    /// Display order.
    #[graphql(default)]
    pub sort_order: i32,
    /// On sale; false retires the pack (packs already bought stay valid).
    #[graphql(default = true)]
    pub is_active: bool,
}

impl ExecutionPackInput {
    fn parse(self) -> Result<NewPack> {
        NewPack::parse(PackFields {
            min_tier_id: opt_id("minTierId", self.min_tier_id)?,
            slug: self.slug,
            name: self.name,
            description: self.description,
            execution_count: self.execution_count,
            valid_for_days: self.valid_for_days,
            price_cents: self.price_cents,
            max_per_month: self.max_per_month,
            sort_order: self.sort_order,
            is_active: self.is_active,
        })
        .gql()
    }
}

/// An agent add-on's full terms.
#[derive(InputObject)]
pub struct AgentAddOnInput {
    /// Stable identifier: lower-case letters, digits and `-`.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Agent slots per unit; greater than 0.
    pub additional_agents: i32,
    /// Price per unit per month, cents; greater than 0.
    pub monthly_price_cents: i64,
    /// Lowest tier that may buy it; null = any.
    pub min_tier_id: Option<ID>,
    /// Most units one user may hold, greater than 0; null = no cap.
    pub max_per_user: Option<i32>,
    /// Display order.
    #[graphql(default)]
    pub sort_order: i32,
    /// On sale; false retires the add-on (holdings stay).
    #[graphql(default = true)]
    pub is_active: bool,
}

impl AgentAddOnInput {
    fn parse(self) -> Result<NewAddOn> {
        NewAddOn::parse(AddOnFields {
            min_tier_id: opt_id("minTierId", self.min_tier_id)?,
            slug: self.slug,
            name: self.name,
            description: self.description,
            additional_agents: self.additional_agents,
            monthly_price_cents: self.monthly_price_cents,
            max_per_user: self.max_per_user,
            sort_order: self.sort_order,
            is_active: self.is_active,
        })
        .gql()
    }
}

/// Admin catalogue mutations.
#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Creates a subscription tier (admins only). `CONFLICT` on `slug` when taken.
    async fn create_tier(&self, ctx: &Context<'_>, input: TierInput) -> Result<SubscriptionTier> {
        let cap = AdminCap::check(ctx.writer()?).gql()?;
        let req = input.parse()?;
        let mut txn = ctx.begin().await?;
        let t = billing(ctx).create_tier(&txn, &cap, req).await.gql()?;
        txn.subject("subscription_tier", t.id);
        txn.changes(None, Some(tier_view(&t)));
        txn.commit().await.gql()?;
        Ok(t.into())
    }

    /// Replaces a tier's terms (admins only). Existing subscriptions keep
    /// their price until they change tier; `isActive: false` retires the tier
    /// instead of deleting it. `NOT_FOUND` for an unknown id.
    async fn update_tier(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: TierInput,
    ) -> Result<SubscriptionTier> {
        let cap = AdminCap::check(ctx.writer()?).gql()?;
        let id = parse_id(&id, "id").gql()?;
        let req = input.parse()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = billing(ctx).update_tier(&txn, &cap, id, req).await.gql()?;
        txn.subject("subscription_tier", new.id);
        txn.changes(Some(tier_view(&old)), Some(tier_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Creates an execution pack (admins only).
    async fn create_execution_pack(
        &self,
        ctx: &Context<'_>,
        input: ExecutionPackInput,
    ) -> Result<ExecutionPack> {
        let cap = AdminCap::check(ctx.writer()?).gql()?;
        let req = input.parse()?;
        let mut txn = ctx.begin().await?;
        let p = billing(ctx)
            .create_execution_pack(&txn, &cap, req)
            .await
            .gql()?;
        txn.subject("execution_pack", p.id);
        txn.changes(None, Some(pack_view(&p)));
        txn.commit().await.gql()?;
        Ok(p.into())
    }

    /// Replaces an execution pack's terms (admins only); `NOT_FOUND` for an unknown id.
    async fn update_execution_pack(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ExecutionPackInput,
    ) -> Result<ExecutionPack> {
        let cap = AdminCap::check(ctx.writer()?).gql()?;
        let id = parse_id(&id, "id").gql()?;
        let req = input.parse()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = billing(ctx)
            .update_execution_pack(&txn, &cap, id, req)
            .await
            .gql()?;
        txn.subject("execution_pack", new.id);
        txn.changes(Some(pack_view(&old)), Some(pack_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Creates an agent add-on (admins only).
    async fn create_agent_add_on(
        &self,
        ctx: &Context<'_>,
        input: AgentAddOnInput,
    ) -> Result<AgentAddOn> {
        let cap = AdminCap::check(ctx.writer()?).gql()?;
        let req = input.parse()?;
        let mut txn = ctx.begin().await?;
        let a = billing(ctx)
            .create_agent_add_on(&txn, &cap, req)
            .await
            .gql()?;
        txn.subject("agent_add_on", a.id);
        txn.changes(None, Some(add_on_view(&a)));
        txn.commit().await.gql()?;
        Ok(a.into())
    }

    /// Replaces an agent add-on's terms (admins only); `NOT_FOUND` for an unknown id.
    async fn update_agent_add_on(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AgentAddOnInput,
    ) -> Result<AgentAddOn> {
        let cap = AdminCap::check(ctx.writer()?).gql()?;
        let id = parse_id(&id, "id").gql()?;
        let req = input.parse()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = billing(ctx)
            .update_agent_add_on(&txn, &cap, id, req)
            .await
            .gql()?;
        txn.subject("agent_add_on", new.id);
        txn.changes(Some(add_on_view(&old)), Some(add_on_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }
}
