//! Users, sessions and sign-in records (seed 004, User & Authentication).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Name,
    OpenId,
    GoogleId,
    LoginMethod,
    Role,
    OnboardingCompleted,
    SuspendedAt,
    SuspensionReason,
    CreatedAt,
    UpdatedAt,
    LastSignedIn,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    IpAddress,
    UserAgent,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LoginAttempts {
    Table,
    Id,
    Email,
    IpAddress,
    UserAgent,
    Success,
    FailureReason,
    AttemptedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LoginThrottles {
    Table,
    Email,
    Failures,
    WindowStartedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_uuid(Users::Id))
                // Stored lower-cased, so this unique index is case-insensitive.
                .col(string_len_uniq(Users::Email, 320))
                .col(text_null(Users::PasswordHash))
                .col(text_null(Users::Name))
                .col(string_len_null(Users::OpenId, 64).unique_key())
                .col(string_len_null(Users::GoogleId, 64).unique_key())
                .col(string_len(Users::LoginMethod, 64).default("email"))
                .col(string_len(Users::Role, 20).default("user"))
                .col(boolean(Users::OnboardingCompleted).default(false))
                .col(timestamp_with_time_zone_null(Users::SuspendedAt))
                .col(text_null(Users::SuspensionReason))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .col(timestamp_with_time_zone(Users::LastSignedIn))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "users_login_method_idx",
            Users::Table,
            &[Users::LoginMethod],
        )
        .await?;
        index(
            m,
            "users_email_login_method_idx",
            Users::Table,
            &[Users::Email, Users::LoginMethod],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(pk_uuid(Sessions::Id))
                .col(uuid(Sessions::UserId))
                .col(string_len_uniq(Sessions::TokenHash, 64))
                .col(string_len_null(Sessions::IpAddress, 45))
                .col(text_null(Sessions::UserAgent))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::LastSeenAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "sessions_user_id_idx",
            Sessions::Table,
            &[Sessions::UserId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(LoginAttempts::Table)
                .col(pk_uuid(LoginAttempts::Id))
                .col(string_len(LoginAttempts::Email, 320))
                .col(string_len(LoginAttempts::IpAddress, 45))
                .col(text_null(LoginAttempts::UserAgent))
                .col(boolean(LoginAttempts::Success))
                .col(string_len_null(LoginAttempts::FailureReason, 100))
                .col(timestamp_with_time_zone(LoginAttempts::AttemptedAt))
                .to_owned(),
        )
        .await?;
        use LoginAttempts as A;
        index(m, "login_attempts_email_idx", A::Table, &[A::Email]).await?;
        index(m, "login_attempts_ip_idx", A::Table, &[A::IpAddress]).await?;
        index(
            m,
            "login_attempts_email_attempted_at_idx",
            A::Table,
            &[A::Email, A::AttemptedAt],
        )
        .await?;
        index(
            m,
            "login_attempts_attempted_at_idx",
            A::Table,
            &[A::AttemptedAt],
        )
        .await?;

        // One row per normalised email: the lockout counter, updated atomically.
        m.create_table(
            Table::create()
                .table(LoginThrottles::Table)
                .col(string_len(LoginThrottles::Email, 320).primary_key())
                .col(integer(LoginThrottles::Failures))
                .col(timestamp_with_time_zone(LoginThrottles::WindowStartedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LoginThrottles::Table.into_iden(),
            LoginAttempts::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Creates a plain index; shared by every migration of this crate.
pub(crate) async fn index<T: IntoIden + Copy, C: IntoIden + Copy>(
    m: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for col in cols {
        idx.col(*col);
    }
    m.create_index(idx.to_owned()).await
}
