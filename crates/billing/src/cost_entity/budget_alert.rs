//! `budget_alerts`: the alerts raised, unique per (budget, window, level), so
//! each level fires once per window however many writers race.

use sea_orm::entity::prelude::*;

/// One alert; `level` is `threshold` or `limit`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "budget_alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub budget_id: Uuid,
    pub window_start: Date,
    pub level: String,
    pub spend_nanos: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
