//! `audit_logs`: one append-only row per successful mutation (seed 004, indexes from seed 001).

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AuditLogs {
    Table,
    Id,
    UserId,
    Action,
    EntityType,
    EntityId,
    OldValues,
    NewValues,
    IpAddress,
    UserAgent,
    RequestId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use AuditLogs as A;
        m.create_table(
            Table::create()
                .table(A::Table)
                .col(pk_uuid(A::Id))
                // Nullable: anonymous mutations (e.g. a reset request) are audited too,
                // and the record outlives a deleted user.
                .col(uuid_null(A::UserId))
                .col(string_len(A::Action, 100))
                .col(string_len(A::EntityType, 100))
                .col(string_len_null(A::EntityId, 100))
                .col(json_binary_null(A::OldValues))
                .col(json_binary_null(A::NewValues))
                .col(string_len_null(A::IpAddress, 45))
                .col(text_null(A::UserAgent))
                .col(uuid(A::RequestId))
                .col(timestamp_with_time_zone(A::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(A::Table, A::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "audit_logs_user_id_created_at_idx",
            A::Table,
            &[A::UserId, A::CreatedAt],
        )
        .await?;
        index(
            m,
            "audit_logs_entity_idx",
            A::Table,
            &[A::EntityType, A::EntityId],
        )
        .await?;
        index(m, "audit_logs_action_idx", A::Table, &[A::Action]).await?;
        index(m, "audit_logs_created_at_idx", A::Table, &[A::CreatedAt]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditLogs::Table).to_owned())
            .await
    }
}
