//! `user_execution_packs`: packs a user bought (seed 004, plus the purchase
//! month and sequence that make the monthly cap a unique index).

use sea_orm::entity::prelude::*;

/// A bought pack. `executions_remaining` NULL = unlimited, never below zero;
/// `status` is active / depleted / expired.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_execution_packs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub pack_id: Uuid,
    pub executions_included: Option<i32>,
    pub executions_remaining: Option<i32>,
    pub purchased_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub price_paid_cents: i64,
    pub stripe_payment_intent_id: Option<String>,
    pub status: String,
    /// UTC month of purchase, `YYYY-MM`.
    pub purchase_month: String,
    /// 1-based number of this purchase of this pack by this user in that month.
    pub purchase_seq: i32,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
