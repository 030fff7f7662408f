//! An index for the agent events retention job: it finds finished runs by
//! `completed_at`, oldest first, and deletes their events in batches.

use crate::m20261122_000001_identity::index;
use crate::m20261128_000013_agents::AgentExecutions;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "agent_executions_completed_at_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        index(
            m,
            INDEX,
            AgentExecutions::Table,
            &[AgentExecutions::CompletedAt],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name(INDEX)
                .table(AgentExecutions::Table)
                .to_owned(),
        )
        .await
    }
}
