//! Cost tracking and budgets in GraphQL. Amounts are exact decimal dollar
//! strings with nine decimals (`"3.703701000"`), never floats; inputs take
//! the same form with at most nine decimals.

use crate::Billing;
use crate::budgets::{
    BudgetChange, BudgetStatus, Forecast, NewBudget, Percent, Window, parse_limit,
};
use crate::cost_entity::{daily_cost_summary, model_price};
use crate::costs::{BrowserSession, Provider, Recorded, StorageOperation, TokenUsage};
use crate::nanos::Nanos;
use crate::prices::{NewModelPrice, audit_view as price_view};
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use core_auth::admin::AdminCap;
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use uuid::Uuid;

fn billing<'a>(ctx: &Context<'a>) -> &'a Billing {
    ctx.data_unchecked::<Billing>()
}

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

fn usd(nanos: i64) -> String {
    Nanos(nanos).to_usd()
}

fn opt_id(field: &str, value: Option<ID>) -> Result<Option<Uuid>> {
    value.map(|v| parse_id(&v, field)).transpose().gql()
}

/// An AI provider whose token usage is priced.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AiProvider {
    /// Anthropic (Claude).
    Anthropic,
    /// Google (Gemini).
    Google,
}

impl From<AiProvider> for Provider {
    fn from(p: AiProvider) -> Self {
        match p {
            AiProvider::Anthropic => Self::Anthropic,
            AiProvider::Google => Self::Google,
        }
    }
}

/// The span a cost budget covers, on UTC boundaries.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CostBudgetWindow {
    /// One UTC calendar day.
    Daily,
    /// Monday 00:00 UTC to the next Monday.
    Weekly,
    /// The 1st 00:00 UTC to the next month's 1st.
    Monthly,
}

impl From<CostBudgetWindow> for Window {
    fn from(w: CostBudgetWindow) -> Self {
        match w {
            CostBudgetWindow::Daily => Self::Daily,
            CostBudgetWindow::Weekly => Self::Weekly,
            CostBudgetWindow::Monthly => Self::Monthly,
        }
    }
}

impl From<Window> for CostBudgetWindow {
    fn from(w: Window) -> Self {
        match w {
            Window::Daily => Self::Daily,
            Window::Weekly => Self::Weekly,
            Window::Monthly => Self::Monthly,
        }
    }
}

/// The caller's costs on one UTC day; amounts are exact decimal dollar strings.
#[derive(SimpleObject, Clone)]
pub struct CostSummary {
    /// The UTC day.
    pub day: NaiveDate,
    /// Claude API calls.
    pub api_calls: i64,
    /// Claude input tokens.
    pub input_tokens: i64,
    /// Claude output tokens.
    pub output_tokens: i64,
    /// Claude cache tokens, written and read.
    pub cache_tokens: i64,
    /// Claude cost.
    pub api_cost_usd: String,
    /// Gemini API calls.
    pub gemini_calls: i64,
    /// Gemini input tokens.
    pub gemini_input_tokens: i64,
    /// Gemini output tokens.
    pub gemini_output_tokens: i64,
    /// Gemini cost.
    pub gemini_cost_usd: String,
    /// Browser sessions.
    pub browser_sessions: i64,
    /// Browser session time in milliseconds.
    pub browser_session_ms: i64,
    /// Browser cost.
    pub browser_cost_usd: String,
    /// Storage operations.
    pub storage_operations: i64,
    /// Bytes moved by storage operations.
    pub storage_bytes: i64,
    /// Storage cost.
    pub storage_cost_usd: String,
    /// Everything on that day.
    pub total_cost_usd: String,
}

