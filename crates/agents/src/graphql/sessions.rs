//! Reading the caller's sessions and executions, and managing sessions.

use super::agents;
use super::types::{AgentExecution, AgentSession, ExecutionStatus};
use crate::entity::agent_session;
use crate::executions;
use crate::reads;
use crate::sessions::{self, NewSession, SessionChange};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, Result};
use kernel::error::{Code, ResultExt};
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use serde_json::{Value, json};

/// A new agent session.
#[derive(InputObject)]
pub struct CreateAgentSessionInput {
    /// 1 to 200 characters.
    pub name: String,
    /// Context kept with the session.
    pub context: Option<Json<Value>>,
    /// The most steps its executions may take together: 1 to 10,000 (default 100).
    pub max_iterations: Option<i32>,
}

/// A change to an agent session; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateAgentSessionInput {
    /// The session.
    pub id: ID,
    /// 1 to 200 characters.
    pub name: Option<String>,
    /// New context; `null` clears it.
    pub context: MaybeUndefined<Json<Value>>,
    /// 1 to 10,000, and not below the iterations the session has already taken.
    pub max_iterations: Option<i32>,
}

fn audit_view(s: &agent_session::Model) -> Value {
    json!({ "name": s.name, "maxIterations": s.max_iterations })
}

/// The caller's sessions and executions.
#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The caller's agent sessions, newest first.
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    async fn agent_sessions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, AgentSession>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = sessions::page(ctx.db(), actor, window).await.gql()?;
        Ok(page.into_connection(AgentSession))
    }

    /// One of the caller's sessions; null for an unknown id or another user's.
    async fn agent_session(&self, ctx: &Context<'_>, id: ID) -> Result<Option<AgentSession>> {
        let actor = ctx.actor()?;
        let id = parse_id(&id, "id").gql()?;
        let found = sessions::own(ctx.db(), actor, id).await;
        absent_when_not_found(found).map(|s| s.map(AgentSession))
    }

    /// One of the caller's executions; null for an unknown id or another user's.
    async fn agent_execution(&self, ctx: &Context<'_>, id: ID) -> Result<Option<AgentExecution>> {
        let actor = ctx.actor()?;
        let id = parse_id(&id, "id").gql()?;
        let found = executions::own(ctx.db(), actor, id).await;
        absent_when_not_found(found).map(|e| e.map(AgentExecution))
    }

    /// The caller's executions across sessions, newest first, optionally of one status.
    #[graphql(complexity = "super::loaders::list_complexity(first, last, child_complexity)")]
    async fn agent_executions(
        &self,
        ctx: &Context<'_>,
        status: Option<ExecutionStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, AgentExecution>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let status = status.map(Into::into);
        let page = reads::executions_page(ctx.db(), actor, status, window)
            .await
            .gql()?;
        Ok(page.into_connection(AgentExecution))
    }
}

fn absent_when_not_found<T>(found: Result<T, kernel::Error>) -> Result<Option<T>> {
    match found {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code() == Code::NotFound => Ok(None),
        Err(e) => Err(e).gql(),
    }
}

/// Managing the caller's sessions.
#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Creates an agent session for the caller.
    async fn create_agent_session(
        &self,
        ctx: &Context<'_>,
        input: CreateAgentSessionInput,
    ) -> Result<AgentSession> {
        let actor = ctx.writer()?;
        let context = input.context.map(|c| c.0);
        let req = NewSession::parse(input.name, context, input.max_iterations).gql()?;
        let mut txn = ctx.begin().await?;
        let session = sessions::create(&txn, actor, req, agents(ctx).clock.now())
            .await
            .gql()?;
        txn.subject("agent_session", session.id);
        txn.changes(None, Some(audit_view(&session)));
        txn.commit().await.gql()?;
        Ok(AgentSession(session))
    }

    /// Changes one of the caller's sessions; lowering `maxIterations` below
    /// the iterations already taken is refused.
    async fn update_agent_session(
        &self,
        ctx: &Context<'_>,
        input: UpdateAgentSessionInput,
    ) -> Result<AgentSession> {
        let actor = ctx.writer()?;
        let req = update_request(input).gql()?;
        let mut txn = ctx.begin().await?;
        let session = sessions::update(&txn, actor, req, agents(ctx).clock.now())
            .await
            .gql()?;
        txn.subject("agent_session", session.id);
        txn.changes(None, Some(audit_view(&session)));
        txn.commit().await.gql()?;
        Ok(AgentSession(session))
    }

    /// Deletes one of the caller's sessions with its finished executions;
    /// refused with `INVALID_TRANSITION` while one of them is unfinished.
    async fn delete_agent_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        sessions::delete(&txn, actor, id).await.gql()?;
        txn.subject("agent_session", id);
        txn.commit().await.gql()?;
        Ok(true)
    }
}

fn update_request(input: UpdateAgentSessionInput) -> Result<SessionChange, kernel::Error> {
    let id = parse_id(&input.id, "id")?;
    let context = match input.context {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(c) => Some(Some(c.0)),
    };
    SessionChange::parse(id, input.name, context, input.max_iterations)
}
