//! `action_approvals`: risky actions waiting for a human.

use sea_orm::entity::prelude::*;

/// One approval for the step at `(phase_index, step_index)` of an execution.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "action_approvals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub execution_id: Uuid,
    pub user_id: Uuid,
    pub phase_index: i32,
    pub step_index: i32,
    pub action_type: String,
    pub action_description: String,
    pub action_params: Json,
    /// `low`, `medium`, `high` or `critical`.
    pub risk_level: String,
    /// A JSON array of the rules that matched, as text.
    pub risk_factors: Json,
    pub screenshot_url: Option<String>,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub status: String,
    pub approved_at: Option<DateTimeUtc>,
    pub rejected_at: Option<DateTimeUtc>,
    pub rejection_reason: Option<String>,
    pub expires_at: DateTimeUtc,
    /// `reject` or `approve`: what the expiry job does.
    pub timeout_action: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
