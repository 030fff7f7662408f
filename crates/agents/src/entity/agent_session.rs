//! `agent_sessions`: an agent's long-lived context and its iteration budget.

use sea_orm::entity::prelude::*;

/// One agent session of a user. `iteration_count` counts steps taken by every
/// execution of the session and never passes `max_iterations`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// `idle`, `planning`, `executing`, `complete`, `error` or `paused`.
    pub status: String,
    pub context: Option<Json>,
    pub current_phase: Option<String>,
    pub iteration_count: i32,
    pub max_iterations: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
