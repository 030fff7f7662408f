//! Profiles, preferences and API keys (seed 004 onboarding tables, seed 002 `apiKeys`).

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UserProfiles {
    Table,
    Id,
    UserId,
    CompanyName,
    Industry,
    MonthlyRevenue,
    EmployeeCount,
    Website,
    Phone,
    Goals,
    CurrentTools,
    ReferralSource,
    Notes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserPreferences {
    Table,
    Id,
    UserId,
    DefaultBrowserConfig,
    DefaultWorkflowSettings,
    Notifications,
    Theme,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    UserId,
    Name,
    KeyHash,
    KeyPrefix,
    Permissions,
    LastUsedAt,
    ExpiresAt,
    IsActive,
    CreatedAt,
    RevokedAt,
}

fn owned_by_user(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use UserProfiles as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(pk_uuid(P::Id))
                .col(uuid_uniq(P::UserId))
                .col(text_null(P::CompanyName))
                .col(string_len_null(P::Industry, 100))
                .col(string_len_null(P::MonthlyRevenue, 50))
                .col(string_len_null(P::EmployeeCount, 50))
                .col(text_null(P::Website))
                .col(string_len_null(P::Phone, 30))
                .col(json_binary_null(P::Goals))
                .col(json_binary_null(P::CurrentTools))
                .col(string_len_null(P::ReferralSource, 100))
                .col(text_null(P::Notes))
                .col(timestamp_with_time_zone(P::CreatedAt))
                .col(timestamp_with_time_zone(P::UpdatedAt))
                .foreign_key(&mut owned_by_user(P::Table, P::UserId))
                .to_owned(),
        )
        .await?;

        use UserPreferences as Pr;
        m.create_table(
            Table::create()
                .table(Pr::Table)
                .col(pk_uuid(Pr::Id))
                .col(uuid_uniq(Pr::UserId))
                .col(json_binary_null(Pr::DefaultBrowserConfig))
                .col(json_binary_null(Pr::DefaultWorkflowSettings))
                .col(json_binary_null(Pr::Notifications))
                .col(string_len(Pr::Theme, 20).default("light"))
                .col(timestamp_with_time_zone(Pr::CreatedAt))
                .col(timestamp_with_time_zone(Pr::UpdatedAt))
                .foreign_key(&mut owned_by_user(Pr::Table, Pr::UserId))
                .to_owned(),
        )
        .await?;

        use ApiKeys as K;
        m.create_table(
            Table::create()
                .table(K::Table)
                .col(pk_uuid(K::Id))
                .col(uuid(K::UserId))
                .col(string_len(K::Name, 255))
                .col(string_len_uniq(K::KeyHash, 64))
                .col(string_len(K::KeyPrefix, 20))
                .col(json_binary(K::Permissions))
                .col(timestamp_with_time_zone_null(K::LastUsedAt))
                .col(timestamp_with_time_zone_null(K::ExpiresAt))
                .col(boolean(K::IsActive).default(true))
                .col(timestamp_with_time_zone(K::CreatedAt))
                .col(timestamp_with_time_zone_null(K::RevokedAt))
                .foreign_key(&mut owned_by_user(K::Table, K::UserId))
                .to_owned(),
        )
        .await?;
        // The caller's keys, newest first: one range scan.
        index(m, "api_keys_user_id_idx", K::Table, &[K::UserId, K::Id]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ApiKeys::Table.into_iden(),
            UserPreferences::Table.into_iden(),
            UserProfiles::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
