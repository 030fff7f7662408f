//! `agent_executions`: one run of a task inside a session.

use sea_orm::entity::prelude::*;

/// One run. `status` only moves through [`crate::status::ExecutionStatus::transition`];
/// `(current_phase_index, step_index)` is the next step to play. `claimed_by`
/// and `claim_expires_at` are the worker's lease; `event_seq` is the last
/// sequence number handed to an `agent_events` row of this run.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub task_description: String,
    /// `pending`, `planning`, `executing`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Which runner drives it (`local`, `http`).
    pub runner: String,
    /// The plan, as [`crate::plan::Plan`] JSON.
    pub plan: Option<Json>,
    pub current_phase_index: i32,
    pub step_index: i32,
    /// A JSON array of [`crate::plan::ThinkingStep`].
    pub thinking_steps: Json,
    pub result: Option<Json>,
    pub error: Option<String>,
    pub iterations: i32,
    pub duration_ms: Option<i64>,
    pub reservation_id: Option<Uuid>,
    pub resumed_from_checkpoint_id: Option<Uuid>,
    /// The first run of this lineage (the run every attempt resumes, directly
    /// or through a chain of checkpoints); a fresh run's own `id`.
    pub root_execution_id: Uuid,
    pub attempt: i32,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<DateTimeUtc>,
    pub event_seq: i64,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
