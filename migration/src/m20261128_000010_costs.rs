//! Cost tracking and budgets (seed 004, Cost Tracking): the four cost tables,
//! the versioned `model_prices`, `daily_cost_summaries`, `cost_budgets`, the
//! once-per-window `budget_alerts` and the `billing_events` outbox.
//!
//! Every amount is a BIGINT of nano-dollars (1e-9 USD), never a float, so
//! SQLite and PostgreSQL hold the same exact values. `execution_id` has no
//! foreign key yet: `task_executions` belongs to a domain not built yet.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::sea_orm::prelude::{ChronoDateTimeUtc, Uuid};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ModelPrices {
    Table,
    Id,
    Provider,
    Model,
    InputPerMillionNanos,
    OutputPerMillionNanos,
    CacheWritePerMillionNanos,
    CacheReadPerMillionNanos,
    EffectiveFrom,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiTokenUsage {
    Table,
    Id,
    UserId,
    ExecutionId,
    RequestId,
    Model,
    PriceId,
    InputTokens,
    OutputTokens,
    CacheCreationTokens,
    CacheReadTokens,
    TotalTokens,
    InputCostNanos,
    OutputCostNanos,
    CacheCostNanos,
    TotalCostNanos,
    PromptType,
    ToolsUsed,
    ResponseTimeMs,
    StopReason,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GeminiTokenUsage {
    Table,
    Id,
    UserId,
    ExecutionId,
    RequestId,
    Model,
    PriceId,
    InputTokens,
    OutputTokens,
    TotalTokens,
    InputCostNanos,
    OutputCostNanos,
    TotalCostNanos,
    PromptType,
    ToolsUsed,
    ResponseTimeMs,
    FinishReason,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BrowserbaseCosts {
    Table,
    Id,
    UserId,
    ExecutionId,
    SessionId,
    ProjectId,
    DurationMs,
    CostPerMinuteNanos,
    SessionCostNanos,
    HasRecording,
    RecordingCostNanos,
    ScreenshotCount,
    ScreenshotCostNanos,
    TotalCostNanos,
    DebugUrl,
    RecordingUrl,
    Status,
    StartedAt,
    CompletedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum StorageCosts {
    Table,
    Id,
    UserId,
    ExecutionId,
    OperationId,
    Provider,
    Bucket,
    OperationType,
    ObjectKey,
    SizeBytes,
    StorageCostPerGbNanos,
    TransferCostPerGbNanos,
    RequestCostNanos,
    TotalCostNanos,
    ContentType,
    Status,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum DailyCostSummaries {
    Table,
    Id,
    UserId,
    Day,
    TotalApiCalls,
    TotalInputTokens,
    TotalOutputTokens,
    TotalCacheTokens,
    ApiCostNanos,
    TotalGeminiCalls,
    TotalGeminiInputTokens,
    TotalGeminiOutputTokens,
    GeminiCostNanos,
    TotalSessions,
    TotalSessionMs,
    BrowserbaseCostNanos,
    TotalStorageOperations,
    TotalStorageBytes,
    StorageCostNanos,
    TotalCostNanos,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CostBudgets {
    Table,
    Id,
    UserId,
    Window,
    LimitNanos,
    AlertThreshold,
    AutoStopOnLimit,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BudgetAlerts {
    Table,
    Id,
    BudgetId,
    WindowStart,
    Level,
    SpendNanos,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BillingEvents {
    Table,
    Id,
    Kind,
    UserId,
    Payload,
    CreatedAt,
    DeliveredAt,
}

fn user_fk<T: IntoIden + Copy, C: IntoIden + Copy>(table: T, col: C) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn price_fk<T: IntoIden + Copy, C: IntoIden + Copy>(table: T, col: C) -> ForeignKeyCreateStatement {
    // A price that priced a row is history: it cannot be deleted under it.
    ForeignKey::create()
        .from(table, col)
        .to(ModelPrices::Table, ModelPrices::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

/// The default prices, in nano-dollars per million tokens, effective from the
/// epoch: (provider, model, input, output, cache write, cache read).
const DEFAULT_PRICES: &[(&str, &str, i64, i64, i64, i64)] = &[
    (
        "anthropic",
        "claude-sonnet-4",
        3_000_000_000,
        15_000_000_000,
        3_750_000_000,
        300_000_000,
    ),
    (
        "anthropic",
        "claude-opus-4",
        15_000_000_000,
        75_000_000_000,
        18_750_000_000,
        1_500_000_000,
    ),
    (
        "anthropic",
        "claude-haiku-3.5",
        800_000_000,
        4_000_000_000,
        1_000_000_000,
        80_000_000,
    ),
    (
        "google",
        "gemini-2.5-pro",
        1_250_000_000,
        10_000_000_000,
        0,
        0,
    ),
    (
        "google",
        "gemini-2.5-flash",
        300_000_000,
        2_500_000_000,
        0,
        0,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use ModelPrices as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(pk_uuid(P::Id))
                .col(string_len(P::Provider, 50))
                .col(string_len(P::Model, 100))
                .col(big_integer(P::InputPerMillionNanos))
                .col(big_integer(P::OutputPerMillionNanos))
                .col(big_integer(P::CacheWritePerMillionNanos))
                .col(big_integer(P::CacheReadPerMillionNanos))
                .col(timestamp_with_time_zone(P::EffectiveFrom))
                .col(timestamp_with_time_zone(P::CreatedAt))
                .index(
                    Index::create()
                        .name("model_prices_version_key")
                        .col(P::Provider)
                        .col(P::Model)
                        .col(P::EffectiveFrom)
                        .unique(),
                )
                .to_owned(),
        )
        .await?;
        seed_prices(m).await?;

        use ApiTokenUsage as A;
        m.create_table(
            Table::create()
                .table(A::Table)
                .col(pk_uuid(A::Id))
                .col(uuid(A::UserId))
                .col(uuid_null(A::ExecutionId))
                .col(string_len_null(A::RequestId, 255))
                .col(string_len(A::Model, 100))
                .col(uuid(A::PriceId))
                .col(big_integer(A::InputTokens).default(0))
                .col(big_integer(A::OutputTokens).default(0))
                .col(big_integer(A::CacheCreationTokens).default(0))
                .col(big_integer(A::CacheReadTokens).default(0))
                .col(big_integer(A::TotalTokens))
                .col(big_integer(A::InputCostNanos))
                .col(big_integer(A::OutputCostNanos))
                .col(big_integer(A::CacheCostNanos).default(0))
                .col(big_integer(A::TotalCostNanos))
                .col(string_len_null(A::PromptType, 100))
                .col(json_binary_null(A::ToolsUsed))
                .col(integer_null(A::ResponseTimeMs))
                .col(string_len_null(A::StopReason, 50))
                .col(timestamp_with_time_zone(A::CreatedAt))
                .foreign_key(&mut user_fk(A::Table, A::UserId))
                .foreign_key(&mut price_fk(A::Table, A::PriceId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "api_token_usage_execution_id_idx",
            A::Table,
            &[A::ExecutionId],
        )
        .await?;
        index(m, "api_token_usage_model_idx", A::Table, &[A::Model]).await?;
        index(
            m,
            "api_token_usage_created_at_idx",
            A::Table,
            &[A::CreatedAt],
        )
        .await?;
        index(
            m,
            "api_token_usage_user_created_idx",
            A::Table,
            &[A::UserId, A::CreatedAt],
        )
        .await?;

        use GeminiTokenUsage as G;
        m.create_table(
            Table::create()
                .table(G::Table)
                .col(pk_uuid(G::Id))
                .col(uuid(G::UserId))
                .col(uuid_null(G::ExecutionId))
                .col(string_len_null(G::RequestId, 255))
                .col(string_len(G::Model, 100))
                .col(uuid(G::PriceId))
                .col(big_integer(G::InputTokens).default(0))
                .col(big_integer(G::OutputTokens).default(0))
                .col(big_integer(G::TotalTokens))
                .col(big_integer(G::InputCostNanos))
                .col(big_integer(G::OutputCostNanos))
                .col(big_integer(G::TotalCostNanos))
                .col(string_len_null(G::PromptType, 100))
                .col(json_binary_null(G::ToolsUsed))
                .col(integer_null(G::ResponseTimeMs))
                .col(string_len_null(G::FinishReason, 50))
                .col(timestamp_with_time_zone(G::CreatedAt))
                .foreign_key(&mut user_fk(G::Table, G::UserId))
                .foreign_key(&mut price_fk(G::Table, G::PriceId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "gemini_token_usage_execution_id_idx",
            G::Table,
            &[G::ExecutionId],
        )
        .await?;
        index(m, "gemini_token_usage_model_idx", G::Table, &[G::Model]).await?;
        index(
            m,
            "gemini_token_usage_created_at_idx",
            G::Table,
            &[G::CreatedAt],
        )
        .await?;
        index(
            m,
            "gemini_token_usage_user_created_idx",
            G::Table,
            &[G::UserId, G::CreatedAt],
        )
        .await?;

        use BrowserbaseCosts as B;
        m.create_table(
            Table::create()
                .table(B::Table)
                .col(pk_uuid(B::Id))
                .col(uuid(B::UserId))
                .col(uuid_null(B::ExecutionId))
                .col(string_len_uniq(B::SessionId, 255))
                .col(string_len_null(B::ProjectId, 255))
                .col(big_integer(B::DurationMs))
                .col(big_integer(B::CostPerMinuteNanos))
                .col(big_integer(B::SessionCostNanos))
                .col(boolean(B::HasRecording).default(false))
                .col(big_integer(B::RecordingCostNanos).default(0))
                .col(integer(B::ScreenshotCount).default(0))
                .col(big_integer(B::ScreenshotCostNanos).default(0))
                .col(big_integer(B::TotalCostNanos))
                .col(string_len_null(B::DebugUrl, 500))
                .col(string_len_null(B::RecordingUrl, 500))
                .col(string_len(B::Status, 50))
                .col(timestamp_with_time_zone(B::StartedAt))
                .col(timestamp_with_time_zone_null(B::CompletedAt))
                .col(timestamp_with_time_zone(B::CreatedAt))
                .foreign_key(&mut user_fk(B::Table, B::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "browserbase_costs_execution_id_idx",
            B::Table,
            &[B::ExecutionId],
        )
        .await?;
        index(m, "browserbase_costs_status_idx", B::Table, &[B::Status]).await?;
        index(
            m,
            "browserbase_costs_created_at_idx",
            B::Table,
            &[B::CreatedAt],
        )
        .await?;
        index(
            m,
            "browserbase_costs_user_created_idx",
            B::Table,
            &[B::UserId, B::CreatedAt],
        )
        .await?;

        use StorageCosts as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(pk_uuid(S::Id))
                .col(uuid(S::UserId))
                .col(uuid_null(S::ExecutionId))
                .col(string_len_null(S::OperationId, 255))
                .col(string_len(S::Provider, 50))
                .col(string_len(S::Bucket, 255))
                .col(string_len(S::OperationType, 50))
                .col(string_len_null(S::ObjectKey, 1000))
                .col(big_integer(S::SizeBytes).default(0))
                .col(big_integer(S::StorageCostPerGbNanos))
                .col(big_integer(S::TransferCostPerGbNanos))
                .col(big_integer(S::RequestCostNanos).default(0))
                .col(big_integer(S::TotalCostNanos))
                .col(string_len_null(S::ContentType, 255))
                .col(string_len(S::Status, 50))
                .col(timestamp_with_time_zone(S::CreatedAt))
                .foreign_key(&mut user_fk(S::Table, S::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "storage_costs_execution_id_idx",
            S::Table,
            &[S::ExecutionId],
        )
        .await?;
        index(m, "storage_costs_provider_idx", S::Table, &[S::Provider]).await?;
        index(
            m,
            "storage_costs_operation_type_idx",
            S::Table,
            &[S::OperationType],
        )
        .await?;
        index(m, "storage_costs_created_at_idx", S::Table, &[S::CreatedAt]).await?;
        index(
            m,
            "storage_costs_user_created_idx",
            S::Table,
            &[S::UserId, S::CreatedAt],
        )
        .await?;

        use DailyCostSummaries as D;
        m.create_table(
            Table::create()
                .table(D::Table)
                .col(pk_uuid(D::Id))
                .col(uuid(D::UserId))
                .col(date(D::Day))
                .col(big_integer(D::TotalApiCalls).default(0))
                .col(big_integer(D::TotalInputTokens).default(0))
                .col(big_integer(D::TotalOutputTokens).default(0))
                .col(big_integer(D::TotalCacheTokens).default(0))
                .col(big_integer(D::ApiCostNanos).default(0))
                .col(big_integer(D::TotalGeminiCalls).default(0))
                .col(big_integer(D::TotalGeminiInputTokens).default(0))
                .col(big_integer(D::TotalGeminiOutputTokens).default(0))
                .col(big_integer(D::GeminiCostNanos).default(0))
                .col(big_integer(D::TotalSessions).default(0))
                .col(big_integer(D::TotalSessionMs).default(0))
                .col(big_integer(D::BrowserbaseCostNanos).default(0))
                .col(big_integer(D::TotalStorageOperations).default(0))
                .col(big_integer(D::TotalStorageBytes).default(0))
                .col(big_integer(D::StorageCostNanos).default(0))
                .col(big_integer(D::TotalCostNanos).default(0))
                .col(timestamp_with_time_zone(D::CreatedAt))
                .col(timestamp_with_time_zone(D::UpdatedAt))
                .foreign_key(&mut user_fk(D::Table, D::UserId))
                .index(
                    Index::create()
                        .name("daily_cost_summaries_user_day_key")
                        .col(D::UserId)
                        .col(D::Day)
                        .unique(),
                )
                .to_owned(),
        )
        .await?;
        index(m, "daily_cost_summaries_day_idx", D::Table, &[D::Day]).await?;

        use CostBudgets as C;
        m.create_table(
            Table::create()
                .table(C::Table)
                .col(pk_uuid(C::Id))
                .col(uuid(C::UserId))
                .col(string_len(C::Window, 10))
                .col(big_integer(C::LimitNanos))
                .col(integer(C::AlertThreshold).default(80))
                .col(boolean(C::AutoStopOnLimit).default(false))
                .col(boolean(C::IsActive).default(true))
                .col(timestamp_with_time_zone(C::CreatedAt))
                .col(timestamp_with_time_zone(C::UpdatedAt))
                .foreign_key(&mut user_fk(C::Table, C::UserId))
                .index(
                    Index::create()
                        .name("cost_budgets_user_window_key")
                        .col(C::UserId)
                        .col(C::Window)
                        .unique(),
                )
                .check(Expr::col(C::LimitNanos).gt(0))
                .check(Expr::col(C::AlertThreshold).between(1, 100))
                .to_owned(),
        )
        .await?;
        index(m, "cost_budgets_is_active_idx", C::Table, &[C::IsActive]).await?;

        use BudgetAlerts as L;
        m.create_table(
            Table::create()
                .table(L::Table)
                .col(pk_uuid(L::Id))
                .col(uuid(L::BudgetId))
                .col(date(L::WindowStart))
                .col(string_len(L::Level, 20))
                .col(big_integer(L::SpendNanos))
                .col(timestamp_with_time_zone(L::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(L::Table, L::BudgetId)
                        .to(C::Table, C::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .index(
                    Index::create()
                        .name("budget_alerts_once_key")
                        .col(L::BudgetId)
                        .col(L::WindowStart)
                        .col(L::Level)
                        .unique(),
                )
                .to_owned(),
        )
        .await?;

        use BillingEvents as E;
        m.create_table(
            Table::create()
                .table(E::Table)
                .col(pk_uuid(E::Id))
                .col(string_len(E::Kind, 100))
                .col(uuid(E::UserId))
                .col(json_binary(E::Payload))
                .col(timestamp_with_time_zone(E::CreatedAt))
                .col(timestamp_with_time_zone_null(E::DeliveredAt))
                .foreign_key(&mut user_fk(E::Table, E::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "billing_events_pending_idx",
            E::Table,
            &[E::DeliveredAt, E::CreatedAt],
        )
        .await?;
        index(
            m,
            "billing_events_user_idx",
            E::Table,
            &[E::UserId, E::CreatedAt],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BillingEvents::Table.into_iden(),
            BudgetAlerts::Table.into_iden(),
            CostBudgets::Table.into_iden(),
            DailyCostSummaries::Table.into_iden(),
            StorageCosts::Table.into_iden(),
            BrowserbaseCosts::Table.into_iden(),
            GeminiTokenUsage::Table.into_iden(),
            ApiTokenUsage::Table.into_iden(),
            ModelPrices::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Inserts [`DEFAULT_PRICES`], effective from the Unix epoch so that any usage
/// time finds them; later versions are added by admins.
async fn seed_prices(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use ModelPrices as P;
    let epoch = ChronoDateTimeUtc::UNIX_EPOCH;
    let mut insert = Query::insert();
    insert.into_table(P::Table).columns([
        P::Id,
        P::Provider,
        P::Model,
        P::InputPerMillionNanos,
        P::OutputPerMillionNanos,
        P::CacheWritePerMillionNanos,
        P::CacheReadPerMillionNanos,
        P::EffectiveFrom,
        P::CreatedAt,
    ]);
    for (i, (provider, model, input, output, write, read)) in DEFAULT_PRICES.iter().enumerate() {
        // Fixed ids keep the seed identical on every database and every run.
        let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0100 + i as u128);
        insert.values_panic([
            id.into(),
            (*provider).into(),
            (*model).into(),
            (*input).into(),
            (*output).into(),
            (*write).into(),
            (*read).into(),
            epoch.into(),
            epoch.into(),
        ]);
    }
    m.exec_stmt(insert).await
}
