//! `credentials`: the sealed-secret vault (seed 004 `credentials`, plus the key version).

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Credentials {
    Table,
    Id,
    UserId,
    Name,
    Service,
    Type,
    EncryptedData,
    Iv,
    AuthTag,
    KeyVersion,
    Metadata,
    LastUsedAt,
    UseCount,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use Credentials as C;
        m.create_table(
            Table::create()
                .table(C::Table)
                .col(pk_uuid(C::Id))
                .col(uuid(C::UserId))
                .col(string_len(C::Name, 255))
                .col(string_len(C::Service, 100))
                .col(string_len(C::Type, 50))
                // AES-256-GCM body, nonce and tag, base64 (seed 004 columns).
                .col(text(C::EncryptedData))
                .col(string_len(C::Iv, 24))
                .col(string_len(C::AuthTag, 24))
                // The key ring version that sealed the row; rotation moves it forward.
                .col(integer(C::KeyVersion))
                .col(json_binary_null(C::Metadata))
                .col(timestamp_with_time_zone_null(C::LastUsedAt))
                .col(integer(C::UseCount).default(0))
                .col(timestamp_with_time_zone_null(C::DeletedAt))
                .col(timestamp_with_time_zone(C::CreatedAt))
                .col(timestamp_with_time_zone(C::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(C::Table, C::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // The owner's credentials, newest first: one range scan.
        index(m, "credentials_user_id_idx", C::Table, &[C::UserId, C::Id]).await?;
        // A name is unique per owner among live credentials; a deleted one frees its name.
        m.create_index(
            Index::create()
                .name("credentials_user_id_name_live_key")
                .table(C::Table)
                .col(C::UserId)
                .col(C::Name)
                .unique()
                .and_where(Expr::col(C::DeletedAt).is_null())
                .to_owned(),
        )
        .await?;
        // Rotation finds rows still sealed under an old key.
        index(m, "credentials_key_version_idx", C::Table, &[C::KeyVersion]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Credentials::Table).to_owned())
            .await
    }
}
