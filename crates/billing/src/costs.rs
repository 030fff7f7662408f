//! Cost tracking: each AI call, browser session and storage operation is
//! priced on the server, written as a cost row, added to the user's
//! `daily_cost_summaries` row for its UTC day, and checked against the user's
//! budgets — all in the caller's transaction.
//!
//! Token prices come from the versioned `model_prices` table: the version in
//! force at the usage time is the latest whose `effective_from` is not after
//! it. A model without a price is refused, never priced at zero.

use crate::Billing;
use crate::cost_entity::{
    api_token_usage, browserbase_cost, gemini_token_usage, model_price, storage_cost,
};
use crate::nanos::{NANOS_PER_USD, Nanos, scale};
use chrono::{DateTime, NaiveDate, Utc};
use kernel::Error;
use kernel::actor::Actor;
use kernel::db::raw;
use kernel::id::new_id;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

/// The most tokens of one kind a single call may report; more is a client bug.
pub const MAX_TOKENS: i64 = 1_000_000_000;
/// The most bytes a single storage operation may report (1 TB).
pub const MAX_BYTES: i64 = 1_000_000_000_000;
/// The longest browser session accepted (31 days), in milliseconds.
pub const MAX_SESSION_MS: i64 = 31 * 24 * 3_600_000;

/// Rates for the costs that are not per token, in nano-dollars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRates {
    /// A browser session minute (default $0.01).
    pub browser_minute_nanos: i64,
    /// A recorded browser session minute, on top (default $0.002).
    pub recording_minute_nanos: i64,
    /// One screenshot (default $0.001).
    pub screenshot_nanos: i64,
    /// Storing one GB (10^9 bytes) on upload (default $0.023).
    pub storage_gb_nanos: i64,
    /// Transferring one GB out on download (default $0.09).
    pub transfer_gb_nanos: i64,
    /// One storage request (default $0.000005).
    pub request_nanos: i64,
}

impl Default for CostRates {
    fn default() -> Self {
        Self {
            browser_minute_nanos: 10_000_000,
            recording_minute_nanos: 2_000_000,
            screenshot_nanos: 1_000_000,
            storage_gb_nanos: 23_000_000,
            transfer_gb_nanos: 90_000_000,
            request_nanos: 5_000,
        }
    }
}

/// An AI provider with a token table of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Claude; rows go to `api_token_usage`.
    Anthropic,
    /// Gemini; rows go to `gemini_token_usage`.
    Google,
}

impl Provider {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Google => "google",
        }
    }
}

fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Error> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.chars().count() > max => Err(Error::bad_input(
            field,
            format!("must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

fn required(field: &str, value: String, max: usize) -> Result<String, Error> {
    text(field, Some(value), max)?.ok_or_else(|| Error::bad_input(field, "must not be empty"))
}

fn count(field: &str, value: i64, max: i64) -> Result<i64, Error> {
    if (0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::bad_input(
            field,
            format!("must be between 0 and {max}"),
        ))
    }
}

/// A model name as prices are keyed: trimmed, lower-cased, 1 to 100 characters.
pub fn model_name(field: &str, value: String) -> Result<String, Error> {
    Ok(required(field, value, 100)?.to_lowercase())
}

/// A parsed report of one AI call.
#[derive(Debug, Clone)]
pub struct TokenUsage {
    /// Whose API.
    pub provider: Provider,
    /// The model, lower-cased.
    pub model: String,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Tokens written to the prompt cache (Anthropic only).
    pub cache_write_tokens: i64,
    /// Tokens read from the prompt cache (Anthropic only).
    pub cache_read_tokens: i64,
    /// The execution the call served.
    pub execution_id: Option<Uuid>,
    /// The provider's request id.
    pub request_id: Option<String>,
    /// What the prompt was for (`system`, `task`, ...).
    pub prompt_type: Option<String>,
    /// Why generation stopped.
    pub stop_reason: Option<String>,
    /// Milliseconds the call took.
    pub response_time_ms: Option<i32>,
}

impl TokenUsage {
    /// Parses a report; counts between 0 and [`MAX_TOKENS`].
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field; cache tokens for Google are refused
    /// because its table has no cache columns.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        provider: Provider,
        model: String,
        input_tokens: i64,
        output_tokens: i64,
        cache_write_tokens: i64,
        cache_read_tokens: i64,
        execution_id: Option<Uuid>,
        request_id: Option<String>,
        prompt_type: Option<String>,
        stop_reason: Option<String>,
        response_time_ms: Option<i32>,
    ) -> Result<Self, Error> {
        let usage = Self {
            provider,
            model: model_name("model", model)?,
            input_tokens: count("inputTokens", input_tokens, MAX_TOKENS)?,
            output_tokens: count("outputTokens", output_tokens, MAX_TOKENS)?,
            cache_write_tokens: count("cacheWriteTokens", cache_write_tokens, MAX_TOKENS)?,
            cache_read_tokens: count("cacheReadTokens", cache_read_tokens, MAX_TOKENS)?,
            execution_id,
            request_id: text("requestId", request_id, 255)?,
            prompt_type: text("promptType", prompt_type, 100)?,
            stop_reason: text("stopReason", stop_reason, 50)?,
            response_time_ms: response_time_ms
                .map(|ms| count("responseTimeMs", ms.into(), i64::from(i32::MAX)).map(|_| ms))
                .transpose()?,
        };
        if provider == Provider::Google && usage.cache_write_tokens + usage.cache_read_tokens > 0 {
            return Err(Error::bad_input(
                "cacheWriteTokens",
                "cache tokens are not tracked for this provider",
            ));
        }
        Ok(usage)
    }
}

/// The cost of one AI call, per component, in nano-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCost {
    /// Input tokens.
    pub input: i64,
    /// Output tokens.
    pub output: i64,
    /// Cache writes plus cache reads.
    pub cache: i64,
    /// The sum.
    pub total: i64,
}

