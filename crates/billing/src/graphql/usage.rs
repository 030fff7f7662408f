//! `usage` for the caller, and the gate's reserve/commit/release for API clients.

use crate::gate::{Reservation, ReserveExecution, Source};
use crate::settings::Billing;
use crate::usage::UsageSummary;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;

fn billing<'a>(ctx: &Context<'a>) -> &'a Billing {
    ctx.data_unchecked::<Billing>()
}

/// Executions and agents of the caller's current billing period.
#[derive(SimpleObject, Debug, Clone)]
pub struct Usage {
    /// When the period started.
    pub period_start: DateTime<Utc>,
    /// When the period ends (exclusive).
    pub period_end: DateTime<Utc>,
    /// The plan's executions per period.
    pub plan_limit: i64,
    /// Add-on executions on top of the plan limit, per period.
    pub add_on_executions: i64,
    /// Executions counted against the plan limit plus add-ons.
    pub plan_used: i64,
    /// Executions left in usable execution packs; null when an unlimited pack is usable.
    pub pack_executions_remaining: Option<i64>,
    /// Executions taken in this period from every source.
    pub executions_used: i64,
    /// Executions taken beyond every allowance, charged as overage.
    pub overage_executions: i64,
    /// The overage charged in this period, in whole cents.
    pub overage_charged_cents: i64,
    /// Agents running now (reserved executions not yet committed or released).
    pub running_agents: i64,
    /// How many agents may run at once on this plan.
    pub max_concurrent_agents: i64,
}

impl From<UsageSummary> for Usage {
    fn from(u: UsageSummary) -> Self {
        Self {
            period_start: u.period_start,
            period_end: u.period_end,
            plan_limit: u.plan_limit,
            add_on_executions: u.add_on_executions,
            plan_used: u.plan_used,
            pack_executions_remaining: u.pack_executions_remaining,
            executions_used: u.executions_used,
            overage_executions: u.overage_executions,
            overage_charged_cents: u.overage_charged_cents,
            running_agents: u.running_agents,
            max_concurrent_agents: u.max_concurrent_agents,
        }
    }
}

/// Where a reserved execution was taken from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionSource {
    /// The plan's executions plus add-on executions.
    Plan,
    /// An execution pack (the soonest-expiring usable one).
    Pack,
    /// Beyond every allowance, charged at the plan's overage price.
    Overage,
}

/// One execution taken by `reserveExecution`, to be committed or released.
#[derive(SimpleObject, Debug, Clone)]
pub struct ExecutionReservation {
    /// Pass to `commitExecution` or `releaseExecution`.
    pub id: ID,
    /// Where the execution came from.
    pub source: ExecutionSource,
    /// The overage charged for it, in cents (0 unless `source` is `OVERAGE`).
    pub overage_cents: i64,
    /// When it is released automatically if not settled.
    pub expires_at: DateTime<Utc>,
}

impl From<Reservation> for ExecutionReservation {
    fn from(r: Reservation) -> Self {
        let (source, overage_cents) = match r.source {
            Source::Plan => (ExecutionSource::Plan, 0),
            Source::Pack(_) => (ExecutionSource::Pack, 0),
            Source::Overage(cents) => (ExecutionSource::Overage, cents),
        };
        Self {
            id: ID(r.id.to_string()),
            source,
            overage_cents,
            expires_at: r.expires_at,
        }
    }
}

/// What `reserveExecution` takes.
#[derive(InputObject, Debug, Clone, Default)]
pub struct ReserveExecutionInput {
    /// The work's estimated cost in nano-dollars (1e-9 USD), checked against budgets; default 0.
    pub estimated_cost_nanos: Option<i64>,
}

/// The caller's usage queries.
#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// The caller's usage in the current billing period; null without a subscription.
    async fn usage(&self, ctx: &Context<'_>) -> Result<Option<Usage>> {
        let actor = ctx.actor()?;
        let usage = billing(ctx).usage(ctx.db(), actor).await.gql()?;
        Ok(usage.map(Usage::from))
    }
}

/// The usage gate for API clients that run work themselves.
#[derive(Default)]
pub struct UsageMutation;

#[Object]
impl UsageMutation {
    /// Takes one execution from the caller's allowance (plan, then packs
    /// soonest-expiring first, then overage if the plan allows it); it counts as
    /// a running agent until committed or released. `LIMIT_EXCEEDED` when
    /// nothing is left or too many agents run.
    async fn reserve_execution(
        &self,
        ctx: &Context<'_>,
        input: Option<ReserveExecutionInput>,
    ) -> Result<ExecutionReservation> {
        let actor = ctx.writer()?;
        let cost = input.and_then(|i| i.estimated_cost_nanos).unwrap_or(0);
        let req = ReserveExecution::with_estimated_cost(cost).gql()?;
        let mut txn = ctx.begin().await?;
        let r = billing(ctx)
            .reserve_execution(&txn, actor, req)
            .await
            .gql()?;
        txn.subject("usage_reservation", r.id);
        txn.commit().await.gql()?;
        Ok(r.into())
    }

    /// Marks a reservation done: the execution stays used. True when this call
    /// committed it, false when it already was.
    async fn commit_execution(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let done = billing(ctx).commit_execution(&txn, actor, id).await.gql()?;
        txn.subject("usage_reservation", id);
        txn.commit().await.gql()?;
        Ok(done)
    }

    /// Gives a reserved execution back (the work failed). True when this call
    /// released it, false when it already was.
    async fn release_execution(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let done = billing(ctx)
            .release_execution(&txn, actor, id)
            .await
            .gql()?;
        txn.subject("usage_reservation", id);
        txn.commit().await.gql()?;
        Ok(done)
    }
}
