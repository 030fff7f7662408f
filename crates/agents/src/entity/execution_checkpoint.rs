//! `execution_checkpoints`: where a run can be resumed from.

use sea_orm::entity::prelude::*;

/// A saved position of an execution: resuming starts a new attempt at
/// `(phase_index, step_index)`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub execution_id: Uuid,
    pub user_id: Uuid,
    pub phase_index: i32,
    pub phase_name: Option<String>,
    pub step_index: i32,
    pub completed_steps: Json,
    pub completed_phases: Json,
    pub partial_results: Json,
    pub extracted_data: Json,
    pub session_state: Option<Json>,
    pub browser_context: Option<Json>,
    pub error_info: Option<Json>,
    /// `error`, `manual`, `phase_complete` or `pause_timeout`.
    pub checkpoint_reason: String,
    pub can_resume: bool,
    pub resume_count: i32,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
