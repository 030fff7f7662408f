//! Organizations, their members and invitations (seed 000, Better Auth `organization`,
//! `member`, `invitation`), with our UUID ids and timestamps.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
    Name,
    Slug,
    Logo,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Members {
    Table,
    Id,
    OrganizationId,
    UserId,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Invitations {
    Table,
    Id,
    OrganizationId,
    Email,
    Role,
    Status,
    InviterId,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

fn cascade(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use Organizations as O;
        m.create_table(
            Table::create()
                .table(O::Table)
                .col(pk_uuid(O::Id))
                .col(string_len(O::Name, 255))
                .col(string_len_uniq(O::Slug, 48))
                .col(text_null(O::Logo))
                .col(timestamp_with_time_zone(O::CreatedAt))
                .col(timestamp_with_time_zone(O::UpdatedAt))
                .to_owned(),
        )
        .await?;

        use Members as M;
        m.create_table(
            Table::create()
                .table(M::Table)
                .col(pk_uuid(M::Id))
                .col(uuid(M::OrganizationId))
                .col(uuid(M::UserId))
                .col(string_len(M::Role, 50))
                .col(timestamp_with_time_zone(M::CreatedAt))
                .col(timestamp_with_time_zone(M::UpdatedAt))
                .foreign_key(&mut cascade(
                    (M::Table, M::OrganizationId),
                    (O::Table, O::Id),
                ))
                .foreign_key(&mut cascade(
                    (M::Table, M::UserId),
                    (Users::Table, Users::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("members_organization_id_user_id_key")
                .table(M::Table)
                .col(M::OrganizationId)
                .col(M::UserId)
                .unique()
                .to_owned(),
        )
        .await?;
        // The caller's organizations, paged by membership id.
        index(m, "members_user_id_idx", M::Table, &[M::UserId, M::Id]).await?;
        // An organization's members, paged by id.
        index(
            m,
            "members_organization_id_id_idx",
            M::Table,
            &[M::OrganizationId, M::Id],
        )
        .await?;

        use Invitations as I;
        m.create_table(
            Table::create()
                .table(I::Table)
                .col(pk_uuid(I::Id))
                .col(uuid(I::OrganizationId))
                // Stored lower-cased, as `users.email` is.
                .col(string_len(I::Email, 320))
                .col(string_len(I::Role, 50))
                .col(string_len(I::Status, 20).default("pending"))
                // Nullable: the invitation outlives an inviter who deletes their account.
                .col(uuid_null(I::InviterId))
                .col(timestamp_with_time_zone(I::ExpiresAt))
                .col(timestamp_with_time_zone(I::CreatedAt))
                .col(timestamp_with_time_zone(I::UpdatedAt))
                .foreign_key(&mut cascade(
                    (I::Table, I::OrganizationId),
                    (O::Table, O::Id),
                ))
                .foreign_key(
                    ForeignKey::create()
                        .from(I::Table, I::InviterId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "invitations_organization_id_id_idx",
            I::Table,
            &[I::OrganizationId, I::Id],
        )
        .await?;
        // Pending invitations for an address, and the duplicate check at invite time.
        index(
            m,
            "invitations_email_status_idx",
            I::Table,
            &[I::Email, I::Status],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Invitations::Table.into_iden(),
            Members::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
