//! `subscription_tiers`: the plans (seed 004, plus overage and trial terms).

use sea_orm::entity::prelude::*;

/// A plan. Prices are cents; percentages are whole percent (15 = 15 %).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscription_tiers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub monthly_price_cents: i64,
    pub setup_fee_cents: i64,
    pub weekly_premium_percent: i32,
    pub six_month_discount_percent: i32,
    pub annual_discount_percent: i32,
    pub max_agents: i32,
    pub max_concurrent_agents: i32,
    pub monthly_execution_limit: i32,
    pub max_execution_duration_minutes: i32,
    pub max_ghl_accounts: Option<i32>,
    #[sea_orm(column_type = "JsonBinary")]
    pub features: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub allowed_strategies: Json,
    pub sort_order: i32,
    pub is_active: bool,
    pub is_popular: bool,
    /// Whether executions beyond the limit are allowed and charged.
    pub overage_enabled: bool,
    /// The charge per overage execution, in cents.
    pub overage_price_cents: Option<i64>,
    /// Days of free trial a first subscription may start with.
    pub trial_days: i32,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
