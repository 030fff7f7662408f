//! `browserbase_costs`: one browser session and what it cost.

use sea_orm::entity::prelude::*;

/// One session, unique by the provider's session id; costs in nano-dollars.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browserbase_costs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub execution_id: Option<Uuid>,
    #[sea_orm(unique)]
    pub session_id: String,
    pub project_id: Option<String>,
    pub duration_ms: i64,
    pub cost_per_minute_nanos: i64,
    pub session_cost_nanos: i64,
    pub has_recording: bool,
    pub recording_cost_nanos: i64,
    pub screenshot_count: i32,
    pub screenshot_cost_nanos: i64,
    pub total_cost_nanos: i64,
    pub debug_url: Option<String>,
    pub recording_url: Option<String>,
    pub status: String,
    pub started_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
