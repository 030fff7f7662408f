//! Why a session or API key was revoked, so that presenting a credential its
//! owner signed out of is not reported as suspicious while one revoked for
//! security reasons still is. `NULL` on rows revoked before this migration
//! (and on live rows).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    RevokedReason,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    RevokedReason,
}

/// The stored reasons; `core_auth::session::RevocationReason` names the same set.
pub const REVOCATION_REASONS: [&str; 5] = [
    "logout",
    "password_changed",
    "password_reset",
    "suspended",
    "revoked_by_owner",
];

fn reason_column(col: impl IntoIden + Copy) -> ColumnDef {
    string_len_null(col, 30)
        .check(
            Expr::col(col)
                .is_null()
                .or(Expr::col(col).is_in(REVOCATION_REASONS)),
        )
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(reason_column(Sessions::RevokedReason))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(reason_column(ApiKeys::RevokedReason))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .drop_column(ApiKeys::RevokedReason)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .drop_column(Sessions::RevokedReason)
                .to_owned(),
        )
        .await
    }
}
