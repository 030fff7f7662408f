//! `tool_executions`: every tool call a run made, for analytics and replay.

use sea_orm::entity::prelude::*;

/// One tool call at `(phase_index, step_index)` of an execution.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tool_executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub execution_id: Uuid,
    pub user_id: Uuid,
    pub phase_index: i32,
    pub step_index: i32,
    pub tool_name: String,
    pub parameters: Option<Json>,
    pub result: Option<Json>,
    pub success: bool,
    pub duration_ms: Option<i32>,
    pub error: Option<String>,
    pub executed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
