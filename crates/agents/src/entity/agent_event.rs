//! `agent_events`: the ordered log of what happened to each run; live
//! subscriptions poll it, so they work across server instances.

use sea_orm::entity::prelude::*;

/// One event; `seq` orders the events of one execution without gaps.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub execution_id: Uuid,
    pub user_id: Uuid,
    pub seq: i64,
    /// See [`crate::events::EventKind`].
    pub kind: String,
    pub payload: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
