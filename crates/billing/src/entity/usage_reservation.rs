//! `usage_reservations`: executions taken by the usage gate and their settlement.

use sea_orm::entity::prelude::*;

/// One reserved execution: `reserved` until committed or released.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_reservations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub subscription_id: Uuid,
    pub period_start: DateTimeUtc,
    /// `plan`, `pack` or `overage`.
    pub source: String,
    pub pack_id: Option<Uuid>,
    pub overage_cents: i64,
    /// `reserved`, `committed` or `released`.
    pub status: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub settled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