/// Prices `usage` at `price`: tokens × price per million / 1,000,000 per
/// component, rounded half up only where the division is inexact.
///
/// # Errors
/// Internal on overflow, which bounded inputs cannot reach.
pub fn price_tokens(usage: &TokenUsage, price: &model_price::Model) -> Result<TokenCost, Error> {
    const M: i64 = 1_000_000;
    let input = scale(usage.input_tokens, price.input_per_million_nanos, M)?;
    let output = scale(usage.output_tokens, price.output_per_million_nanos, M)?;
    let cache = scale(
        usage.cache_write_tokens,
        price.cache_write_per_million_nanos,
        M,
    )? + scale(
        usage.cache_read_tokens,
        price.cache_read_per_million_nanos,
        M,
    )?;
    Ok(TokenCost {
        input,
        output,
        cache,
        total: input + output + cache,
    })
}

/// A parsed report of one browser session.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The provider's session id; recorded once.
    pub session_id: String,
    /// The provider's project.
    pub project_id: Option<String>,
    /// The execution the session served.
    pub execution_id: Option<Uuid>,
    /// How long it ran.
    pub duration_ms: i64,
    /// Whether it was recorded.
    pub has_recording: bool,
    /// Screenshots taken.
    pub screenshot_count: i32,
    /// `active`, `completed`, `failed` or `timeout`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// The live debug URL.
    pub debug_url: Option<String>,
    /// Where the recording is.
    pub recording_url: Option<String>,
}

impl BrowserSession {
    /// Checks the bounds of a session report.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field.
    pub fn validate(mut self) -> Result<Self, Error> {
        self.session_id = required("sessionId", self.session_id, 255)?;
        self.project_id = text("projectId", self.project_id, 255)?;
        self.debug_url = text("debugUrl", self.debug_url, 500)?;
        self.recording_url = text("recordingUrl", self.recording_url, 500)?;
        count("durationMs", self.duration_ms, MAX_SESSION_MS)?;
        count("screenshotCount", self.screenshot_count.into(), 1_000_000)?;
        if !["active", "completed", "failed", "timeout"].contains(&self.status.as_str()) {
            return Err(Error::bad_input(
                "status",
                "must be active, completed, failed or timeout",
            ));
        }
        Ok(self)
    }
}

/// A parsed report of one storage operation.
#[derive(Debug, Clone)]
pub struct StorageOperation {
    /// `s3`, `r2` or `gcs`.
    pub provider: String,
    /// The bucket.
    pub bucket: String,
    /// `upload`, `download`, `delete` or `list`.
    pub operation_type: String,
    /// The object.
    pub object_key: Option<String>,
    /// Bytes moved.
    pub size_bytes: i64,
    /// The object's media type.
    pub content_type: Option<String>,
    /// `success`, `failed` or `pending`.
    pub status: String,
    /// The caller's id of the operation.
    pub operation_id: Option<String>,
    /// The execution it served.
    pub execution_id: Option<Uuid>,
}

