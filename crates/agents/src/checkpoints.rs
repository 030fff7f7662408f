//! Checkpoints: a saved position of a run, written on error, at the end of a
//! phase, when a pause times out, and on request.
//!
//! Resuming ([`resume_from_checkpoint`]) never revives the old run: it starts
//! a new attempt (a new execution in the same session, with the same task and
//! plan) at the saved `(phase_index, step_index)`, through the usage gate like
//! any start. Every execution names the root of its lineage
//! (`root_execution_id`: a fresh run is its own root, an attempt inherits the
//! root of the run it resumes), so a chain of resumes (A, then B from a
//! checkpoint of A, then C from a checkpoint of B) is one lineage playing one
//! task. Rules:
//! - only a checkpoint that `can_resume` and has not expired;
//! - only of a run that ended `failed` or `cancelled` (a live run cannot be
//!   resumed in parallel, a completed one has nothing left to do);
//! - never two live attempts of one lineage: while any execution of the
//!   lineage (the root or any attempt, whichever checkpoint it was resumed
//!   from) is live, or has completed the work, resuming any checkpoint of the
//!   lineage is refused; once they have all failed or been cancelled, any of
//!   its checkpoints may be resumed again, and `resume_count` counts every
//!   attempt.
//!
//! The lineage's root row is locked while the new attempt is written
//! (execution rows before control rows, like every other writer), so two
//! concurrent resumes of the same lineage, from the same checkpoint or not,
//! start exactly one attempt; the other sees it and is `INVALID_TRANSITION`,
//! the same answer as a resume sent after it.

use crate::entity::{agent_execution, execution_checkpoint};
use crate::events::{self, EventKind};
use crate::executions::{self, StartAt, StartExecution};
use crate::plan::Plan;
use crate::settings::Agents;
use crate::status::{CheckpointReason, ExecutionStatus};
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use kernel::page::{self, Page, Window};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QuerySelect, Set,
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Statuses of a run that may be resumed from a checkpoint.
const RESUMABLE: [ExecutionStatus; 2] = [ExecutionStatus::Failed, ExecutionStatus::Cancelled];

