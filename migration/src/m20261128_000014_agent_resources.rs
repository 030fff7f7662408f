//! The rest of the agents tables (seed 004): `browser_sessions`,
//! `browser_contexts` (storage sealed with the vault key ring),
//! `generated_projects` and `knowledge_entries`.
//!
//! Closed sets are text with CHECK constraints; knowledge confidence is
//! stored exactly as integer hundredths (the seed's `decimal(3,2)`), checked
//! to 0..=100. Every table is keyed by user for the tenant-scoped lists,
//! newest first (`(user_id, id)` and `(user_id, <filter>, id)` indexes).

use crate::m20261122_000001_identity::{Users, index};
use crate::m20261128_000013_agents::AgentExecutions;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum BrowserSessions {
    Table,
    Id,
    UserId,
    SessionId,
    Status,
    Url,
    ProjectId,
    DebugUrl,
    RecordingUrl,
    Metadata,
    Error,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BrowserContexts {
    Table,
    Id,
    UserId,
    ClientId,
    ContextId,
    IsolationLevel,
    EncryptedStorage,
    StorageIv,
    StorageAuthTag,
    StorageKeyVersion,
    Metadata,
    LastUsedAt,
    IsActive,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GeneratedProjects {
    Table,
    Id,
    UserId,
    ExecutionId,
    Name,
    Description,
    TechStack,
    Features,
    FilesSnapshot,
    Status,
    DevServerPort,
    PreviewUrl,
    DeploymentUrl,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum KnowledgeEntries {
    Table,
    Id,
    UserId,
    Category,
    Context,
    Content,
    Examples,
    ConfidenceHundredths,
    UsageCount,
    IsActive,
    LastUsedAt,
    CreatedAt,
    UpdatedAt,
}

const BROWSER_SESSION_STATUSES: [&str; 4] = ["active", "completed", "failed", "expired"];
const ISOLATION_LEVELS: [&str; 2] = ["strict", "shared"];
const PROJECT_STATUSES: [&str; 3] = ["active", "archived", "deleted"];
const KNOWLEDGE_CATEGORIES: [&str; 5] = [
    "workflow",
    "brand_voice",
    "preference",
    "process",
    "technical",
];

fn one_of<C: IntoIden + Copy + 'static>(col: C, values: &[&str]) -> Expr {
    Expr::col(col).is_in(values.iter().copied())
}

fn owner<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    table: T,
    col: C,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// A unique key per user: provider ids are unique within one tenant only, so
/// another tenant's id neither conflicts with nor reveals anything about yours.
async fn unique_per_user<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    user: C,
    col: C,
) -> Result<(), DbErr> {
    m.create_index(
        Index::create()
            .name(name)
            .table(table)
            .col(user)
            .col(col)
            .unique()
            .to_owned(),
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use BrowserSessions as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(pk_uuid(S::Id))
                .col(uuid(S::UserId))
                .col(string_len(S::SessionId, 128))
                .col(string_len(S::Status, 20).default("active"))
                .col(text_null(S::Url))
                .col(string_len_null(S::ProjectId, 128))
                .col(text_null(S::DebugUrl))
                .col(text_null(S::RecordingUrl))
                .col(json_binary_null(S::Metadata))
                .col(text_null(S::Error))
                .col(timestamp_with_time_zone_null(S::ExpiresAt))
                .col(timestamp_with_time_zone(S::CreatedAt))
                .col(timestamp_with_time_zone(S::UpdatedAt))
                .col(timestamp_with_time_zone_null(S::CompletedAt))
                .check((
                    "browser_sessions_status_known",
                    one_of(S::Status, &BROWSER_SESSION_STATUSES),
                ))
                // A session is finished exactly when it has left `active`.
                .check((
                    "browser_sessions_completed_when_final",
                    Expr::col(S::Status)
                        .eq("active")
                        .and(Expr::col(S::CompletedAt).is_null())
                        .or(Expr::col(S::Status)
                            .ne("active")
                            .and(Expr::col(S::CompletedAt).is_not_null())),
                ))
                .foreign_key(&mut owner(S::Table, S::UserId))
                .to_owned(),
        )
        .await?;
        // A provider session id names one session on the whole platform.
        unique_per_user(
            m,
            "browser_sessions_user_session_id_key",
            S::Table,
            S::UserId,
            S::SessionId,
        )
        .await?;
        index(
            m,
            "browser_sessions_user_id_idx",
            S::Table,
            &[S::UserId, S::Id],
        )
        .await?;
        index(
            m,
            "browser_sessions_user_status_idx",
            S::Table,
            &[S::UserId, S::Status, S::Id],
        )
        .await?;
        // The expiry sweep: active sessions by deadline.
        index(
            m,
            "browser_sessions_status_expires_idx",
            S::Table,
            &[S::Status, S::ExpiresAt],
        )
        .await?;

        use BrowserContexts as C;
        m.create_table(
            Table::create()
                .table(C::Table)
                .col(pk_uuid(C::Id))
                .col(uuid(C::UserId))
                .col(string_len_null(C::ClientId, 128))
                .col(string_len(C::ContextId, 128))
                .col(string_len(C::IsolationLevel, 20).default("strict"))
                .col(text_null(C::EncryptedStorage))
                .col(text_null(C::StorageIv))
                .col(text_null(C::StorageAuthTag))
                .col(integer_null(C::StorageKeyVersion))
                .col(json_binary_null(C::Metadata))
                .col(timestamp_with_time_zone_null(C::LastUsedAt))
                .col(boolean(C::IsActive).default(true))
                .col(timestamp_with_time_zone_null(C::ExpiresAt))
                .col(timestamp_with_time_zone(C::CreatedAt))
                .col(timestamp_with_time_zone(C::UpdatedAt))
                .check((
                    "browser_contexts_isolation_known",
                    one_of(C::IsolationLevel, &ISOLATION_LEVELS),
                ))
                // The sealed storage is whole or absent: ciphertext, nonce, tag and key version together.
                .check((
                    "browser_contexts_storage_sealed_whole",
                    Expr::col(C::EncryptedStorage)
                        .is_null()
                        .and(Expr::col(C::StorageIv).is_null())
                        .and(Expr::col(C::StorageAuthTag).is_null())
                        .and(Expr::col(C::StorageKeyVersion).is_null())
                        .or(Expr::col(C::EncryptedStorage)
                            .is_not_null()
                            .and(Expr::col(C::StorageIv).is_not_null())
                            .and(Expr::col(C::StorageAuthTag).is_not_null())
                            .and(Expr::col(C::StorageKeyVersion).is_not_null())),
                ))
                .foreign_key(&mut owner(C::Table, C::UserId))
                .to_owned(),
        )
        .await?;
        unique_per_user(
            m,
            "browser_contexts_user_context_id_key",
            C::Table,
            C::UserId,
            C::ContextId,
        )
        .await?;
        index(
            m,
            "browser_contexts_user_id_idx",
            C::Table,
            &[C::UserId, C::Id],
        )
        .await?;
        index(
            m,
            "browser_contexts_user_active_idx",
            C::Table,
            &[C::UserId, C::IsActive, C::Id],
        )
        .await?;

        use GeneratedProjects as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(pk_uuid(P::Id))
                .col(uuid(P::UserId))
                .col(uuid_null(P::ExecutionId))
                .col(string_len(P::Name, 255))
                .col(text_null(P::Description))
                .col(string_len(P::TechStack, 50).default("react"))
                .col(json_binary(P::Features))
                .col(json_binary_null(P::FilesSnapshot))
                .col(string_len(P::Status, 50).default("active"))
                .col(integer_null(P::DevServerPort))
                .col(text_null(P::PreviewUrl))
                .col(text_null(P::DeploymentUrl))
                .col(timestamp_with_time_zone(P::CreatedAt))
                .col(timestamp_with_time_zone(P::UpdatedAt))
                .check((
                    "generated_projects_status_known",
                    one_of(P::Status, &PROJECT_STATUSES),
                ))
                .check((
                    "generated_projects_port_valid",
                    Expr::col(P::DevServerPort)
                        .is_null()
                        .or(Expr::col(P::DevServerPort)
                            .gte(1)
                            .and(Expr::col(P::DevServerPort).lte(65535))),
                ))
                // A project outlives the run that generated it.
                .foreign_key(
                    ForeignKey::create()
                        .from(P::Table, P::ExecutionId)
                        .to(AgentExecutions::Table, AgentExecutions::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .foreign_key(&mut owner(P::Table, P::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "generated_projects_user_id_idx",
            P::Table,
            &[P::UserId, P::Id],
        )
        .await?;
        index(
            m,
            "generated_projects_user_status_idx",
            P::Table,
            &[P::UserId, P::Status, P::Id],
        )
        .await?;
        index(
            m,
            "generated_projects_execution_id_idx",
            P::Table,
            &[P::ExecutionId],
        )
        .await?;

        use KnowledgeEntries as K;
        m.create_table(
            Table::create()
                .table(K::Table)
                .col(pk_uuid(K::Id))
                .col(uuid(K::UserId))
                .col(string_len(K::Category, 50))
                .col(text(K::Context))
                .col(text(K::Content))
                .col(json_binary_null(K::Examples))
                .col(integer(K::ConfidenceHundredths).default(100))
                .col(integer(K::UsageCount).default(0))
                .col(boolean(K::IsActive).default(true))
                .col(timestamp_with_time_zone_null(K::LastUsedAt))
                .col(timestamp_with_time_zone(K::CreatedAt))
                .col(timestamp_with_time_zone(K::UpdatedAt))
                .check((
                    "knowledge_entries_category_known",
                    one_of(K::Category, &KNOWLEDGE_CATEGORIES),
                ))
                .check((
                    "knowledge_entries_confidence_0_to_1",
                    Expr::col(K::ConfidenceHundredths)
                        .gte(0)
                        .and(Expr::col(K::ConfidenceHundredths).lte(100)),
                ))
                .check((
                    "knowledge_entries_usage_count_not_negative",
                    Expr::col(K::UsageCount).gte(0),
                ))
                .foreign_key(&mut owner(K::Table, K::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "knowledge_entries_user_id_idx",
            K::Table,
            &[K::UserId, K::Id],
        )
        .await?;
        index(
            m,
            "knowledge_entries_user_category_idx",
            K::Table,
            &[K::UserId, K::Category, K::Id],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            KnowledgeEntries::Table.into_iden(),
            GeneratedProjects::Table.into_iden(),
            BrowserContexts::Table.into_iden(),
            BrowserSessions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
