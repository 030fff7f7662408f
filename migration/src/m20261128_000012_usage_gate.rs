//! The usage gate's state: `usage_reservations` (one row per execution taken
//! and not yet settled), a running-agent counter on `user_subscriptions`, and
//! the close mark of an archived `subscription_usage_records` period.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UsageReservations {
    Table,
    Id,
    UserId,
    SubscriptionId,
    PeriodStart,
    Source,
    PackId,
    OverageCents,
    Status,
    ExpiresAt,
    CreatedAt,
    SettledAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserSubscriptions {
    Table,
    Id,
    RunningAgents,
}

#[derive(DeriveIden, Clone, Copy)]
enum SubscriptionUsageRecords {
    Table,
    ClosedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Reservations hold an agent slot until settled; a counter on the
        // subscription row lets one conditional UPDATE enforce the cap.
        m.alter_table(
            Table::alter()
                .table(UserSubscriptions::Table)
                .add_column(integer(UserSubscriptions::RunningAgents).default(0))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SubscriptionUsageRecords::Table)
                .add_column(timestamp_with_time_zone_null(
                    SubscriptionUsageRecords::ClosedAt,
                ))
                .to_owned(),
        )
        .await?;

        use UsageReservations as R;
        m.create_table(
            Table::create()
                .table(R::Table)
                .col(pk_uuid(R::Id))
                .col(uuid(R::UserId))
                .col(uuid(R::SubscriptionId))
                // The period the execution was taken from; a release after
                // rollover must not give it back to the next period.
                .col(timestamp_with_time_zone(R::PeriodStart))
                .col(
                    string_len(R::Source, 20)
                        .check(Expr::col(R::Source).is_in(["plan", "pack", "overage"])),
                )
                .col(uuid_null(R::PackId))
                .col(big_integer(R::OverageCents).default(0))
                .col(
                    string_len(R::Status, 20)
                        .default("reserved")
                        .check(Expr::col(R::Status).is_in(["reserved", "committed", "released"])),
                )
                .col(timestamp_with_time_zone(R::ExpiresAt))
                .col(timestamp_with_time_zone(R::CreatedAt))
                .col(timestamp_with_time_zone_null(R::SettledAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(R::Table, R::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(R::Table, R::SubscriptionId)
                        .to(UserSubscriptions::Table, UserSubscriptions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "usage_reservations_user_idx",
            R::Table,
            &[R::UserId, R::CreatedAt],
        )
        .await?;
        // The cleanup job scans unsettled reservations by expiry.
        index(
            m,
            "usage_reservations_status_expiry_idx",
            R::Table,
            &[R::Status, R::ExpiresAt],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UsageReservations::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(SubscriptionUsageRecords::Table)
                .drop_column(SubscriptionUsageRecords::ClosedAt)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(UserSubscriptions::Table)
                .drop_column(UserSubscriptions::RunningAgents)
                .to_owned(),
        )
        .await
    }
}