/// Writes a checkpoint of `execution` at its current position.
///
/// `error_info` is kept for `error` and `pause_timeout` checkpoints. The
/// checkpoint can be resumed from until `checkpoint_ttl` has passed.
///
/// # Errors
/// Internal on database failure or a stored plan that does not parse.
pub async fn create(
    db: &impl ConnectionTrait,
    agents: &Agents,
    execution: &agent_execution::Model,
    reason: CheckpointReason,
    error_info: Option<Json>,
) -> Result<execution_checkpoint::Model, Error> {
    let now = agents.clock.now();
    let plan = execution.plan.as_ref().map(Plan::from_json).transpose()?;
    let phase_index = execution.current_phase_index;
    let phase_name = plan
        .as_ref()
        .and_then(|p| p.phases.get(usize::try_from(phase_index).ok()?))
        .map(|p| p.name.clone());
    let completed_phases: Vec<String> = plan
        .as_ref()
        .map(|p| {
            p.phases
                .iter()
                .take(usize::try_from(phase_index).unwrap_or(0))
                .map(|ph| ph.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let completed_steps: Vec<i32> = (0..execution.step_index).collect();
    let checkpoint = execution_checkpoint::ActiveModel {
        id: Set(new_id()),
        execution_id: Set(execution.id),
        user_id: Set(execution.user_id),
        phase_index: Set(phase_index),
        phase_name: Set(phase_name),
        step_index: Set(execution.step_index),
        completed_steps: Set(json!(completed_steps)),
        completed_phases: Set(json!(completed_phases)),
        partial_results: Set(json!({
            "iterations": execution.iterations,
            "result": execution.result,
        })),
        extracted_data: Set(json!({})),
        session_state: Set(None),
        browser_context: Set(None),
        error_info: Set(error_info),
        checkpoint_reason: Set(reason.as_str().to_owned()),
        can_resume: Set(true),
        resume_count: Set(0),
        created_at: Set(now),
        expires_at: Set(Some(now + agents.settings.checkpoint_ttl)),
    }
    .insert(db)
    .await?;
    events::emit(
        db,
        execution.id,
        execution.user_id,
        EventKind::Checkpoint,
        json!({ "checkpointId": checkpoint.id, "reason": checkpoint.checkpoint_reason }),
        now,
    )
    .await?;
    Ok(checkpoint)
}

/// The caller's checkpoint `id`.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or belongs to someone else.
pub async fn own(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<execution_checkpoint::Model, Error> {
    execution_checkpoint::Entity::find_by_id(id)
        .filter(execution_checkpoint::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("checkpoint"))
}

/// One page of the checkpoints of the caller's execution, newest first.
///
/// # Errors
/// `NOT_FOUND` for an execution that is not the caller's; internal on
/// database failure.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    execution_id: Uuid,
    window: Window,
) -> Result<Page<execution_checkpoint::Model>, Error> {
    let execution = executions::own(db, actor, execution_id).await?;
    let select = execution_checkpoint::Entity::find()
        .filter(execution_checkpoint::Column::ExecutionId.eq(execution.id))
        .filter(execution_checkpoint::Column::UserId.eq(actor.user_id));
    page::fetch(
        db,
        select,
        execution_checkpoint::Column::Id,
        |m| m.id,
        window,
    )
    .await
}

/// Writes a `manual` checkpoint of the caller's execution at its current position.
///
/// # Errors
/// `NOT_FOUND` for another user's execution; `INVALID_TRANSITION` for a
/// completed run (nothing is left to resume); internal on database failure.
#[tracing::instrument(skip(db, agents, actor), err)]
pub async fn create_manual(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    execution_id: Uuid,
) -> Result<execution_checkpoint::Model, Error> {
    let execution = executions::own(db, actor, execution_id).await?;
    if ExecutionStatus::parse(&execution.status)? == ExecutionStatus::Completed {
        return Err(Error::InvalidTransition(
            "a completed execution has nothing left to resume".to_owned(),
        ));
    }
    create(db, agents, &execution, CheckpointReason::Manual, None).await
}

/// Starts a new attempt of the checkpoint's run at its saved position (see
/// the module rules) and counts it in `resume_count`.
///
/// # Errors
/// `NOT_FOUND` for another user's checkpoint; `INVALID_TRANSITION` when the
/// checkpoint cannot be resumed, has expired, its run did not end `failed` or
/// `cancelled`, or an execution of its lineage is live or completed; the
/// usage gate's `LIMIT_EXCEEDED`; internal on database failure. Call it
/// inside a transaction: a refusal after the gate rolls back with it.
#[tracing::instrument(skip(db, agents, actor), err)]
pub async fn resume_from_checkpoint(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    checkpoint_id: Uuid,
) -> Result<agent_execution::Model, Error> {
    let now = agents.clock.now();
    let checkpoint = own(db, actor, checkpoint_id).await?;
    if !checkpoint.can_resume {
        return Err(Error::InvalidTransition(
            "this checkpoint cannot be resumed".to_owned(),
        ));
    }
    if checkpoint.expires_at.is_some_and(|at| at <= now) {
        return Err(Error::InvalidTransition(
            "this checkpoint has expired".to_owned(),
        ));
    }
    // Read without a lock: a failed or cancelled run never changes again, and
    // a live one is refused either way.
    let old = agent_execution::Entity::find_by_id(checkpoint.execution_id)
        .filter(agent_execution::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("checkpoint"))?;
    let status = ExecutionStatus::parse(&old.status)?;
    if !RESUMABLE.contains(&status) {
        return Err(Error::InvalidTransition(format!(
            "only a failed or cancelled execution can be resumed; this one is {status}"
        )));
    }
    // Locked until the caller commits: concurrent resumes of any run of this
    // lineage queue here.
    agent_execution::Entity::find_by_id(old.root_execution_id)
        .filter(agent_execution::Column::UserId.eq(actor.user_id))
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(Error::NotFound("checkpoint"))?;
    refuse_when_the_lineage_is_live(db, old.root_execution_id).await?;
    let plan = old.plan.as_ref().map(Plan::from_json).transpose()?;
    let req = StartExecution::parse(old.session_id, old.task_description.clone(), plan)?;
    let at = StartAt {
        phase_index: checkpoint.phase_index,
        step_index: checkpoint.step_index,
        attempt: old.attempt + 1,
        resumed_from_checkpoint_id: Some(checkpoint.id),
        root_execution_id: Some(old.root_execution_id),
    };
    let attempt = executions::start_at(db, agents, actor, req, at).await?;
    count_resume(db, &checkpoint, now).await?;
    Ok(attempt)
}

/// Refuses while any execution of the lineage rooted at `root_id` (the root
/// itself or any attempt, however far down the chain of checkpoints) is live
/// or completed.
async fn refuse_when_the_lineage_is_live(
    db: &impl ConnectionTrait,
    root_id: Uuid,
) -> Result<(), Error> {
    use agent_execution::Column as E;
    let blocking = agent_execution::Entity::find()
        .filter(E::RootExecutionId.eq(root_id))
        .filter(E::Status.is_not_in(RESUMABLE.map(ExecutionStatus::as_str)))
        .one(db)
        .await?;
    match blocking {
        None => Ok(()),
        Some(attempt) => Err(Error::InvalidTransition(format!(
            "attempt {} of this execution's lineage is {}",
            attempt.attempt, attempt.status
        ))),
    }
}

/// Adds one to `resume_count`, only if nothing changed the checkpoint since it was read.
async fn count_resume(
    db: &impl ConnectionTrait,
    checkpoint: &execution_checkpoint::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    use execution_checkpoint::Column as K;
    let counted = execution_checkpoint::Entity::update_many()
        .col_expr(K::ResumeCount, Expr::col(K::ResumeCount).add(1))
        .filter(K::Id.eq(checkpoint.id))
        .filter(K::ResumeCount.eq(checkpoint.resume_count))
        .filter(K::CanResume.eq(true))
        .filter(
            Condition::any()
                .add(K::ExpiresAt.is_null())
                .add(K::ExpiresAt.gt(now)),
        )
        .exec(db)
        .await?;
    if counted.rows_affected == 0 {
        return Err(Error::InvalidTransition(
            "this checkpoint was resumed or changed by another request".to_owned(),
        ));
    }
    Ok(())
}
