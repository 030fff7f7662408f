//! `idempotency_keys`: the stored first response of each keyed mutation, so a
//! retried request is answered from here instead of running twice.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    Id,
    Scope,
    UserId,
    Key,
    RequestHash,
    Status,
    StatusCode,
    ResponseBody,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use IdempotencyKeys as K;
        m.create_table(
            Table::create()
                .table(K::Table)
                .col(pk_uuid(K::Id))
                // `user:<id>` or `anonymous`: not the nullable user id, because
                // NULLs never collide in a unique index.
                .col(string_len(K::Scope, 64))
                // Deleting a user deletes the responses stored for them.
                .col(uuid_null(K::UserId))
                .col(string_len(K::Key, 255))
                .col(string_len(K::RequestHash, 64))
                .col(string_len(K::Status, 20))
                .col(integer_null(K::StatusCode))
                .col(text_null(K::ResponseBody))
                .col(timestamp_with_time_zone(K::CreatedAt))
                // For `in_progress` rows the end of the claim's lease, for
                // `completed` rows the end of the 24 h replay window.
                .col(timestamp_with_time_zone(K::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(K::Table, K::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // The claim is an insert that either wins this index or hits it.
        m.create_index(
            Index::create()
                .name("idempotency_keys_scope_key_key")
                .table(K::Table)
                .col(K::Scope)
                .col(K::Key)
                .unique()
                .to_owned(),
        )
        .await?;
        index(m, "idempotency_keys_user_id_idx", K::Table, &[K::UserId]).await?;
        // The purge deletes by expiry.
        index(
            m,
            "idempotency_keys_expires_at_idx",
            K::Table,
            &[K::ExpiresAt],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