impl From<daily_cost_summary::Model> for CostSummary {
    fn from(m: daily_cost_summary::Model) -> Self {
        Self {
            day: m.day,
            api_calls: m.total_api_calls,
            input_tokens: m.total_input_tokens,
            output_tokens: m.total_output_tokens,
            cache_tokens: m.total_cache_tokens,
            api_cost_usd: usd(m.api_cost_nanos),
            gemini_calls: m.total_gemini_calls,
            gemini_input_tokens: m.total_gemini_input_tokens,
            gemini_output_tokens: m.total_gemini_output_tokens,
            gemini_cost_usd: usd(m.gemini_cost_nanos),
            browser_sessions: m.total_sessions,
            browser_session_ms: m.total_session_ms,
            browser_cost_usd: usd(m.browserbase_cost_nanos),
            storage_operations: m.total_storage_operations,
            storage_bytes: m.total_storage_bytes,
            storage_cost_usd: usd(m.storage_cost_nanos),
            total_cost_usd: usd(m.total_cost_nanos),
        }
    }
}

/// A spending limit with its current window and the spend in it.
#[derive(SimpleObject, Clone)]
pub struct CostBudget {
    /// Opaque id.
    pub id: ID,
    /// The window the limit applies to.
    pub window: CostBudgetWindow,
    /// The limit per window, in dollars.
    pub limit_usd: String,
    /// The percentage of the limit that raises the early alert.
    pub alert_threshold: i32,
    /// Whether reaching the limit stops new work until the next window.
    pub auto_stop_on_limit: bool,
    /// Whether the budget is applied.
    pub is_active: bool,
    /// The first UTC day of the current window.
    pub window_start: NaiveDate,
    /// The first UTC day after the current window.
    pub window_end: NaiveDate,
    /// Spend in the current window, in dollars.
    pub spend_usd: String,
    /// When the budget was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<BudgetStatus> for CostBudget {
    fn from(s: BudgetStatus) -> Self {
        let b = s.budget;
        Self {
            id: id(b.id),
            window: Window::parse(&b.window).unwrap_or(Window::Monthly).into(),
            limit_usd: usd(b.limit_nanos),
            alert_threshold: b.alert_threshold,
            auto_stop_on_limit: b.auto_stop_on_limit,
            is_active: b.is_active,
            window_start: s.window_start,
            window_end: s.window_end,
            spend_usd: s.spend.to_usd(),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

/// The month-end forecast: month-to-date spend ÷ days elapsed × days in the
/// month, in integer nano-dollars rounded down.
#[derive(SimpleObject, Clone)]
pub struct CostForecast {
    /// The first day of the current UTC month.
    pub month_start: NaiveDate,
    /// Spend from the 1st through today.
    pub month_to_date_usd: String,
    /// Days elapsed, today included.
    pub days_elapsed: i64,
    /// Days in the month.
    pub days_in_month: i64,
    /// The projected spend for the whole month.
    pub projected_usd: String,
}

impl From<Forecast> for CostForecast {
    fn from(f: Forecast) -> Self {
        Self {
            month_start: f.month_start,
            month_to_date_usd: f.month_to_date.to_usd(),
            days_elapsed: f.days_elapsed,
            days_in_month: f.days_in_month,
            projected_usd: f.projected.to_usd(),
        }
    }
}

/// One version of a model's token prices, per million tokens.
#[derive(SimpleObject, Clone)]
pub struct ModelPrice {
    /// Opaque id.
    pub id: ID,
    /// `anthropic` or `google`.
    pub provider: String,
    /// The model name, lower-cased.
    pub model: String,
    /// Dollars per million input tokens.
    pub input_per_million_usd: String,
    /// Dollars per million output tokens.
    pub output_per_million_usd: String,
    /// Dollars per million cache-write tokens.
    pub cache_write_per_million_usd: String,
    /// Dollars per million cache-read tokens.
    pub cache_read_per_million_usd: String,
    /// From when this version prices usage (until a later version starts).
    pub effective_from: DateTime<Utc>,
}

impl From<model_price::Model> for ModelPrice {
    fn from(m: model_price::Model) -> Self {
        Self {
            id: id(m.id),
            provider: m.provider,
            model: m.model,
            input_per_million_usd: usd(m.input_per_million_nanos),
            output_per_million_usd: usd(m.output_per_million_nanos),
            cache_write_per_million_usd: usd(m.cache_write_per_million_nanos),
            cache_read_per_million_usd: usd(m.cache_read_per_million_nanos),
            effective_from: m.effective_from,
        }
    }
}

/// A cost row written.
#[derive(SimpleObject, Clone)]
pub struct RecordedCost {
    /// The cost row's id.
    pub id: ID,
    /// What it cost, in dollars.
    pub cost_usd: String,
}

impl From<Recorded> for RecordedCost {
    fn from(r: Recorded) -> Self {
        Self {
            id: id(r.id),
            cost_usd: r.cost.to_usd(),
        }
    }
}

/// A new cost budget.
#[derive(InputObject)]
pub struct CreateBudgetInput {
    /// The window; one budget per window.
    pub window: CostBudgetWindow,
    /// The limit per window in dollars, more than 0 (e.g. `"25.00"`).
    pub limit_usd: String,
    /// Percentage of the limit that raises the early alert, 1 to 100.
    #[graphql(default = 80)]
    pub alert_threshold: i32,
    /// Stop new work once the limit is reached.
    #[graphql(default = false)]
    pub auto_stop_on_limit: bool,
}

/// Changes to a cost budget; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateBudgetInput {
    /// A new limit in dollars, more than 0.
    pub limit_usd: Option<String>,
    /// A new alert threshold, 1 to 100.
    pub alert_threshold: Option<i32>,
    /// Stop new work at the limit or not.
    pub auto_stop_on_limit: Option<bool>,
    /// Apply the budget or pause it.
    pub is_active: Option<bool>,
}

/// One AI call to record for the caller.
#[derive(InputObject)]
pub struct RecordTokenUsageInput {
    /// Whose API was called.
    pub provider: AiProvider,
    /// The model; it must have a price.
    pub model: String,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Tokens written to the prompt cache (Anthropic only).
    #[graphql(default = 0)]
    pub cache_write_tokens: i64,
    /// Tokens read from the prompt cache (Anthropic only).
    #[graphql(default = 0)]
    pub cache_read_tokens: i64,
    /// The execution the call served.
    pub execution_id: Option<ID>,
    /// The provider's request id.
    pub request_id: Option<String>,
    /// What the prompt was for (`system`, `task`, `observation`, `error_recovery`).
    pub prompt_type: Option<String>,
    /// Why generation stopped.
    pub stop_reason: Option<String>,
    /// Milliseconds the call took.
    pub response_time_ms: Option<i32>,
}

/// One browser session to record for the caller.
#[derive(InputObject)]
pub struct RecordBrowserCostInput {
    /// The provider's session id; each is recorded once.
    pub session_id: String,
    /// The provider's project.
    pub project_id: Option<String>,
    /// The execution the session served.
    pub execution_id: Option<ID>,
    /// How long it ran, in milliseconds.
    pub duration_ms: i64,
    /// Whether it was recorded.
    #[graphql(default = false)]
    pub has_recording: bool,
    /// Screenshots taken.
    #[graphql(default = 0)]
    pub screenshot_count: i32,
    /// `active`, `completed`, `failed` or `timeout`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// One storage operation to record for the caller.
#[derive(InputObject)]
pub struct RecordStorageCostInput {
    /// `s3`, `r2` or `gcs`.
    pub provider: String,
    /// The bucket.
    pub bucket: String,
    /// `upload`, `download`, `delete` or `list`.
    pub operation_type: String,
    /// The object key.
    pub object_key: Option<String>,
    /// Bytes moved.
    #[graphql(default = 0)]
    pub size_bytes: i64,
    /// The object's media type.
    pub content_type: Option<String>,
    /// `success`, `failed` or `pending`.
    pub status: String,
    /// The caller's id of the operation.
    pub operation_id: Option<String>,
    /// The execution it served.
    pub execution_id: Option<ID>,
}

/// A new price version (admins only).
#[derive(InputObject)]
pub struct CreateModelPriceInput {
    /// Whose model.
    pub provider: AiProvider,
    /// The model name.
    pub model: String,
    /// Dollars per million input tokens.
    pub input_per_million_usd: String,
    /// Dollars per million output tokens.
    pub output_per_million_usd: String,
    /// Dollars per million cache-write tokens (default 0).
    pub cache_write_per_million_usd: Option<String>,
    /// Dollars per million cache-read tokens (default 0).
    pub cache_read_per_million_usd: Option<String>,
    /// From when the version applies (default now).
    pub effective_from: Option<DateTime<Utc>>,
}

/// Cost and budget queries for the caller.
#[derive(Default)]
pub struct CostQuery;

#[Object]
impl CostQuery {
    /// The caller's daily cost summaries from `from` through `to` (UTC days,
    /// inclusive, at most 366 days), oldest first; days without cost are absent.
    async fn cost_summaries(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CostSummary>> {
        let actor = ctx.actor()?;
        let rows = billing(ctx)
            .cost_summaries(ctx.db(), actor, from, to)
            .await
            .gql()?;
        Ok(rows.into_iter().map(CostSummary::from).collect())
    }

    /// The caller's cost budgets (at most one per window) with current spend.
    async fn budgets(&self, ctx: &Context<'_>) -> Result<Vec<CostBudget>> {
        let actor = ctx.actor()?;
        let rows = billing(ctx).budgets(ctx.db(), actor).await.gql()?;
        Ok(rows.into_iter().map(CostBudget::from).collect())
    }

    /// The caller's projected spend for the current UTC month.
    async fn cost_forecast(&self, ctx: &Context<'_>) -> Result<CostForecast> {
        let actor = ctx.actor()?;
        Ok(billing(ctx)
            .cost_forecast(ctx.db(), actor)
            .await
            .gql()?
            .into())
    }

    /// Every token price version, by provider, model and start.
    async fn model_prices(&self, ctx: &Context<'_>) -> Result<Vec<ModelPrice>> {
        ctx.actor()?;
        let rows = billing(ctx).model_prices(ctx.db()).await.gql()?;
        Ok(rows.into_iter().map(ModelPrice::from).collect())
    }
}

/// Cost and budget mutations.
#[derive(Default)]
pub struct CostMutation;

#[Object]
impl CostMutation {
    /// Creates a cost budget for the caller; `CONFLICT` when one exists for the window.
    async fn create_budget(
        &self,
        ctx: &Context<'_>,
        input: CreateBudgetInput,
    ) -> Result<CostBudget> {
        let actor = ctx.writer()?;
        let req = NewBudget {
            window: input.window.into(),
            limit: parse_limit("limitUsd", &input.limit_usd).gql()?,
            alert_threshold: Percent::parse("alertThreshold", input.alert_threshold).gql()?,
            auto_stop_on_limit: input.auto_stop_on_limit,
        };
        let b = billing(ctx);
        let mut txn = ctx.begin().await?;
        let budget = b.create_budget(&txn, actor, req).await.gql()?;
        txn.subject("cost_budget", budget.id);
        txn.changes(None, Some(crate::budgets::audit_view(&budget)));
        let status = b.budget_status(&txn, budget).await.gql()?;
        txn.commit().await.gql()?;
        Ok(status.into())
    }

    /// Changes one of the caller's budgets.
    async fn update_budget(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateBudgetInput,
    ) -> Result<CostBudget> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let change = BudgetChange {
            limit: input
                .limit_usd
                .map(|l| parse_limit("limitUsd", &l))
                .transpose()
                .gql()?,
            alert_threshold: input
                .alert_threshold
                .map(|t| Percent::parse("alertThreshold", t))
                .transpose()
                .gql()?,
            auto_stop_on_limit: input.auto_stop_on_limit,
            is_active: input.is_active,
        };
        let b = billing(ctx);
        let mut txn = ctx.begin().await?;
        let (old, new) = b.update_budget(&txn, actor, id, change).await.gql()?;
        txn.subject("cost_budget", id);
        txn.changes(
            Some(crate::budgets::audit_view(&old)),
            Some(crate::budgets::audit_view(&new)),
        );
        let status = b.budget_status(&txn, new).await.gql()?;
        txn.commit().await.gql()?;
        Ok(status.into())
    }

    /// Deletes one of the caller's budgets.
    async fn delete_budget(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let old = billing(ctx).delete_budget(&txn, actor, id).await.gql()?;
        txn.subject("cost_budget", id);
        txn.changes(Some(crate::budgets::audit_view(&old)), None);
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Records one AI call for the caller, priced on the server at the price
    /// version in force now; `BAD_USER_INPUT` on `model` for an unpriced model.
    async fn record_token_usage(
        &self,
        ctx: &Context<'_>,
        input: RecordTokenUsageInput,
    ) -> Result<RecordedCost> {
        let actor = ctx.writer()?;
        let usage = TokenUsage::parse(
            input.provider.into(),
            input.model,
            input.input_tokens,
            input.output_tokens,
            input.cache_write_tokens,
            input.cache_read_tokens,
            opt_id("executionId", input.execution_id)?,
            input.request_id,
            input.prompt_type,
            input.stop_reason,
            input.response_time_ms,
        )
        .gql()?;
        let mut txn = ctx.begin().await?;
        let recorded = billing(ctx)
            .record_token_usage(&txn, actor, usage)
            .await
            .gql()?;
        txn.subject("token_usage", recorded.id);
        txn.commit().await.gql()?;
        Ok(recorded.into())
    }

    /// Records one browser session for the caller at the configured rates;
    /// `CONFLICT` on `sessionId` when it was recorded already.
    async fn record_browser_cost(
        &self,
        ctx: &Context<'_>,
        input: RecordBrowserCostInput,
    ) -> Result<RecordedCost> {
        let actor = ctx.writer()?;
        let session = BrowserSession {
            session_id: input.session_id,
            project_id: input.project_id,
            execution_id: opt_id("executionId", input.execution_id)?,
            duration_ms: input.duration_ms,
            has_recording: input.has_recording,
            screenshot_count: input.screenshot_count,
            status: input.status,
            started_at: input.started_at,
            completed_at: input.completed_at,
            debug_url: None,
            recording_url: None,
        }
        .validate()
        .gql()?;
        let mut txn = ctx.begin().await?;
        let recorded = billing(ctx)
            .record_browser_cost(&txn, actor, session)
            .await
            .gql()?;
        txn.subject("browserbase_cost", recorded.id);
        txn.commit().await.gql()?;
        Ok(recorded.into())
    }

    /// Records one storage operation for the caller at the configured rates.
    async fn record_storage_cost(
        &self,
        ctx: &Context<'_>,
        input: RecordStorageCostInput,
    ) -> Result<RecordedCost> {
        let actor = ctx.writer()?;
        let op = StorageOperation {
            provider: input.provider,
            bucket: input.bucket,
            operation_type: input.operation_type,
            object_key: input.object_key,
            size_bytes: input.size_bytes,
            content_type: input.content_type,
            status: input.status,
            operation_id: input.operation_id,
            execution_id: opt_id("executionId", input.execution_id)?,
        }
        .validate()
        .gql()?;
        let mut txn = ctx.begin().await?;
        let recorded = billing(ctx)
            .record_storage_cost(&txn, actor, op)
            .await
            .gql()?;
        txn.subject("storage_cost", recorded.id);
        txn.commit().await.gql()?;
        Ok(recorded.into())
    }

    /// Adds a token price version (admins only). Versions are never edited:
    /// a later `effectiveFrom` supersedes; `CONFLICT` when one starts at the same time.
    async fn create_model_price(
        &self,
        ctx: &Context<'_>,
        input: CreateModelPriceInput,
    ) -> Result<ModelPrice> {
        let cap = AdminCap::check(ctx.writer()?).gql()?;
        let b = billing(ctx);
        let req = NewModelPrice::parse(
            input.provider.into(),
            input.model,
            &input.input_per_million_usd,
            &input.output_per_million_usd,
            input.cache_write_per_million_usd.as_deref(),
            input.cache_read_per_million_usd.as_deref(),
            input.effective_from.unwrap_or_else(|| b.clock.now()),
        )
        .gql()?;
        let mut txn = ctx.begin().await?;
        let price = b.create_model_price(&txn, &cap, req).await.gql()?;
        txn.subject("model_price", price.id);
        txn.changes(None, Some(price_view(&price)));
        txn.commit().await.gql()?;
        Ok(price.into())
    }
}
