//! `cost_budgets`: a spending limit over a daily, weekly or monthly UTC window.

use sea_orm::entity::prelude::*;

/// One budget; at most one per (user, window). `window` is `daily`, `weekly`
/// or `monthly`; `limit_nanos` in nano-dollars.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cost_budgets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub window: String,
    pub limit_nanos: i64,
    pub alert_threshold: i32,
    pub auto_stop_on_limit: bool,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
