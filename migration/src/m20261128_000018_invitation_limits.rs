//! Indexes for the invitation sending limits: each invitation counts the
//! inviter's invitations of the last hour and the organization's of the last
//! day. The inviter index also serves the `SET NULL` when an inviter's account
//! is deleted.

use crate::m20261122_000001_identity::index;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Invitations {
    Table,
    OrganizationId,
    InviterId,
    CreatedAt,
}

const BY_INVITER: &str = "invitations_inviter_id_created_at_idx";
const BY_ORGANIZATION: &str = "invitations_organization_id_created_at_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use Invitations as I;
        index(m, BY_INVITER, I::Table, &[I::InviterId, I::CreatedAt]).await?;
        index(
            m,
            BY_ORGANIZATION,
            I::Table,
            &[I::OrganizationId, I::CreatedAt],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [BY_ORGANIZATION, BY_INVITER] {
            m.drop_index(
                Index::drop()
                    .name(name)
                    .table(Invitations::Table)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
