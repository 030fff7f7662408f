//! `subscription_usage_records`: usage per user and billing period (seed 004);
//! unique per (user, period start).

use sea_orm::entity::prelude::*;

/// One period's usage and the limits it ran under.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscription_usage_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub period_start: DateTimeUtc,
    pub period_end: DateTimeUtc,
    pub tier_id: Uuid,
    pub execution_limit: i32,
    pub agent_limit: i32,
    pub executions_used: i32,
    pub peak_concurrent_agents: i32,
    pub additional_executions_purchased: i32,
    pub additional_executions_used: i32,
    pub overage_executions: i32,
    pub overage_charged_cents: i64,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
