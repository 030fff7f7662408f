//! `gemini_token_usage`: one Gemini (Google) API call and what it cost.

use sea_orm::entity::prelude::*;

/// One call; costs in nano-dollars, priced by `price_id`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "gemini_token_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub execution_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub model: String,
    pub price_id: Uuid,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub input_cost_nanos: i64,
    pub output_cost_nanos: i64,
    pub total_cost_nanos: i64,
    pub prompt_type: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub tools_used: Option<Json>,
    pub response_time_ms: Option<i32>,
    pub finish_reason: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