impl StorageOperation {
    /// Checks the bounds of an operation report.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field.
    pub fn validate(mut self) -> Result<Self, Error> {
        let one_of = |field: &str, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(Error::bad_input(
                    field,
                    format!("must be one of {}", allowed.join(", ")),
                ))
            }
        };
        one_of("provider", &self.provider, &["s3", "r2", "gcs"])?;
        one_of(
            "operationType",
            &self.operation_type,
            &["upload", "download", "delete", "list"],
        )?;
        one_of("status", &self.status, &["success", "failed", "pending"])?;
        self.bucket = required("bucket", self.bucket, 255)?;
        self.object_key = text("objectKey", self.object_key, 1000)?;
        self.content_type = text("contentType", self.content_type, 255)?;
        self.operation_id = text("operationId", self.operation_id, 255)?;
        count("sizeBytes", self.size_bytes, MAX_BYTES)?;
        Ok(self)
    }
}

/// What one cost row adds to its day's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delta {
    pub api_calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
    pub api_cost: i64,
    pub gemini_calls: i64,
    pub gemini_input_tokens: i64,
    pub gemini_output_tokens: i64,
    pub gemini_cost: i64,
    pub sessions: i64,
    pub session_ms: i64,
    pub browser_cost: i64,
    pub storage_operations: i64,
    pub storage_bytes: i64,
    pub storage_cost: i64,
    pub total: i64,
}

const SUMMARY_COLUMNS: [&str; 16] = [
    "total_api_calls",
    "total_input_tokens",
    "total_output_tokens",
    "total_cache_tokens",
    "api_cost_nanos",
    "total_gemini_calls",
    "total_gemini_input_tokens",
    "total_gemini_output_tokens",
    "gemini_cost_nanos",
    "total_sessions",
    "total_session_ms",
    "browserbase_cost_nanos",
    "total_storage_operations",
    "total_storage_bytes",
    "storage_cost_nanos",
    "total_cost_nanos",
];

impl Delta {
    fn values(&self) -> [i64; 16] {
        [
            self.api_calls,
            self.input_tokens,
            self.output_tokens,
            self.cache_tokens,
            self.api_cost,
            self.gemini_calls,
            self.gemini_input_tokens,
            self.gemini_output_tokens,
            self.gemini_cost,
            self.sessions,
            self.session_ms,
            self.browser_cost,
            self.storage_operations,
            self.storage_bytes,
            self.storage_cost,
            self.total,
        ]
    }
}

