//! `agent_add_ons`: recurring extra agent slots for sale (seed 004).

use sea_orm::entity::prelude::*;

/// An add-on: `additional_agents` slots for `monthly_price_cents` a month.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_add_ons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub additional_agents: i32,
    pub monthly_price_cents: i64,
    pub min_tier_id: Option<Uuid>,
    pub max_per_user: Option<i32>,
    pub sort_order: i32,
    pub is_active: bool,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
