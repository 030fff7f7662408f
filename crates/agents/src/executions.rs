//! Starting executions: the usage gate is asked first, then the run is
//! written `pending` with its control row, for a worker to pick up.

use crate::entity::{agent_execution, execution_control};
use crate::events::{self, EventKind};
use crate::plan::Plan;
use crate::settings::Agents;
use crate::status::{ControlState, ExecutionStatus};
use billing::gate::ReserveExecution;
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use uuid::Uuid;

/// Longest task description, in characters.
pub const MAX_TASK: usize = 20_000;

/// A task to run, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StartExecution {
    session_id: Uuid,
    task: String,
    plan: Option<Plan>,
}

impl StartExecution {
    /// Parses a request; the plan is checked by [`Plan::parse`].
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `task` (empty or too long) or on the plan.
    pub fn parse(session_id: Uuid, task: String, plan: Option<Plan>) -> Result<Self, Error> {
        let task = task.trim().to_owned();
        if task.is_empty() || task.chars().count() > MAX_TASK {
            return Err(Error::bad_input(
                "task",
                format!("must be 1 to {MAX_TASK} characters"),
            ));
        }
        Ok(Self {
            session_id,
            task,
            plan: plan.map(Plan::parse).transpose()?,
        })
    }
}

/// Where a new attempt starts and what it continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartAt {
    /// First phase to play.
    pub phase_index: i32,
    /// First step to play in that phase.
    pub step_index: i32,
    /// 1 for a fresh run, previous + 1 for a resumed one.
    pub attempt: i32,
    /// The checkpoint resumed from.
    pub resumed_from_checkpoint_id: Option<Uuid>,
    /// The root of the resumed run's lineage; `None` for a fresh run, whose
    /// root is itself.
    pub root_execution_id: Option<Uuid>,
}

/// Reserves an execution for the caller and writes the run `pending`.
///
/// # Errors
/// `NOT_FOUND` for a session that is not the caller's, `BAD_USER_INPUT` on
/// `plan` when the runner needs one and none was given, the usage gate's
/// `LIMIT_EXCEEDED`, internal on database failure.
pub async fn start(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    req: StartExecution,
) -> Result<agent_execution::Model, Error> {
    start_at(
        db,
        agents,
        actor,
        req,
        StartAt {
            attempt: 1,
            ..StartAt::default()
        },
    )
    .await
}

/// [`start`], from a given position (resuming from a checkpoint).
///
/// # Errors
/// As [`start`].
pub async fn start_at(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    req: StartExecution,
    at: StartAt,
) -> Result<agent_execution::Model, Error> {
    crate::sessions::own(db, actor, req.session_id).await?;
    if req.plan.is_none() && agents.runner.needs_plan() {
        return Err(Error::bad_input(
            "plan",
            format!("the {} runner needs a plan", agents.runner.name()),
        ));
    }
    let reservation = agents
        .billing
        .reserve_execution(db, actor, ReserveExecution::default())
        .await?;
    let now = agents.clock.now();
    let id = new_id();
    let execution = agent_execution::ActiveModel {
        id: Set(id),
        session_id: Set(req.session_id),
        user_id: Set(actor.user_id),
        task_description: Set(req.task),
        status: Set(ExecutionStatus::Pending.as_str().to_owned()),
        runner: Set(agents.runner.name().to_owned()),
        plan: Set(req.plan.as_ref().map(Plan::to_json)),
        current_phase_index: Set(at.phase_index),
        step_index: Set(at.step_index),
        thinking_steps: Set(json!([])),
        result: Set(None),
        error: Set(None),
        iterations: Set(0),
        duration_ms: Set(None),
        reservation_id: Set(Some(reservation.id)),
        resumed_from_checkpoint_id: Set(at.resumed_from_checkpoint_id),
        root_execution_id: Set(at.root_execution_id.unwrap_or(id)),
        attempt: Set(at.attempt.max(1)),
        claimed_by: Set(None),
        claim_expires_at: Set(None),
        event_seq: Set(0),
        started_at: Set(None),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    execution_control::ActiveModel {
        id: Set(new_id()),
        execution_id: Set(execution.id),
        user_id: Set(actor.user_id),
        control_state: Set(ControlState::Running.as_str().to_owned()),
        state_reason: Set(None),
        injected_instruction: Set(None),
        injected_at: Set(None),
        checkpoint_data: Set(None),
        last_state_change: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    events::emit(
        db,
        execution.id,
        actor.user_id,
        EventKind::StatusChanged,
        json!({ "from": null, "to": ExecutionStatus::Pending.as_str() }),
        now,
    )
    .await?;
    Ok(agent_execution::Entity::find_by_id(execution.id)
        .one(db)
        .await?
        .unwrap_or(execution))
}

/// The caller's execution `id`.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or belongs to someone else.
pub async fn own(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<agent_execution::Model, Error> {
    agent_execution::Entity::find_by_id(id)
        .filter(agent_execution::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound("execution"))
}
