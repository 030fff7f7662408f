//! Approvals and checkpoints in GraphQL: the caller's approvals and the
//! answers to them, an execution's checkpoints, and resuming from one.

use super::agents;
use super::types::{ActionApproval, AgentExecution, ApprovalStatus, ExecutionCheckpoint};
use crate::approvals::{self, RejectionReason};
use crate::checkpoints;
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use serde_json::json;

/// A rejection of a pending approval.
#[derive(InputObject, Debug)]
pub struct RejectActionInput {
    /// The approval to reject.
    pub id: ID,
    /// Why, for the run's failure reason: up to 2,000 characters; blank is none.
    pub reason: Option<String>,
}

/// Approval and checkpoint queries.
#[derive(Default)]
pub struct ApprovalQuery;

#[Object]
impl ApprovalQuery {
    /// The caller's action approvals, newest first, optionally of one status.
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    async fn action_approvals(
        &self,
        ctx: &Context<'_>,
        status: Option<ApprovalStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, ActionApproval>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = approvals::list(ctx.db(), actor, status.map(Into::into), window)
            .await
            .gql()?;
        Ok(page.into_connection(ActionApproval))
    }

    /// One of the caller's approvals; null when there is none with this id.
    async fn action_approval(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ActionApproval>> {
        let actor = ctx.actor()?;
        let id = parse_id(&id, "id").gql()?;
        let approval = approvals::find(ctx.db(), actor, id).await.gql()?;
        Ok(approval.map(ActionApproval))
    }

    /// The checkpoints of one of the caller's executions, newest first.
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    async fn execution_checkpoints(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, ExecutionCheckpoint>> {
        let actor = ctx.actor()?;
        let execution_id = parse_id(&execution_id, "executionId").gql()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = checkpoints::list(ctx.db(), actor, execution_id, window)
            .await
            .gql()?;
        Ok(page.into_connection(ExecutionCheckpoint))
    }
}

/// Approval and checkpoint mutations.
#[derive(Default)]
pub struct ApprovalMutation;

#[Object]
impl ApprovalMutation {
    /// Approves a pending action before it expires; its run goes on.
    async fn approve_action(&self, ctx: &Context<'_>, id: ID) -> Result<ActionApproval> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let approval = approvals::approve(&txn, agents(ctx), actor, id)
            .await
            .gql()?;
        txn.subject("action_approval", approval.id);
        txn.changes(None, Some(json!({ "status": approval.status })));
        txn.commit().await.gql()?;
        Ok(ActionApproval(approval))
    }

    /// Rejects a pending action before it expires; its run fails with the reason.
    async fn reject_action(
        &self,
        ctx: &Context<'_>,
        input: RejectActionInput,
    ) -> Result<ActionApproval> {
        let actor = ctx.writer()?;
        let id = parse_id(&input.id, "id").gql()?;
        let reason = RejectionReason::parse(input.reason).gql()?;
        let mut txn = ctx.begin().await?;
        let approval = approvals::reject(&txn, agents(ctx), actor, id, reason)
            .await
            .gql()?;
        txn.subject("action_approval", approval.id);
        txn.changes(None, Some(json!({ "status": approval.status })));
        txn.commit().await.gql()?;
        Ok(ActionApproval(approval))
    }

    /// Saves the current position of one of the caller's executions.
    async fn create_checkpoint(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
    ) -> Result<ExecutionCheckpoint> {
        let actor = ctx.writer()?;
        let execution_id = parse_id(&execution_id, "executionId").gql()?;
        let mut txn = ctx.begin().await?;
        let checkpoint = checkpoints::create_manual(&txn, agents(ctx), actor, execution_id)
            .await
            .gql()?;
        txn.subject("execution_checkpoint", checkpoint.id);
        txn.commit().await.gql()?;
        Ok(ExecutionCheckpoint(checkpoint))
    }

    /// Starts a new attempt of a failed or cancelled execution from one of its
    /// checkpoints, through the usage gate.
    async fn resume_from_checkpoint(
        &self,
        ctx: &Context<'_>,
        checkpoint_id: ID,
    ) -> Result<AgentExecution> {
        let actor = ctx.writer()?;
        let checkpoint_id = parse_id(&checkpoint_id, "checkpointId").gql()?;
        let mut txn = ctx.begin().await?;
        let attempt = checkpoints::resume_from_checkpoint(&txn, agents(ctx), actor, checkpoint_id)
            .await
            .gql()?;
        txn.subject("agent_execution", attempt.id);
        txn.commit().await.gql()?;
        Ok(AgentExecution(attempt))
    }
}
