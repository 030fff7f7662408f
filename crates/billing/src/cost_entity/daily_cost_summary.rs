//! `daily_cost_summaries`: a user's totals for one UTC day, kept current in
//! the transaction of every cost row.

use sea_orm::entity::prelude::*;

/// One (user, UTC day); costs in nano-dollars.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "daily_cost_summaries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub day: Date,
    pub total_api_calls: i64,
    pub total_input_tokens: i64,
    pub total_output_tokens: i64,
    pub total_cache_tokens: i64,
    pub api_cost_nanos: i64,
    pub total_gemini_calls: i64,
    pub total_gemini_input_tokens: i64,
    pub total_gemini_output_tokens: i64,
    pub gemini_cost_nanos: i64,
    pub total_sessions: i64,
    pub total_session_ms: i64,
    pub browserbase_cost_nanos: i64,
    pub total_storage_operations: i64,
    pub total_storage_bytes: i64,
    pub storage_cost_nanos: i64,
    pub total_cost_nanos: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