/// Adds `delta` to the user's row for `day`, creating it on first use. One
/// statement, so concurrent writers add up instead of overwriting each other.
async fn add_to_summary(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    day: NaiveDate,
    delta: Delta,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let cols = SUMMARY_COLUMNS.join(", ");
    let marks = vec!["?"; SUMMARY_COLUMNS.len()].join(", ");
    let sets: Vec<String> = SUMMARY_COLUMNS
        .iter()
        .map(|c| format!("{c} = daily_cost_summaries.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO daily_cost_summaries (id, user_id, day, {cols}, created_at, updated_at) \
         VALUES (?, ?, ?, {marks}, ?, ?) \
         ON CONFLICT (user_id, day) DO UPDATE SET {}, updated_at = excluded.updated_at",
        sets.join(", ")
    );
    let mut values: Vec<sea_orm::Value> = vec![new_id().into(), user_id.into(), day.into()];
    values.extend(delta.values().into_iter().map(sea_orm::Value::from));
    values.push(now.into());
    values.push(now.into());
    db.execute_raw(raw(db.get_database_backend(), &sql, values))
        .await?;
    Ok(())
}

/// Writes an `api_token_usage` row; returns what it adds to the day's summary.
async fn insert_claude_row(
    db: &impl ConnectionTrait,
    id: Uuid,
    user_id: Uuid,
    usage: TokenUsage,
    price: &model_price::Model,
    cost: TokenCost,
    now: DateTime<Utc>,
) -> Result<Delta, Error> {
    let cache_tokens = usage.cache_write_tokens + usage.cache_read_tokens;
    let delta = Delta {
        api_calls: 1,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_tokens,
        api_cost: cost.total,
        total: cost.total,
        ..Delta::default()
    };
    api_token_usage::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        execution_id: Set(usage.execution_id),
        request_id: Set(usage.request_id),
        model: Set(usage.model),
        price_id: Set(price.id),
        input_tokens: Set(usage.input_tokens),
        output_tokens: Set(usage.output_tokens),
        cache_creation_tokens: Set(usage.cache_write_tokens),
        cache_read_tokens: Set(usage.cache_read_tokens),
        total_tokens: Set(usage.input_tokens + usage.output_tokens + cache_tokens),
        input_cost_nanos: Set(cost.input),
        output_cost_nanos: Set(cost.output),
        cache_cost_nanos: Set(cost.cache),
        total_cost_nanos: Set(cost.total),
        prompt_type: Set(usage.prompt_type),
        tools_used: Set(None),
        response_time_ms: Set(usage.response_time_ms),
        stop_reason: Set(usage.stop_reason),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(delta)
}

/// Writes a `gemini_token_usage` row; returns what it adds to the day's summary.
async fn insert_gemini_row(
    db: &impl ConnectionTrait,
    id: Uuid,
    user_id: Uuid,
    usage: TokenUsage,
    price: &model_price::Model,
    cost: TokenCost,
    now: DateTime<Utc>,
) -> Result<Delta, Error> {
    let delta = Delta {
        gemini_calls: 1,
        gemini_input_tokens: usage.input_tokens,
        gemini_output_tokens: usage.output_tokens,
        gemini_cost: cost.total,
        total: cost.total,
        ..Delta::default()
    };
    gemini_token_usage::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        execution_id: Set(usage.execution_id),
        request_id: Set(usage.request_id),
        model: Set(usage.model),
        price_id: Set(price.id),
        input_tokens: Set(usage.input_tokens),
        output_tokens: Set(usage.output_tokens),
        total_tokens: Set(usage.input_tokens + usage.output_tokens),
        input_cost_nanos: Set(cost.input),
        output_cost_nanos: Set(cost.output),
        total_cost_nanos: Set(cost.total),
        prompt_type: Set(usage.prompt_type),
        tools_used: Set(None),
        response_time_ms: Set(usage.response_time_ms),
        finish_reason: Set(usage.stop_reason),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(delta)
}

/// A cost row written: its id and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The new row's id.
    pub id: Uuid,
    /// The row's total cost.
    pub cost: Nanos,
}

impl Billing {
    /// The price of `provider`/`model` in force at `at`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `model` when the model has no price at that time.
    #[tracing::instrument(name = "billing.price_at", skip_all, err(level = "debug"))]
    pub async fn price_at(
        &self,
        db: &impl ConnectionTrait,
        provider: Provider,
        model: &str,
        at: DateTime<Utc>,
    ) -> Result<model_price::Model, Error> {
        model_price::Entity::find()
            .filter(model_price::Column::Provider.eq(provider.as_str()))
            .filter(model_price::Column::Model.eq(model))
            .filter(model_price::Column::EffectiveFrom.lte(at))
            .order_by_desc(model_price::Column::EffectiveFrom)
            .one(db)
            .await?
            .ok_or_else(|| Error::bad_input("model", "no price is known for this model"))
    }

    /// Records one AI call for the caller, priced at the version in force now.
    /// Run it inside a transaction: the row, the summary and any budget alert
    /// are written together.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `model` for a model without a price (nothing is written).
    #[tracing::instrument(name = "billing.record_token_usage", skip_all, err(level = "debug"))]
    pub async fn record_token_usage(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        usage: TokenUsage,
    ) -> Result<Recorded, Error> {
        let now = self.clock.now();
        let price = self.price_at(db, usage.provider, &usage.model, now).await?;
        let cost = price_tokens(&usage, &price)?;
        let id = new_id();
        let delta = match usage.provider {
            Provider::Anthropic => {
                insert_claude_row(db, id, actor.user_id, usage, &price, cost, now).await?
            }
            Provider::Google => {
                insert_gemini_row(db, id, actor.user_id, usage, &price, cost, now).await?
            }
        };
        self.after_cost(db, actor.user_id, delta, now).await?;
        Ok(Recorded {
            id,
            cost: Nanos(cost.total),
        })
    }

