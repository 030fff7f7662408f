//! Pause, resume, cancel and injected instructions: rows in
//! `execution_controls` that the worker reads before every step.
//!
//! Each service first takes the execution row for writing (`SELECT ... FOR
//! UPDATE` on PostgreSQL; SQLite has one connection), the same row the worker
//! re-takes at every step, so a control and a step never interleave and both
//! take their locks in the same order (execution, then control). The control
//! row then moves through [`ControlState::transition`] with a `WHERE
//! control_state = <from>` guard and a `control_changed` event.
//!
//! Rules:
//! - pause: refused on a finished or cancelled run (`INVALID_TRANSITION`).
//! - resume: only from `paused`, back to `running`, or on to
//!   `awaiting_approval` when the approval of the run's current step is still
//!   pending. A run `awaiting_approval` is resumed by answering its approval:
//!   resuming it is `INVALID_TRANSITION` naming the approval.
//! - cancel: final; refused on a finished run. A run nobody is driving
//!   (pending, held, or between claims) is settled at once: `cancelled`, its
//!   reservation released. A run a worker holds is cancelled by that worker
//!   before its next step.
//! - inject: refused on a finished or cancelled run; one unconsumed
//!   instruction at a time (`CONFLICT`); a paused run is resumed by it, a run
//!   awaiting approval keeps waiting.
//! - resume and inject extend the run's reservation (billing's
//!   `reservation_ttl` from now): the owner is keeping the run alive.
//!
//! [`PauseTimeoutJob`] fails runs paused longer than `pause_timeout`.

use crate::approvals;
use crate::entity::{action_approval, agent_execution, execution_control};
use crate::events::{self, EventKind};
use crate::settings::Agents;
use crate::status::{
    ApprovalStatus, CheckpointReason, ControlState, ExecutionStatus, SessionStatus,
};
use crate::worker::{self, write};
use kernel::Error;
use kernel::actor::Actor;
use kernel::db::raw;
use kernel::jobs::Job;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

/// The reason a cancel without one records.
pub const CANCELLED_BY_OWNER: &str = "cancelled by its owner";
/// Longest injected instruction, in characters.
pub const MAX_INSTRUCTION: usize = 10_000;
/// Longest control reason, in characters.
pub const MAX_REASON: usize = 1_000;

/// An instruction for the run's next step, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction(String);

