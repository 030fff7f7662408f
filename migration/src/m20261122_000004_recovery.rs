//! Account recovery and verification (seed 004 `password_reset_tokens`,
//! `email_verification_tokens`), the mail outbox, and `users.email_verified_at`.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum PasswordResetTokens {
    Table,
    Id,
    UserId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EmailVerificationTokens {
    Table,
    Id,
    UserId,
    Email,
    TokenHash,
    ExpiresAt,
    VerifiedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum MailOutbox {
    Table,
    Id,
    Recipient,
    Subject,
    Body,
    Kind,
    Status,
    Attempts,
    LastError,
    CreatedAt,
    ClaimedAt,
    SentAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsersVerified {
    #[sea_orm(iden = "email_verified_at")]
    EmailVerifiedAt,
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
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(timestamp_with_time_zone_null(
                    UsersVerified::EmailVerifiedAt,
                ))
                .to_owned(),
        )
        .await?;

        use PasswordResetTokens as R;
        m.create_table(
            Table::create()
                .table(R::Table)
                .col(pk_uuid(R::Id))
                .col(uuid(R::UserId))
                // SHA-256 hex of the token: the unique index is the lookup path.
                .col(string_len_uniq(R::TokenHash, 64))
                .col(timestamp_with_time_zone(R::ExpiresAt))
                .col(timestamp_with_time_zone_null(R::UsedAt))
                .col(timestamp_with_time_zone(R::CreatedAt))
                .foreign_key(&mut owned_by_user(R::Table, R::UserId))
                .to_owned(),
        )
        .await?;
        // Counting a user's requests in the last hour: one range scan.
        index(
            m,
            "password_reset_user_id_created_at_idx",
            R::Table,
            &[R::UserId, R::CreatedAt],
        )
        .await?;
        index(
            m,
            "password_reset_expires_at_idx",
            R::Table,
            &[R::ExpiresAt],
        )
        .await?;

        use EmailVerificationTokens as V;
        m.create_table(
            Table::create()
                .table(V::Table)
                .col(pk_uuid(V::Id))
                .col(uuid(V::UserId))
                // The address the link was sent to: it verifies only that address.
                .col(string_len(V::Email, 320))
                .col(string_len_uniq(V::TokenHash, 64))
                .col(timestamp_with_time_zone(V::ExpiresAt))
                .col(timestamp_with_time_zone_null(V::VerifiedAt))
                .col(timestamp_with_time_zone(V::CreatedAt))
                .foreign_key(&mut owned_by_user(V::Table, V::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "email_verification_user_id_created_at_idx",
            V::Table,
            &[V::UserId, V::CreatedAt],
        )
        .await?;
        index(
            m,
            "email_verification_expires_at_idx",
            V::Table,
            &[V::ExpiresAt],
        )
        .await?;

        use MailOutbox as O;
        m.create_table(
            Table::create()
                .table(O::Table)
                .col(pk_uuid(O::Id))
                .col(string_len(O::Recipient, 320))
                .col(string_len(O::Subject, 255))
                .col(text(O::Body))
                .col(string_len(O::Kind, 50))
                .col(string_len(O::Status, 20).default("pending"))
                .col(integer(O::Attempts).default(0))
                .col(text_null(O::LastError))
                .col(timestamp_with_time_zone(O::CreatedAt))
                .col(timestamp_with_time_zone_null(O::ClaimedAt))
                .col(timestamp_with_time_zone_null(O::SentAt))
                .to_owned(),
        )
        .await?;
        // The dispatcher's queue: pending rows, oldest first.
        index(
            m,
            "mail_outbox_status_created_at_idx",
            O::Table,
            &[O::Status, O::CreatedAt],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MailOutbox::Table.into_iden(),
            EmailVerificationTokens::Table.into_iden(),
            PasswordResetTokens::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .drop_column(UsersVerified::EmailVerifiedAt)
                .to_owned(),
        )
        .await
    }
}