    /// Records one browser session for the caller at the configured rates:
    /// minutes × rate (plus the recording rate when recorded) and screenshots ×
    /// their price, each rounded half up to the nano-dollar.
    ///
    /// # Errors
    /// `CONFLICT` on `sessionId` when the session was recorded already.
    #[tracing::instrument(name = "billing.record_browser_cost", skip_all, err(level = "debug"))]
    pub async fn record_browser_cost(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        session: BrowserSession,
    ) -> Result<Recorded, Error> {
        let now = self.clock.now();
        let rates = &self.settings.cost_rates;
        let session_cost = scale(session.duration_ms, rates.browser_minute_nanos, 60_000)?;
        let recording_cost = if session.has_recording {
            scale(session.duration_ms, rates.recording_minute_nanos, 60_000)?
        } else {
            0
        };
        let screenshot_cost = i64::from(session.screenshot_count) * rates.screenshot_nanos;
        let total = session_cost + recording_cost + screenshot_cost;
        let id = new_id();
        browserbase_cost::ActiveModel {
            id: Set(id),
            user_id: Set(actor.user_id),
            execution_id: Set(session.execution_id),
            session_id: Set(session.session_id),
            project_id: Set(session.project_id),
            duration_ms: Set(session.duration_ms),
            cost_per_minute_nanos: Set(rates.browser_minute_nanos),
            session_cost_nanos: Set(session_cost),
            has_recording: Set(session.has_recording),
            recording_cost_nanos: Set(recording_cost),
            screenshot_count: Set(session.screenshot_count),
            screenshot_cost_nanos: Set(screenshot_cost),
            total_cost_nanos: Set(total),
            debug_url: Set(session.debug_url),
            recording_url: Set(session.recording_url),
            status: Set(session.status),
            started_at: Set(session.started_at),
            completed_at: Set(session.completed_at),
            created_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(|e| {
            if kernel::error::is_unique_violation(&e) {
                Error::conflict("sessionId", "this session was recorded already")
            } else {
                e.into()
            }
        })?;
        let delta = Delta {
            sessions: 1,
            session_ms: session.duration_ms,
            browser_cost: total,
            total,
            ..Delta::default()
        };
        self.after_cost(db, actor.user_id, delta, now).await?;
        Ok(Recorded {
            id,
            cost: Nanos(total),
        })
    }

    /// Records one storage operation for the caller: uploads pay storage per GB
    /// (10^9 bytes), downloads pay transfer per GB, and every operation pays one
    /// request; rounded half up to the nano-dollar.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "billing.record_storage_cost", skip_all, err(level = "debug"))]
    pub async fn record_storage_cost(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        op: StorageOperation,
    ) -> Result<Recorded, Error> {
        let now = self.clock.now();
        let rates = &self.settings.cost_rates;
        let gb = NANOS_PER_USD; // bytes in a GB, the same power of ten
        let volume_cost = match op.operation_type.as_str() {
            "upload" => scale(op.size_bytes, rates.storage_gb_nanos, gb)?,
            "download" => scale(op.size_bytes, rates.transfer_gb_nanos, gb)?,
            _ => 0,
        };
        let total = volume_cost + rates.request_nanos;
        let id = new_id();
        storage_cost::ActiveModel {
            id: Set(id),
            user_id: Set(actor.user_id),
            execution_id: Set(op.execution_id),
            operation_id: Set(op.operation_id),
            provider: Set(op.provider),
            bucket: Set(op.bucket),
            operation_type: Set(op.operation_type),
            object_key: Set(op.object_key),
            size_bytes: Set(op.size_bytes),
            storage_cost_per_gb_nanos: Set(rates.storage_gb_nanos),
            transfer_cost_per_gb_nanos: Set(rates.transfer_gb_nanos),
            request_cost_nanos: Set(rates.request_nanos),
            total_cost_nanos: Set(total),
            content_type: Set(op.content_type),
            status: Set(op.status),
            created_at: Set(now),
        }
        .insert(db)
        .await?;
        let delta = Delta {
            storage_operations: 1,
            storage_bytes: op.size_bytes,
            storage_cost: total,
            total,
            ..Delta::default()
        };
        self.after_cost(db, actor.user_id, delta, now).await?;
        Ok(Recorded {
            id,
            cost: Nanos(total),
        })
    }

    /// The summary and budget work every cost row is followed by.
    async fn after_cost(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        delta: Delta,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let day = now.date_naive();
        add_to_summary(db, user_id, day, delta, now).await?;
        self.evaluate_budgets(db, user_id, day, now).await
    }
}
