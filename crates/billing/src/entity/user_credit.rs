//! `user_credits`: one balance per user and credit type (seed 004 "Lead Management").

use sea_orm::entity::prelude::*;

/// A balance; changed only together with a `credit_ledger` entry.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_credits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub credit_type: String,
    pub balance: i64,
    pub total_purchased: i64,
    pub total_used: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
