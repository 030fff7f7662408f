//! Admin and security records (seed 004, Admin & Security): `security_audit_log`,
//! `security_events`, `feature_flags` and `system_config`.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum SecurityAuditLog {
    Table,
    Id,
    UserId,
    Action,
    ResourceType,
    ResourceId,
    Details,
    IpAddress,
    UserAgent,
    Success,
    ErrorMessage,
    RequestId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SecurityEvents {
    Table,
    Id,
    UserId,
    Kind,
    Severity,
    IpAddress,
    Details,
    ResolvedAt,
    ResolvedBy,
    ResolutionNote,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum FeatureFlags {
    Table,
    Id,
    Name,
    Description,
    Enabled,
    RolloutPercentage,
    UserWhitelist,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SystemConfig {
    Table,
    Id,
    Key,
    Value,
    ValueType,
    Description,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

fn user_fk<T: IntoIden + Copy, C: IntoIden + Copy>(table: T, col: C) -> ForeignKeyCreateStatement {
    // Records outlive the user they name; the id is cleared, the row kept.
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::SetNull)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use SecurityAuditLog as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(pk_uuid(S::Id))
                .col(uuid_null(S::UserId))
                .col(string_len(S::Action, 100))
                .col(string_len(S::ResourceType, 50))
                .col(string_len_null(S::ResourceId, 100))
                .col(json_binary_null(S::Details))
                .col(string_len_null(S::IpAddress, 45))
                .col(text_null(S::UserAgent))
                .col(boolean(S::Success))
                .col(text_null(S::ErrorMessage))
                .col(uuid(S::RequestId))
                .col(timestamp_with_time_zone(S::CreatedAt))
                .foreign_key(&mut user_fk(S::Table, S::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "security_audit_log_user_idx",
            S::Table,
            &[S::UserId, S::CreatedAt],
        )
        .await?;
        index(m, "security_audit_log_action_idx", S::Table, &[S::Action]).await?;
        index(
            m,
            "security_audit_log_resource_idx",
            S::Table,
            &[S::ResourceType, S::ResourceId],
        )
        .await?;
        index(
            m,
            "security_audit_log_created_at_idx",
            S::Table,
            &[S::CreatedAt],
        )
        .await?;

        use SecurityEvents as E;
        m.create_table(
            Table::create()
                .table(E::Table)
                .col(pk_uuid(E::Id))
                .col(uuid_null(E::UserId))
                .col(string_len(E::Kind, 50))
                .col(string_len(E::Severity, 20).default("low"))
                .col(string_len_null(E::IpAddress, 45))
                .col(json_binary_null(E::Details))
                .col(timestamp_with_time_zone_null(E::ResolvedAt))
                .col(uuid_null(E::ResolvedBy))
                .col(text_null(E::ResolutionNote))
                .col(timestamp_with_time_zone(E::CreatedAt))
                .foreign_key(&mut user_fk(E::Table, E::UserId))
                .foreign_key(&mut user_fk(E::Table, E::ResolvedBy))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "security_events_user_idx",
            E::Table,
            &[E::UserId, E::CreatedAt],
        )
        .await?;
        index(m, "security_events_kind_idx", E::Table, &[E::Kind]).await?;
        index(m, "security_events_severity_idx", E::Table, &[E::Severity]).await?;
        index(
            m,
            "security_events_resolved_at_idx",
            E::Table,
            &[E::ResolvedAt],
        )
        .await?;

        use FeatureFlags as F;
        m.create_table(
            Table::create()
                .table(F::Table)
                .col(pk_uuid(F::Id))
                .col(string_len_uniq(F::Name, 100))
                .col(text_null(F::Description))
                .col(boolean(F::Enabled).default(false))
                .col(
                    integer(F::RolloutPercentage)
                        .default(0)
                        .check(Expr::col(F::RolloutPercentage).between(0, 100)),
                )
                .col(json_binary(F::UserWhitelist))
                .col(json_binary_null(F::Metadata))
                .col(timestamp_with_time_zone(F::CreatedAt))
                .col(timestamp_with_time_zone(F::UpdatedAt))
                .to_owned(),
        )
        .await?;

        use SystemConfig as C;
        m.create_table(
            Table::create()
                .table(C::Table)
                .col(pk_uuid(C::Id))
                .col(string_len_uniq(C::Key, 100))
                .col(json_binary(C::Value))
                .col(string_len(C::ValueType, 20))
                .col(text_null(C::Description))
                .col(uuid_null(C::UpdatedBy))
                .col(timestamp_with_time_zone(C::CreatedAt))
                .col(timestamp_with_time_zone(C::UpdatedAt))
                .foreign_key(&mut user_fk(C::Table, C::UpdatedBy))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SystemConfig::Table.into_iden(),
            FeatureFlags::Table.into_iden(),
            SecurityEvents::Table.into_iden(),
            SecurityAuditLog::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
