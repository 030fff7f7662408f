//! Credits: `user_credits` and `credit_packages` (seed 004 "Lead Management"),
//! plus `credit_ledger`, the append-only record every balance change writes,
//! and the default credit packages.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UserCredits {
    Table,
    Id,
    UserId,
    CreditType,
    Balance,
    TotalPurchased,
    TotalUsed,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CreditPackages {
    Table,
    Id,
    Name,
    Description,
    CreditAmount,
    Price,
    CreditType,
    IsActive,
    SortOrder,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum CreditLedger {
    Table,
    Id,
    UserId,
    CreditType,
    Amount,
    BalanceAfter,
    Reason,
    Reference,
    RefundOf,
    CreatedAt,
}

/// The credit types the platform sells; anything else is refused by the database too.
const CREDIT_TYPES: [&str; 3] = ["enrichment", "calling", "scraping"];
/// Why a ledger entry exists.
const REASONS: [&str; 4] = ["purchase", "debit", "refund", "adjustment"];

/// The default packages: (id, name, description, credits, price in cents, type, order).
/// Fixed ids so that environments agree and `down` removes exactly these rows.
const PACKAGES: [(&str, &str, &str, i64, i64, &str, i32); 6] = [
    (
        "01930000-0000-7000-8000-000000000901",
        "Enrichment 100",
        "100 lead enrichments",
        100,
        1_000,
        "enrichment",
        10,
    ),
    (
        "01930000-0000-7000-8000-000000000902",
        "Enrichment 1,000",
        "1,000 lead enrichments at a 20% discount",
        1_000,
        8_000,
        "enrichment",
        20,
    ),
    (
        "01930000-0000-7000-8000-000000000903",
        "Calling 100",
        "100 calling minutes",
        100,
        1_500,
        "calling",
        30,
    ),
    (
        "01930000-0000-7000-8000-000000000904",
        "Calling 1,000",
        "1,000 calling minutes at a 20% discount",
        1_000,
        12_000,
        "calling",
        40,
    ),
    (
        "01930000-0000-7000-8000-000000000905",
        "Scraping 1,000",
        "1,000 page scrapes",
        1_000,
        500,
        "scraping",
        50,
    ),
    (
        "01930000-0000-7000-8000-000000000906",
        "Scraping 10,000",
        "10,000 page scrapes at a 20% discount",
        10_000,
        4_000,
        "scraping",
        60,
    ),
];

fn one_of<C: IntoIden + Copy + 'static>(col: C, values: &[&str]) -> Expr {
    Expr::col(col).is_in(values.iter().copied())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use CreditLedger as L;
        use CreditPackages as P;
        use UserCredits as U;
        m.create_table(
            Table::create()
                .table(U::Table)
                .col(pk_uuid(U::Id))
                .col(uuid(U::UserId))
                .col(string_len(U::CreditType, 50))
                // Credits are whole units; BIGINT so a large account never overflows.
                .col(big_integer(U::Balance).default(0))
                .col(big_integer(U::TotalPurchased).default(0))
                .col(big_integer(U::TotalUsed).default(0))
                .col(timestamp_with_time_zone(U::CreatedAt))
                .col(timestamp_with_time_zone(U::UpdatedAt))
                // The last line of defence: no code path can leave a negative balance.
                .check((
                    "user_credits_balance_non_negative",
                    Expr::col(U::Balance).gte(0),
                ))
                .check((
                    "user_credits_credit_type_known",
                    one_of(U::CreditType, &CREDIT_TYPES),
                ))
                .foreign_key(
                    ForeignKey::create()
                        .from(U::Table, U::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // One balance per user and type: the row the conditional debit updates.
        m.create_index(
            Index::create()
                .name("user_credits_user_id_credit_type_key")
                .table(U::Table)
                .col(U::UserId)
                .col(U::CreditType)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(P::Table)
                .col(pk_uuid(P::Id))
                .col(string_len(P::Name, 200))
                .col(text_null(P::Description))
                .col(big_integer(P::CreditAmount))
                // Integer cents.
                .col(big_integer(P::Price))
                .col(string_len(P::CreditType, 50))
                .col(boolean(P::IsActive).default(true))
                .col(integer(P::SortOrder).default(0))
                .col(json_binary_null(P::Metadata))
                .col(timestamp_with_time_zone(P::CreatedAt))
                .col(timestamp_with_time_zone(P::UpdatedAt))
                .check((
                    "credit_packages_amounts_positive",
                    Expr::col(P::CreditAmount)
                        .gt(0)
                        .and(Expr::col(P::Price).gt(0)),
                ))
                .check((
                    "credit_packages_credit_type_known",
                    one_of(P::CreditType, &CREDIT_TYPES),
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "credit_packages_active_sort_idx",
            P::Table,
            &[P::IsActive, P::SortOrder],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(L::Table)
                .col(pk_uuid(L::Id))
                .col(uuid(L::UserId))
                .col(string_len(L::CreditType, 50))
                // Signed: credits in are positive, debits negative.
                .col(big_integer(L::Amount))
                .col(big_integer(L::BalanceAfter))
                .col(string_len(L::Reason, 20))
                // The payment id of a purchase, the caller's reference of a debit.
                .col(string_len_null(L::Reference, 255))
                .col(uuid_null(L::RefundOf))
                .col(timestamp_with_time_zone(L::CreatedAt))
                .check(("credit_ledger_amount_non_zero", Expr::col(L::Amount).ne(0)))
                .check((
                    "credit_ledger_balance_after_non_negative",
                    Expr::col(L::BalanceAfter).gte(0),
                ))
                .check(("credit_ledger_reason_known", one_of(L::Reason, &REASONS)))
                .check((
                    "credit_ledger_credit_type_known",
                    one_of(L::CreditType, &CREDIT_TYPES),
                ))
                .foreign_key(
                    ForeignKey::create()
                        .from(L::Table, L::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(L::Table, L::RefundOf)
                        .to(L::Table, L::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        // The caller's ledger, newest first (optionally of one type): one range scan.
        index(
            m,
            "credit_ledger_user_id_idx",
            L::Table,
            &[L::UserId, L::CreditType, L::Id],
        )
        .await?;
        index(
            m,
            "credit_ledger_user_id_all_idx",
            L::Table,
            &[L::UserId, L::Id],
        )
        .await?;
        // An entry is refunded at most once, even by concurrent refunds.
        m.create_index(
            Index::create()
                .name("credit_ledger_refund_of_key")
                .table(L::Table)
                .col(L::RefundOf)
                .unique()
                .to_owned(),
        )
        .await?;
        // A payment credits at most once, even when a purchase is retried.
        m.create_index(
            Index::create()
                .name("credit_ledger_purchase_reference_key")
                .table(L::Table)
                .col(L::Reference)
                .unique()
                .and_where(Expr::col(L::Reason).eq("purchase"))
                .to_owned(),
        )
        .await?;

        seed_packages(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CreditLedger::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(CreditPackages::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(UserCredits::Table).to_owned())
            .await
    }
}

async fn seed_packages(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use CreditPackages as P;
    use sea_orm_migration::sea_orm::prelude::{DateTimeUtc, Uuid};
    // The migration's own timestamp, so every environment seeds identical rows.
    let at = "2026-11-28T00:00:00Z"
        .parse::<DateTimeUtc>()
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let mut insert = Query::insert();
    insert.into_table(P::Table).columns([
        P::Id,
        P::Name,
        P::Description,
        P::CreditAmount,
        P::Price,
        P::CreditType,
        P::IsActive,
        P::SortOrder,
        P::CreatedAt,
        P::UpdatedAt,
    ]);
    for (id, name, description, credits, price, credit_type, order) in PACKAGES {
        let id = Uuid::parse_str(id).map_err(|e| DbErr::Custom(e.to_string()))?;
        insert
            .values([
                id.into(),
                name.into(),
                description.into(),
                credits.into(),
                price.into(),
                credit_type.into(),
                true.into(),
                order.into(),
                at.into(),
                at.into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    m.exec_stmt(insert).await
}
