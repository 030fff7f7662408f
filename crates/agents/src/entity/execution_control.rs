//! `execution_controls`: the one place pause, resume, cancel and injected
//! instructions live; the worker reads it between steps.

use sea_orm::entity::prelude::*;

/// The control row of one execution (exactly one per execution).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_controls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub execution_id: Uuid,
    pub user_id: Uuid,
    /// `running`, `paused`, `cancelled` or `awaiting_approval`.
    pub control_state: String,
    pub state_reason: Option<String>,
    /// An instruction not yet consumed by the worker; cleared when consumed.
    pub injected_instruction: Option<String>,
    pub injected_at: Option<DateTimeUtc>,
    pub checkpoint_data: Option<Json>,
    pub last_state_change: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