impl Instruction {
    /// Parses an instruction: trimmed, 1 to [`MAX_INSTRUCTION`] characters.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `instruction`.
    pub fn parse(text: String) -> Result<Self, Error> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_INSTRUCTION {
            return Err(Error::bad_input(
                "instruction",
                format!("must be 1 to {MAX_INSTRUCTION} characters"),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why the owner paused or cancelled a run, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlReason(String);

impl ControlReason {
    /// Parses an optional reason: trimmed, empty is none, at most [`MAX_REASON`] characters.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `reason`.
    pub fn parse(text: Option<String>) -> Result<Option<Self>, Error> {
        let Some(text) = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if text.chars().count() > MAX_REASON {
            return Err(Error::bad_input(
                "reason",
                format!("must be at most {MAX_REASON} characters"),
            ));
        }
        Ok(Some(Self(text)))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Pauses the caller's execution `id`; the worker stops before its next step.
///
/// # Errors
/// `NOT_FOUND` for another user's execution; `INVALID_TRANSITION` for a
/// finished, cancelled or already paused run; `CONFLICT` on a concurrent change.
pub async fn pause(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    id: Uuid,
    reason: Option<ControlReason>,
) -> Result<execution_control::Model, Error> {
    let (exec, control) = take(db, actor, id).await?;
    refuse_finished(&exec, "paused")?;
    let from = ControlState::parse(&control.control_state)?;
    let reason = reason
        .as_ref()
        .map_or("paused by its owner", ControlReason::as_str);
    let control = move_control(db, agents, &exec, from, ControlState::Paused, Some(reason)).await?;
    // Until the pause timeout fails the run (or a resume re-takes it).
    let deadline = agents.clock.now() + agents.settings.pause_timeout;
    worker::keep_reservation_until(db, agents, &exec, deadline).await?;
    worker::follow_session(db, agents, exec.session_id, SessionStatus::Paused, None).await?;
    Ok(control)
}

/// Resumes the caller's paused execution `id`.
///
/// # Errors
/// `NOT_FOUND` for another user's execution; `INVALID_TRANSITION` unless the
/// run is paused (a run awaiting approval names the approval to answer);
/// `CONFLICT` on a concurrent change.
pub async fn resume(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    id: Uuid,
) -> Result<execution_control::Model, Error> {
    let (exec, control) = take(db, actor, id).await?;
    refuse_finished(&exec, "resumed")?;
    match ControlState::parse(&control.control_state)? {
        ControlState::Paused => {
            worker::keep_reservation(db, agents, &exec).await?;
            resume_paused(db, agents, &exec).await
        }
        ControlState::AwaitingApproval => {
            let waiting = pending_approval(db, &exec).await?;
            let named = waiting.map_or_else(String::new, |a| format!(" {}", a.id));
            Err(Error::InvalidTransition(format!(
                "the execution is waiting for approval{named}: approve or reject it instead of resuming"
            )))
        }
        other => Err(Error::InvalidTransition(format!(
            "only a paused execution can be resumed; this one is {other}"
        ))),
    }
}

/// Cancels the caller's execution `id` for good.
///
/// # Errors
/// `NOT_FOUND` for another user's execution; `INVALID_TRANSITION` for a
/// finished or already cancelled run; `CONFLICT` on a concurrent change.
pub async fn cancel(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    id: Uuid,
    reason: Option<ControlReason>,
) -> Result<execution_control::Model, Error> {
    let (exec, control) = take(db, actor, id).await?;
    refuse_finished(&exec, "cancelled")?;
    let from = ControlState::parse(&control.control_state)?;
    let reason = reason
        .as_ref()
        .map_or(CANCELLED_BY_OWNER, ControlReason::as_str);
    let control = move_control(
        db,
        agents,
        &exec,
        from,
        ControlState::Cancelled,
        Some(reason),
    )
    .await?;
    // We hold the execution row, so no worker can claim or step it now: a
    // run without a live lease is settled here, since no worker will.
    let now = agents.clock.now();
    let driven = exec.claimed_by.is_some() && exec.claim_expires_at.is_some_and(|t| t >= now);
    if !driven {
        worker::cancel_run(db, agents, &exec, reason).await?;
    }
    Ok(control)
}

/// Gives the caller's execution `id` an instruction for its next step.
///
/// # Errors
/// `NOT_FOUND` for another user's execution; `INVALID_TRANSITION` for a
/// finished or cancelled run; `CONFLICT` on `instruction` while an earlier
/// one is unconsumed.
pub async fn inject(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    id: Uuid,
    instruction: Instruction,
) -> Result<execution_control::Model, Error> {
    let (exec, control) = take(db, actor, id).await?;
    refuse_finished(&exec, "given instructions")?;
    let state = ControlState::parse(&control.control_state)?;
    if state == ControlState::Cancelled {
        return Err(Error::InvalidTransition(
            "a cancelled execution cannot be given instructions".into(),
        ));
    }
    let unconsumed = || {
        Error::conflict(
            "instruction",
            "an earlier instruction has not been consumed yet",
        )
    };
    if control.injected_instruction.is_some() {
        return Err(unconsumed());
    }
    let now = agents.clock.now();
    let stored = write(
        db,
        "UPDATE execution_controls SET injected_instruction = ?, injected_at = ?, updated_at = ? \
         WHERE execution_id = ? AND injected_instruction IS NULL",
        vec![
            instruction.as_str().into(),
            now.into(),
            now.into(),
            exec.id.into(),
        ],
    )
    .await?;
    if stored == 0 {
        return Err(unconsumed());
    }
    worker::keep_reservation(db, agents, &exec).await?;
    let payload = json!({
        "from": state.as_str(),
        "to": state.as_str(),
        "reason": "instruction injected",
    });
    events::emit(
        db,
        exec.id,
        exec.user_id,
        EventKind::ControlChanged,
        payload,
        now,
    )
    .await?;
    if state == ControlState::Paused {
        return resume_paused(db, agents, &exec).await;
    }
    control_row(db, exec.id).await
}

/// `paused -> running`, and on to `awaiting_approval` when the approval of
/// the current step is still pending (the worker would stop there again).
async fn resume_paused(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
) -> Result<execution_control::Model, Error> {
    let control = move_control(
        db,
        agents,
        exec,
        ControlState::Paused,
        ControlState::Running,
        Some("resumed by its owner"),
    )
    .await?;
    let at_step = approvals::for_step(db, exec.id, exec.current_phase_index, exec.step_index)
        .await?
        .filter(|a| a.status == ApprovalStatus::Pending.as_str());
    if let Some(approval) = at_step {
        return move_control(
            db,
            agents,
            exec,
            ControlState::Running,
            ControlState::AwaitingApproval,
            Some(&format!("waiting for approval {}", approval.id)),
        )
        .await;
    }
    let session = match ExecutionStatus::parse(&exec.status)? {
        ExecutionStatus::Planning => SessionStatus::Planning,
        ExecutionStatus::Executing => SessionStatus::Executing,
        _ => SessionStatus::Idle,
    };
    worker::follow_session(db, agents, exec.session_id, session, None).await?;
    Ok(control)
}

/// The one way a control state changes: checked by
/// [`ControlState::transition`], written only if the row is still in `from`,
/// and logged as a `control_changed` event.
///
/// # Errors
/// `INVALID_TRANSITION` for an illegal move; `CONFLICT` when the state is no
/// longer `from`.
pub async fn move_control(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    from: ControlState,
    to: ControlState,
    reason: Option<&str>,
) -> Result<execution_control::Model, Error> {
    from.transition(to)?;
    let now = agents.clock.now();
    let moved = write(
        db,
        "UPDATE execution_controls SET control_state = ?, state_reason = ?, \
         last_state_change = ?, updated_at = ? WHERE execution_id = ? AND control_state = ?",
        vec![
            to.as_str().into(),
            reason.map(str::to_owned).into(),
            now.into(),
            now.into(),
            exec.id.into(),
            from.as_str().into(),
        ],
    )
    .await?;
    if moved == 0 {
        return Err(Error::Conflict {
            field: None,
            message: "the execution's control changed meanwhile; try again".into(),
        });
    }
    let payload = json!({ "from": from.as_str(), "to": to.as_str(), "reason": reason });
    events::emit(
        db,
        exec.id,
        exec.user_id,
        EventKind::ControlChanged,
        payload,
        now,
    )
    .await?;
    control_row(db, exec.id).await
}

/// The caller's execution `id`, taken for writing, with its control row.
async fn take(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<(agent_execution::Model, execution_control::Model), Error> {
    let exec = agent_execution::Entity::find_by_id(id)
        .filter(agent_execution::Column::UserId.eq(actor.user_id))
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(Error::NotFound("execution"))?;
    let control = control_row(db, id).await?;
    Ok((exec, control))
}

async fn control_row(
    db: &impl ConnectionTrait,
    execution_id: Uuid,
) -> Result<execution_control::Model, Error> {
    execution_control::Entity::find()
        .filter(execution_control::Column::ExecutionId.eq(execution_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("an execution without its control row".into()))
}

async fn pending_approval(
    db: &impl ConnectionTrait,
    exec: &agent_execution::Model,
) -> Result<Option<action_approval::Model>, Error> {
    Ok(action_approval::Entity::find()
        .filter(action_approval::Column::ExecutionId.eq(exec.id))
        .filter(action_approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
        .one(db)
        .await?)
}

fn refuse_finished(exec: &agent_execution::Model, what: &str) -> Result<(), Error> {
    let status = ExecutionStatus::parse(&exec.status)?;
    if status.is_final() {
        return Err(Error::InvalidTransition(format!(
            "a {status} execution cannot be {what}"
        )));
    }
    Ok(())
}

/// Fails every run paused longer than `settings.pause_timeout`: a
/// `pause_timeout` checkpoint, status `failed` with the reason, reservation
/// released. Each run is its own transaction that re-takes the run and
/// re-reads its control, so running twice, on two instances, or against a
/// concurrent resume changes each run once.
#[derive(Debug, Clone)]
pub struct PauseTimeoutJob {
    /// The pool.
    pub db: DatabaseConnection,
    /// Settings (the timeout) and clock.
    pub agents: Agents,
}

/// Runs timed out per tick, at most.
const TIMEOUT_BATCH: i64 = 100;

#[async_trait::async_trait]
impl Job for PauseTimeoutJob {
    fn name(&self) -> &'static str {
        "agents.pause_timeout"
    }

    async fn run(&self) -> Result<(), Error> {
        let cutoff = self.agents.clock.now() - self.agents.settings.pause_timeout;
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(raw(
                backend,
                "SELECT c.execution_id FROM execution_controls c \
                 JOIN agent_executions e ON e.id = c.execution_id \
                 WHERE c.control_state = 'paused' AND c.last_state_change < ? \
                 AND e.status IN ('pending', 'planning', 'executing') \
                 ORDER BY c.last_state_change LIMIT ?",
                vec![cutoff.into(), TIMEOUT_BATCH.into()],
            ))
            .await?;
        for row in rows {
            let id: Uuid = row.try_get("", "execution_id")?;
            let txn = self.db.begin().await?;
            match time_out(&txn, &self.agents, id, cutoff).await {
                Ok(_) => txn.commit().await?,
                // One run that cannot be failed must not hold up the others
                // queued behind it; it is tried again at the next tick.
                Err(err) => {
                    txn.rollback().await?;
                    tracing::warn!(execution_id = %id, error = %err, "pause timeout not applied");
                }
            }
        }
        Ok(())
    }
}

/// The reason a run fails when its pause outlives `pause_timeout`.
pub fn pause_timeout_reason(agents: &Agents) -> String {
    let secs = agents.settings.pause_timeout.num_seconds();
    if secs % 60 == 0 {
        format!("paused longer than {} minutes", secs / 60)
    } else {
        format!("paused longer than {secs} seconds")
    }
}

/// Fails run `id` if it is still paused since before `cutoff`.
async fn time_out(
    db: &impl ConnectionTrait,
    agents: &Agents,
    id: Uuid,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<bool, Error> {
    let Some(exec) = agent_execution::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let control = control_row(db, id).await?;
    let still_paused = control.control_state == ControlState::Paused.as_str()
        && control.last_state_change < cutoff;
    if ExecutionStatus::parse(&exec.status)?.is_final() || !still_paused {
        return Ok(false);
    }
    let reason = pause_timeout_reason(agents);
    let info = json!({
        "error": reason,
        "pauseTimeoutSeconds": agents.settings.pause_timeout.num_seconds(),
        "pausedAt": control.last_state_change,
        "phaseIndex": exec.current_phase_index,
        "stepIndex": exec.step_index,
    });
    worker::fail_run(
        db,
        agents,
        &exec,
        &reason,
        CheckpointReason::PauseTimeout,
        Some(info),
    )
    .await?;
    Ok(true)
}
