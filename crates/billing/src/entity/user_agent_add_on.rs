//! `user_agent_add_ons`: add-ons a user holds (seed 004); one active row per
//! (user, add-on), whose quantity grows with each purchase.

use sea_orm::entity::prelude::*;

/// A held add-on. `status` is active / cancelled.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_agent_add_ons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub add_on_id: Uuid,
    pub quantity: i32,
    pub status: String,
    pub stripe_subscription_item_id: Option<String>,
    pub started_at: DateTimeUtc,
    pub cancelled_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
