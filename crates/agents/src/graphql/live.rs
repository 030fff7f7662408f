//! Live progress: `executionEvents` and `pendingApprovals` subscriptions, and
//! the `executionEventLog` catch-up query. The streams live in
//! [`crate::live`]; these resolvers check the caller and map the output.

use super::agents;
use super::types::ActionApproval;
use crate::entity::agent_event;
use crate::events::EventKind;
use crate::live::{self, EventsFrom, LogLimit};
use async_graphql::{Context, Enum, ID, Json, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use kernel::error::{Error, ResultExt};
use kernel::gql::ContextExt;
use serde_json::Value;

/// What happened to a run.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentEventKind {
    /// The run's status changed: `{from, to, reason?}`.
    StatusChanged,
    /// A thinking step was appended.
    Step,
    /// A tool was called: `{toolExecutionId, toolName, success}`.
    ToolCall,
    /// An approval is waiting: `{approvalId, actionType, riskLevel, expiresAt}`.
    ApprovalNeeded,
    /// An approval was answered: `{approvalId, status}`.
    ApprovalAnswered,
    /// The control state changed: `{from, to, reason?}`.
    ControlChanged,
    /// A checkpoint was written: `{checkpointId, reason}`.
    Checkpoint,
}

impl From<EventKind> for AgentEventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::StatusChanged => Self::StatusChanged,
            EventKind::Step => Self::Step,
            EventKind::ToolCall => Self::ToolCall,
            EventKind::ApprovalNeeded => Self::ApprovalNeeded,
            EventKind::ApprovalAnswered => Self::ApprovalAnswered,
            EventKind::ControlChanged => Self::ControlChanged,
            EventKind::Checkpoint => Self::Checkpoint,
        }
    }
}

/// One entry of a run's ordered event log.
pub struct AgentEvent(pub agent_event::Model);

/// One entry of a run's ordered event log.
#[Object]
impl AgentEvent {
    /// The event's place in its run's log: 1, 2, 3, … without gaps. Pass the
    /// last one seen as `afterSeq` to resume.
    async fn seq(&self) -> i32 {
        i32::try_from(self.0.seq).unwrap_or(i32::MAX)
    }
    /// The run it happened to.
    async fn execution_id(&self) -> ID {
        ID(self.0.execution_id.to_string())
    }
    /// What happened.
    async fn kind(&self) -> Result<AgentEventKind> {
        EventKind::parse(&self.0.kind)
            .map(AgentEventKind::from)
            .ok_or_else(|| Error::Internal(format!("unknown event kind {:?}", self.0.kind).into()))
            .gql()
    }
    /// The details; their shape depends on `kind`.
    async fn payload(&self) -> Json<Value> {
        Json(self.0.payload.clone())
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The catch-up read of a run's event log.
#[derive(Default)]
pub struct ExecutionEventQuery;

/// The catch-up read of a run's event log.
#[Object]
impl ExecutionEventQuery {
    /// Events of one of the caller's runs after `afterSeq` (default 0), oldest
    /// first, at most `first` (1 to 100, default 100). The `seq` of the last
    /// one is the cursor of the next page and the `afterSeq` of a subscription
    /// that goes on from there.
    async fn execution_event_log(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        after_seq: Option<i32>,
        first: Option<i32>,
    ) -> Result<Vec<AgentEvent>> {
        let actor = ctx.actor()?;
        let from = EventsFrom::parse(&execution_id, after_seq).gql()?;
        let limit = LogLimit::parse(first).gql()?;
        let events = live::log(ctx.db(), actor, from, limit).await.gql()?;
        Ok(events.into_iter().map(AgentEvent).collect())
    }
}

/// Live progress of the caller's runs.
#[derive(Default)]
pub struct AgentSubscription;

/// Live progress of the caller's runs.
#[Subscription]
impl AgentSubscription {
    /// The events of one of the caller's runs, in order and without gaps,
    /// from `afterSeq` on (default 0: from the first): status changes, steps,
    /// tool calls, approvals and controls, as they are committed on any server
    /// instance. Ends once the run is final and its last event was sent.
    /// `NOT_FOUND` for a run that is not the caller's.
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        after_seq: Option<i32>,
    ) -> Result<impl Stream<Item = Result<AgentEvent>> + use<>> {
        let actor = ctx.actor()?;
        let from = EventsFrom::parse(&execution_id, after_seq).gql()?;
        let poll = agents(ctx).settings.events_poll;
        let events = live::execution_events(ctx.db().clone(), actor, from, poll).await;
        Ok(events.gql()?.map(|e| e.map(AgentEvent).gql()))
    }

    /// The caller's approvals waiting for an answer, oldest first: sent at
    /// once, then again whenever one is added, answered or expires.
    async fn pending_approvals(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<Vec<ActionApproval>>> + use<>> {
        let actor = ctx.actor()?;
        let a = agents(ctx);
        let sets = live::pending_approvals(
            ctx.db().clone(),
            actor,
            a.clock.clone(),
            a.settings.events_poll,
        );
        Ok(sets.map(|set| {
            set.map(|s| s.into_iter().map(ActionApproval).collect())
                .gql()
        }))
    }
}
