//! The events of each run, written in the transaction of the change that
//! causes them: a rolled-back step emits nothing, and a committed one is
//! seen by every subscriber on every server instance.
//!
//! `seq` comes from `agent_executions.event_seq`, bumped by the same
//! `UPDATE` that takes the execution row's write lock, so the events of one
//! run are numbered without gaps in commit order and a reader that polls
//! `seq > last_seen` never misses one.

use crate::entity::agent_event;
use chrono::{DateTime, Utc};
use kernel::Error;
use kernel::db::raw;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::Value as Json;
use uuid::Uuid;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The execution's status changed: `{from, to, reason?}`.
    StatusChanged,
    /// A thinking step was appended: the [`crate::plan::ThinkingStep`].
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

impl EventKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StatusChanged => "status_changed",
            Self::Step => "step",
            Self::ToolCall => "tool_call",
            Self::ApprovalNeeded => "approval_needed",
            Self::ApprovalAnswered => "approval_answered",
            Self::ControlChanged => "control_changed",
            Self::Checkpoint => "checkpoint",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "status_changed" => Self::StatusChanged,
            "step" => Self::Step,
            "tool_call" => Self::ToolCall,
            "approval_needed" => Self::ApprovalNeeded,
            "approval_answered" => Self::ApprovalAnswered,
            "control_changed" => Self::ControlChanged,
            "checkpoint" => Self::Checkpoint,
            _ => return None,
        })
    }
}

/// Appends one event to `execution_id`'s log.
///
/// # Errors
/// `NOT_FOUND` for an unknown execution; internal on database failure.
pub async fn emit(
    db: &impl ConnectionTrait,
    execution_id: Uuid,
    user_id: Uuid,
    kind: EventKind,
    payload: Json,
    now: DateTime<Utc>,
) -> Result<agent_event::Model, Error> {
    let row = db
        .query_one_raw(raw(
            db.get_database_backend(),
            "UPDATE agent_executions SET event_seq = event_seq + 1 WHERE id = ? RETURNING event_seq",
            vec![execution_id.into()],
        ))
        .await?
        .ok_or(Error::NotFound("execution"))?;
    let seq: i64 = row.try_get("", "event_seq")?;
    Ok(agent_event::ActiveModel {
        id: Set(new_id()),
        execution_id: Set(execution_id),
        user_id: Set(user_id),
        seq: Set(seq),
        kind: Set(kind.as_str().to_owned()),
        payload: Set(payload),
        created_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// Finished runs whose events one retention statement deletes.
const RETENTION_BATCH: i64 = 100;

/// Deletes the events of runs that finished in `[since, before)` (all
/// before `before` when `since` is `None`), a batch of runs per statement
/// (each statement its own short transaction), oldest first. The runs
/// themselves, their steps, tool calls, approvals and checkpoints stay; only
/// the live-progress log goes. Answers how many events were deleted.
///
/// # Errors
/// Internal on database failure; batches already deleted stay deleted.
pub async fn purge_finished(
    db: &impl ConnectionTrait,
    since: Option<DateTime<Utc>>,
    before: DateTime<Utc>,
) -> Result<u64, Error> {
    let backend = db.get_database_backend();
    // The epoch stands for "no lower bound": finished runs all have a later `completed_at`.
    let since = since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut deleted = 0;
    loop {
        let done = db
            .execute_raw(raw(
                backend,
                "DELETE FROM agent_events WHERE execution_id IN ( \
                   SELECT e.id FROM agent_executions e \
                   WHERE e.completed_at >= ? AND e.completed_at < ? \
                     AND e.status IN ('completed', 'failed', 'cancelled') \
                     AND EXISTS (SELECT 1 FROM agent_events v WHERE v.execution_id = e.id) \
                   ORDER BY e.completed_at LIMIT ?)",
                vec![since.into(), before.into(), RETENTION_BATCH.into()],
            ))
            .await?
            .rows_affected();
        if done == 0 {
            return Ok(deleted);
        }
        deleted += done;
    }
}

/// Deletes the event log of runs finished longer than
/// [`crate::AgentSettings::events_retention`] ago; safe on every instance
/// (a second run finds nothing). The first run after start looks at all of
/// history; later runs only at runs that finished since the previous
/// cutoff, so the job's cost follows new work, not the table's age.
pub struct RetentionJob {
    db: sea_orm::DatabaseConnection,
    agents: crate::Agents,
    /// The previous run's cutoff, once a run has finished.
    done_before: std::sync::Mutex<Option<DateTime<Utc>>>,
}

impl RetentionJob {
    /// The job over `db`, with `agents`' clock and retention.
    pub fn new(db: sea_orm::DatabaseConnection, agents: crate::Agents) -> Self {
        Self {
            db,
            agents,
            done_before: std::sync::Mutex::new(None),
        }
    }

    fn watermark(&self) -> std::sync::MutexGuard<'_, Option<DateTime<Utc>>> {
        self.done_before
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl kernel::jobs::Job for RetentionJob {
    fn name(&self) -> &'static str {
        "agents.events_retention"
    }

    async fn run(&self) -> Result<(), Error> {
        let before = self.agents.clock.now() - self.agents.settings.events_retention;
        let since = *self.watermark();
        let deleted = purge_finished(&self.db, since, before).await?;
        *self.watermark() = Some(before);
        if deleted > 0 {
            tracing::info!(deleted, %before, "agent events past retention deleted");
        }
        Ok(())
    }
}
