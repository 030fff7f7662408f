//! `execution_packs`: one-time execution bundles for sale (seed 004).

use sea_orm::entity::prelude::*;

/// A pack. `execution_count` NULL = unlimited; `valid_for_days` NULL = until
/// the end of the buyer's billing period.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_packs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub execution_count: Option<i32>,
    pub valid_for_days: Option<i32>,
    pub price_cents: i64,
    pub min_tier_id: Option<Uuid>,
    pub max_per_month: Option<i32>,
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
