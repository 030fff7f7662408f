//! The worker: claims runs whose control says `running` and plays them, one
//! step at a time, until they finish, fail, are held or lose their lease.
//!
//! # Claims
//! A tick claims up to `worker_batch` unfinished runs whose control is
//! `running` (or `cancelled` but not yet settled) and whose lease is free, setting `claimed_by` and
//! `claim_expires_at = now + claim_lease`. On PostgreSQL the candidates are
//! picked with `FOR UPDATE SKIP LOCKED`, so instances never take one run
//! twice; SQLite has one connection, where the conditional `UPDATE` alone
//! suffices. Every step renews the lease; a worker that finds its claim gone
//! (another took over after the lease ran out) stops at once.
//!
//! # A step
//! A step is read, played, written:
//! 1. *read* (one transaction): re-take the execution row under our claim
//!    (renewing the lease; on PostgreSQL this row lock orders us with the
//!    control services, which lock the same row first) and read
//!    `execution_controls`: `cancelled` settles the run, `paused` and
//!    `awaiting_approval` release the claim, so a pause takes effect before
//!    the next step. `pending` moves to `planning`; `planning` asks the
//!    runner for the plan and moves to `executing`.
//! 2. *play*: the runner's call happens outside any transaction, so no lock
//!    and no SQLite connection is held across a model call.
//! 3. *write* (one transaction): re-take the row under our claim *at the same
//!    position*, consume the injected instruction the step was given (a
//!    conditional `UPDATE`: consumed exactly once), take one iteration
//!    (`iteration_count < max_iterations`, or the run fails naming the cap),
//!    append the thinking steps, write the `tool_executions` row and the
//!    token usage into billing's cost tables, then apply the outcome. Any
//!    refusal rolls the whole step back: nothing of it is written, and the
//!    run fails with the reason in a transaction of its own.
//!
//! Every status change goes through [`ExecutionStatus::transition`] with a
//! `WHERE status = <from>` guard and emits an event in the same transaction.
//!
//! # Billing
//! The run's reservation is committed on completion and released on failure
//! or cancel, for an [`Actor`] built from the run's owner ([`owner_actor`]):
//! billing reads only its user id. Every transaction that re-takes the run
//! extends its reservation by billing's `reservation_ttl`
//! ([`Billing::extend_reservation`](billing::settings::Billing::extend_reservation)),
//! as do resume and inject, so a live run's reservation is never released by
//! billing's period job. One released anyway (a run abandoned longer than the
//! lifetime) is left as it is and logged.

use crate::approvals;
use crate::checkpoints;
use crate::controls;
use crate::entity::{agent_execution, agent_session, execution_control, tool_execution};
use crate::events::{self, EventKind};
use crate::plan::{Plan, PlanStep, StepTokens, ThinkingStep};
use crate::runner::{StepContext, StepOutcome, StepOutput};
use crate::settings::Agents;
use crate::status::{
    ApprovalStatus, CheckpointReason, ControlState, ExecutionStatus, SessionStatus,
};
use billing::costs::{Provider, TokenUsage};
use chrono::{DateTime, Utc};
use kernel::Error;
use kernel::actor::{Actor, Credential, Role};
use kernel::db::raw;
use kernel::id::new_id;
use kernel::jobs::Job;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel,
    Set, TransactionTrait, Value,
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Longest `claimed_by` the table keeps.
const MAX_WORKER_ID: usize = 100;
/// Longest `agent_sessions.current_phase` the table keeps.
const MAX_PHASE_NAME: usize = 100;

/// Plays claimed runs; register it with [`kernel::jobs::Jobs::every`].
#[derive(Debug, Clone)]
pub struct AgentWorker {
    /// The pool; each step opens its own transactions on it.
    pub db: DatabaseConnection,
    /// Settings, clock, billing and the runner.
    pub agents: Agents,
    /// Written to `claimed_by`; unique per server instance (at most 100 characters are kept).
    pub worker_id: String,
}

/// What the driver does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Play the next step.
    Next,
    /// The run finished, failed, is held, or is no longer ours.
    Stop,
}

/// Why a step's write was refused.
enum StepError {
    /// The run fails with this reason; nothing of the step is written.
    Fail(String),
    /// A database failure: the step is rolled back and played again once the lease ends.
    Other(Error),
}

impl From<Error> for StepError {
    fn from(err: Error) -> Self {
        Self::Other(err)
    }
}

#[async_trait::async_trait]
impl Job for AgentWorker {
    fn name(&self) -> &'static str {
        "agents.worker"
    }

    async fn run(&self) -> Result<(), Error> {
        let claimed = claim(&self.db, &self.agents, self.id()).await?;
        let driven =
            futures_util::future::join_all(claimed.into_iter().map(|id| self.drive(id))).await;
        driven.into_iter().collect::<Result<Vec<()>, Error>>()?;
        Ok(())
    }
}

/// Runs of `worker_id` claimed now, oldest first: unfinished, control
/// `running` (or `cancelled`, left unsettled by a worker that died holding
/// it), lease free.
///
/// # Errors
/// Internal on database failure.
pub async fn claim(
    db: &impl ConnectionTrait,
    agents: &Agents,
    worker_id: &str,
) -> Result<Vec<Uuid>, Error> {
    let now = agents.clock.now();
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres {
        " FOR UPDATE OF e SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE agent_executions SET claimed_by = ?, claim_expires_at = ?, updated_at = ? \
         WHERE id IN (SELECT e.id FROM agent_executions e \
           JOIN execution_controls c ON c.execution_id = e.id \
           WHERE e.status IN ('pending', 'planning', 'executing') \
           AND c.control_state IN ('running', 'cancelled') \
           AND (e.claim_expires_at IS NULL OR e.claim_expires_at < ?) \
           ORDER BY e.created_at, e.id LIMIT ?{lock}) \
         AND (claim_expires_at IS NULL OR claim_expires_at < ?) \
         RETURNING id"
    );
    let batch = i64::try_from(agents.settings.worker_batch).unwrap_or(i64::MAX);
    let rows = db
        .query_all_raw(raw(
            backend,
            &sql,
            vec![
                worker_id.into(),
                (now + agents.settings.claim_lease).into(),
                now.into(),
                now.into(),
                batch.into(),
                now.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid>("", "id").map_err(Error::from))
        .collect()
}

impl AgentWorker {
    /// A worker with this id (truncated to the 100 characters `claimed_by` keeps).
    pub fn new(db: DatabaseConnection, agents: Agents, worker_id: impl Into<String>) -> Self {
        Self {
            db,
            agents,
            worker_id: worker_id.into(),
        }
    }

    fn id(&self) -> &str {
        match self.worker_id.char_indices().nth(MAX_WORKER_ID) {
            Some((end, _)) => &self.worker_id[..end],
            None => &self.worker_id,
        }
    }

    /// Plays claimed run `id` until it stops, or until half a lease of wall
    /// time has passed: then the claim is released so that the tick ends (a
    /// shutdown waits for it) and any instance's next tick goes on with the run.
    async fn drive(&self, id: Uuid) -> Result<(), Error> {
        let budget = (self.agents.settings.claim_lease / 2)
            .to_std()
            .unwrap_or_default();
        let started = std::time::Instant::now();
        loop {
            match self.step(id).await {
                Ok(Flow::Next) if started.elapsed() > budget => {
                    write(
                        &self.db,
                        "UPDATE agent_executions SET claimed_by = NULL, claim_expires_at = NULL \
                         WHERE id = ? AND claimed_by = ?",
                        vec![id.into(), self.id().into()],
                    )
                    .await?;
                    return Ok(());
                }
                Ok(Flow::Next) => {}
                Ok(Flow::Stop) => return Ok(()),
                Err(err) => {
                    tracing::warn!(execution_id = %id, error = %err, "agent step failed; retried when the lease ends");
                    return Err(err);
                }
            }
        }
    }

    /// Re-takes run `id` under our claim, renewing the lease; `at` also
    /// requires the status and position a step was played at. `None` when
    /// the claim (or the position) is no longer ours.
    async fn hold(
        &self,
        db: &impl ConnectionTrait,
        id: Uuid,
        at: Option<(ExecutionStatus, i32, i32)>,
    ) -> Result<Option<agent_execution::Model>, Error> {
        let now = self.agents.clock.now();
        let mut sql = String::from(
            "UPDATE agent_executions SET claim_expires_at = ?, updated_at = ? \
             WHERE id = ? AND claimed_by = ?",
        );
        let mut values: Vec<Value> = vec![
            (now + self.agents.settings.claim_lease).into(),
            now.into(),
            id.into(),
            self.id().into(),
        ];
        if let Some((status, phase, step)) = at {
            sql.push_str(" AND status = ? AND current_phase_index = ? AND step_index = ?");
            values.extend([status.as_str().into(), phase.into(), step.into()]);
        }
        if write(db, &sql, values).await? == 0 {
            return Ok(None);
        }
        let exec = agent_execution::Entity::find_by_id(id).one(db).await?;
        if let Some(exec) = &exec {
            keep_reservation(db, &self.agents, exec).await?;
        }
        Ok(exec)
    }

    /// One step of run `id`: see the module documentation.
    async fn step(&self, id: Uuid) -> Result<Flow, Error> {
        let agents = &self.agents;
        let txn = self.db.begin().await?;
        let Some(exec) = self.hold(&txn, id, None).await? else {
            return Ok(Flow::Stop);
        };
        let status = ExecutionStatus::parse(&exec.status)?;
        if status.is_final() {
            release_claim(&txn, id).await?;
            txn.commit().await?;
            return Ok(Flow::Stop);
        }
        let control = control_of(&txn, id).await?;
        match ControlState::parse(&control.control_state)? {
            ControlState::Running => {}
            ControlState::Cancelled => {
                let reason = control
                    .state_reason
                    .unwrap_or_else(|| controls::CANCELLED_BY_OWNER.to_owned());
                cancel_run(&txn, agents, &exec, &reason).await?;
                txn.commit().await?;
                return Ok(Flow::Stop);
            }
            ControlState::Paused | ControlState::AwaitingApproval => {
                release_claim(&txn, id).await?;
                follow_session(&txn, agents, exec.session_id, SessionStatus::Paused, None).await?;
                txn.commit().await?;
                return Ok(Flow::Stop);
            }
        }
        match status {
            ExecutionStatus::Pending => {
                move_status(&txn, agents, &exec, ExecutionStatus::Planning, None).await?;
                follow_session(&txn, agents, exec.session_id, SessionStatus::Planning, None)
                    .await?;
                txn.commit().await?;
                Ok(Flow::Next)
            }
            ExecutionStatus::Planning => {
                txn.commit().await?;
                self.plan(exec).await
            }
            _ => self.play(txn, exec, control).await,
        }
    }

    /// Asks the runner for the plan of a `planning` run and starts executing it.
    async fn plan(&self, exec: agent_execution::Model) -> Result<Flow, Error> {
        let agents = &self.agents;
        let given = exec.plan.as_ref().map(Plan::from_json).transpose();
        let planned = match &given {
            Ok(given) => agents
                .runner
                .plan(&exec.task_description, given.as_ref())
                .await
                .map_err(|e| e.0)
                .and_then(|plan| {
                    plan.parse()
                        .map_err(|e| format!("the runner's plan is not valid: {e}"))
                }),
            Err(_) => Err("the stored plan cannot be read".to_owned()),
        };
        let at = (
            ExecutionStatus::Planning,
            exec.current_phase_index,
            exec.step_index,
        );
        let txn = self.db.begin().await?;
        let Some(exec) = self.hold(&txn, exec.id, Some(at)).await? else {
            return Ok(Flow::Stop);
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(reason) => {
                fail_run(&txn, agents, &exec, &reason, CheckpointReason::Error, None).await?;
                txn.commit().await?;
                return Ok(Flow::Stop);
            }
        };
        move_status(&txn, agents, &exec, ExecutionStatus::Executing, None).await?;
        let mut change = exec.clone().into_active_model();
        change.plan = Set(Some(plan.to_json()));
        change.started_at = Set(Some(agents.clock.now()));
        change.update(&txn).await?;
        let phase = phase_name(&plan, exec.current_phase_index);
        follow_session(
            &txn,
            agents,
            exec.session_id,
            SessionStatus::Executing,
            phase,
        )
        .await?;
        txn.commit().await?;
        Ok(Flow::Next)
    }

    /// Plays the step at an `executing` run's position; `txn` is the read
    /// transaction, still open.
    async fn play(
        &self,
        txn: sea_orm::DatabaseTransaction,
        exec: agent_execution::Model,
        control: execution_control::Model,
    ) -> Result<Flow, Error> {
        let agents = &self.agents;
        let Some(plan) = exec.plan.as_ref().and_then(|p| Plan::from_json(p).ok()) else {
            let reason = "the stored plan cannot be read";
            fail_run(&txn, agents, &exec, reason, CheckpointReason::Error, None).await?;
            txn.commit().await?;
            return Ok(Flow::Stop);
        };
        let (phase, step) = (exec.current_phase_index, exec.step_index);
        let Some(plan_step) = plan.step(phase, step) else {
            // Past the last step without a `finish`: done, with no result.
            complete_run(&txn, agents, &exec, None).await?;
            txn.commit().await?;
            return Ok(Flow::Stop);
        };
        if matches!(plan_step, PlanStep::Approval { .. })
            && let Some(approval) = approvals::for_step(&txn, exec.id, phase, step).await?
        {
            let flow = match ApprovalStatus::parse(&approval.status)? {
                ApprovalStatus::Approved => advance(&txn, agents, &exec, &plan).await?,
                ApprovalStatus::Rejected => {
                    let why = approval
                        .rejection_reason
                        .as_deref()
                        .unwrap_or("no reason given");
                    let reason = format!("action rejected: {why}");
                    fail_run(&txn, agents, &exec, &reason, CheckpointReason::Error, None).await?;
                    Flow::Stop
                }
                ApprovalStatus::Expired => {
                    let reason = "approval expired";
                    fail_run(&txn, agents, &exec, reason, CheckpointReason::Error, None).await?;
                    Flow::Stop
                }
                ApprovalStatus::Pending => {
                    wait_for_approval(&txn, agents, &exec, approval.id).await?;
                    Flow::Stop
                }
            };
            txn.commit().await?;
            return Ok(flow);
        }
        let session = session_of(&txn, exec.session_id).await?;
        if session.iteration_count >= session.max_iterations {
            let reason = cap_reason(session.max_iterations);
            fail_run(&txn, agents, &exec, &reason, CheckpointReason::Error, None).await?;
            txn.commit().await?;
            return Ok(Flow::Stop);
        }
        let instruction = control.injected_instruction;
        txn.commit().await?;

        let played = agents
            .runner
            .step(StepContext {
                task: &exec.task_description,
                plan: &plan,
                phase_index: phase,
                step_index: step,
                instruction: instruction.as_deref(),
            })
            .await;

        let at = Some((ExecutionStatus::Executing, phase, step));
        let txn = self.db.begin().await?;
        let Some(exec) = self.hold(&txn, exec.id, at).await? else {
            return Ok(Flow::Stop);
        };
        let outcome = match played {
            Ok(out) => write_step(&txn, agents, &exec, &plan, instruction.as_deref(), out).await,
            Err(err) => Err(StepError::Fail(err.0)),
        };
        match outcome {
            Ok(flow) => {
                txn.commit().await?;
                Ok(flow)
            }
            Err(StepError::Other(err)) => Err(err),
            Err(StepError::Fail(reason)) => {
                drop(txn);
                let txn = self.db.begin().await?;
                let Some(exec) = self.hold(&txn, exec.id, at).await? else {
                    return Ok(Flow::Stop);
                };
                fail_run(&txn, agents, &exec, &reason, CheckpointReason::Error, None).await?;
                txn.commit().await?;
                Ok(Flow::Stop)
            }
        }
    }
}

/// Keeps a live run's unsettled reservation from expiring: billing's period
/// job releases only abandoned reservations, so every transaction that
/// re-takes the run (and a resume or inject) moves its `expires_at` on by
/// `reservation_ttl`. A reservation already settled is left as it is.
///
/// # Errors
/// Internal on database failure.
pub(crate) async fn keep_reservation(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
) -> Result<(), Error> {
    if let Some(reservation) = exec.reservation_id {
        agents
            .billing
            .extend_reservation(db, reservation, agents.clock.now())
            .await?;
    }
    Ok(())
}

/// Keeps a held run's unsettled reservation until at least `until` (plus a
/// claim lease, the slack of the jobs that end the hold): a run paused or
/// waiting on an approval is re-taken by no worker meanwhile, so
/// [`keep_reservation`] does not run for it, and billing must not release
/// its slot before the pause timeout or the approval's expiry decides.
///
/// # Errors
/// Internal on database failure.
pub(crate) async fn keep_reservation_until(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    until: DateTime<Utc>,
) -> Result<(), Error> {
    if let Some(reservation) = exec.reservation_id {
        agents
            .billing
            .extend_reservation_until(db, reservation, until + agents.settings.claim_lease)
            .await?;
    }
    Ok(())
}

/// Writes what one step produced and applies its outcome, in the caller's transaction.
async fn write_step(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    plan: &Plan,
    instruction: Option<&str>,
    out: StepOutput,
) -> Result<Flow, StepError> {
    let now = agents.clock.now();
    let (phase, step) = (exec.current_phase_index, exec.step_index);
    if let Some(text) = instruction {
        let consumed = write(
            db,
            "UPDATE execution_controls SET injected_instruction = NULL, injected_at = NULL, \
             updated_at = ? WHERE execution_id = ? AND injected_instruction = ?",
            vec![now.into(), exec.id.into(), text.into()],
        )
        .await?;
        if consumed == 0 {
            return Err(StepError::Other(Error::Conflict {
                field: None,
                message: "the injected instruction changed while its step was played".into(),
            }));
        }
    }
    let taken = write(
        db,
        "UPDATE agent_sessions SET iteration_count = iteration_count + 1, updated_at = ? \
         WHERE id = ? AND iteration_count < max_iterations",
        vec![now.into(), exec.session_id.into()],
    )
    .await?;
    if taken == 0 {
        let session = session_of(db, exec.session_id).await?;
        return Err(StepError::Fail(cap_reason(session.max_iterations)));
    }

    let mut written = Vec::new();
    let entry = |kind: &str, text: String| ThinkingStep {
        phase_index: phase,
        step_index: step,
        kind: kind.to_owned(),
        text,
        at: now,
    };
    if let Some(text) = instruction {
        written.push(entry("instruction", text.to_owned()));
    }
    written.extend(out.thoughts.into_iter().map(|t| entry("thought", t)));
    let mut log = match exec.thinking_steps.clone() {
        Json::Array(items) => items,
        _ => Vec::new(),
    };
    let written: Vec<Json> = written
        .iter()
        .map(|s| serde_json::to_value(s).map_err(Error::internal))
        .collect::<Result<_, _>>()?;
    log.extend(written.iter().cloned());
    let mut change = exec.clone().into_active_model();
    change.iterations = Set(exec.iterations + 1);
    change.thinking_steps = Set(Json::Array(log));
    let exec = change.update(db).await.map_err(Error::from)?;
    for payload in written {
        events::emit(db, exec.id, exec.user_id, EventKind::Step, payload, now).await?;
    }

    let mut tool_error = None;
    if let Some(call) = out.tool_call {
        let name: String = call.name.chars().take(100).collect();
        let row = tool_execution::ActiveModel {
            id: Set(new_id()),
            execution_id: Set(exec.id),
            user_id: Set(exec.user_id),
            phase_index: Set(phase),
            step_index: Set(step),
            tool_name: Set(name.clone()),
            parameters: Set(Some(call.params)),
            result: Set(Some(call.result)),
            success: Set(call.error.is_none()),
            duration_ms: Set(Some(call.duration_ms)),
            error: Set(call.error.clone()),
            executed_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(Error::from)?;
        let payload = json!({
            "toolExecutionId": row.id,
            "toolName": row.tool_name,
            "success": row.success,
        });
        events::emit(db, exec.id, exec.user_id, EventKind::ToolCall, payload, now).await?;
        tool_error = call.error.map(|e| format!("tool {name} failed: {e}"));
    }
    if let Some(tokens) = &out.tokens {
        record_tokens(db, agents, &exec, tokens).await?;
    }

    // The step happened; a cancel that arrived while it was played wins now,
    // a pause waits for the next step.
    let control = control_of(db, exec.id).await?;
    let state = ControlState::parse(&control.control_state)?;
    if state == ControlState::Cancelled {
        let reason = control
            .state_reason
            .unwrap_or_else(|| controls::CANCELLED_BY_OWNER.to_owned());
        cancel_run(db, agents, &exec, &reason).await?;
        return Ok(Flow::Stop);
    }
    let failure = match &out.outcome {
        StepOutcome::Fail(reason) => Some(reason.clone()),
        _ => tool_error,
    };
    if let Some(reason) = failure {
        fail_run(db, agents, &exec, &reason, CheckpointReason::Error, None).await?;
        return Ok(Flow::Stop);
    }
    match out.outcome {
        StepOutcome::Fail(_) => Ok(Flow::Stop),
        StepOutcome::Continue => Ok(advance(db, agents, &exec, plan).await?),
        StepOutcome::Finish(result) => {
            complete_run(db, agents, &exec, Some(result)).await?;
            Ok(Flow::Stop)
        }
        StepOutcome::AwaitApproval(needed) => {
            let approval = approvals::request(db, agents, &exec, phase, step, needed)
                .await
                .map_err(refusal("the approval could not be requested"))?;
            if approval.status == ApprovalStatus::Approved.as_str() {
                return Ok(advance(db, agents, &exec, plan).await?);
            }
            if state == ControlState::Running {
                wait_for_approval(db, agents, &exec, approval.id).await?;
            } else {
                // Paused meanwhile: resuming finds the pending approval.
                release_claim(db, exec.id).await?;
                follow_session(db, agents, exec.session_id, SessionStatus::Paused, None).await?;
            }
            Ok(Flow::Stop)
        }
    }
}

/// Turns a refusal into the run's failure reason; database failures stay errors.
fn refusal(context: &'static str) -> impl Fn(Error) -> StepError {
    move |err| match err {
        Error::Internal(_) => StepError::Other(err),
        Error::BadInput { field, message } => {
            StepError::Fail(format!("{context}: {field}: {message}"))
        }
        other => StepError::Fail(format!("{context}: {other}")),
    }
}

/// Writes a step's token usage to billing's cost tables, for the run's owner.
async fn record_tokens(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    tokens: &StepTokens,
) -> Result<(), StepError> {
    let context = "token usage could not be recorded";
    let provider = match tokens.provider.as_str() {
        "anthropic" => Provider::Anthropic,
        "google" => Provider::Google,
        other => {
            return Err(StepError::Fail(format!(
                "{context}: unknown provider {other:?}"
            )));
        }
    };
    let usage = TokenUsage::parse(
        provider,
        tokens.model.clone(),
        tokens.input_tokens,
        tokens.output_tokens,
        0,
        0,
        Some(exec.id),
        None,
        Some("agent_step".into()),
        None,
        None,
    )
    .map_err(refusal(context))?;
    agents
        .billing
        .record_token_usage(db, &owner_actor(exec.user_id), usage)
        .await
        .map_err(|err| match err {
            Error::Internal(_) => StepError::Other(err),
            other => StepError::Fail(format!("{context} for {}: {other}", tokens.model)),
        })?;
    Ok(())
}

/// Moves past the step at the run's position: to the next step (writing a
/// `phase_complete` checkpoint when a phase ended), or to completion.
async fn advance(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    plan: &Plan,
) -> Result<Flow, Error> {
    let (next, phase_ended) = plan.next(exec.current_phase_index, exec.step_index);
    let Some((phase, step)) = next else {
        complete_run(db, agents, exec, None).await?;
        return Ok(Flow::Stop);
    };
    let mut change = exec.clone().into_active_model();
    change.current_phase_index = Set(phase);
    change.step_index = Set(step);
    change.updated_at = Set(agents.clock.now());
    let exec = change.update(db).await?;
    if phase_ended {
        follow_session(
            db,
            agents,
            exec.session_id,
            SessionStatus::Executing,
            phase_name(plan, phase),
        )
        .await?;
        checkpoints::create(db, agents, &exec, CheckpointReason::PhaseComplete, None).await?;
    }
    Ok(Flow::Next)
}

/// Holds the run until approval `approval_id` is answered: control
/// `running -> awaiting_approval`, claim released.
async fn wait_for_approval(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    approval_id: Uuid,
) -> Result<(), Error> {
    controls::move_control(
        db,
        agents,
        exec,
        ControlState::Running,
        ControlState::AwaitingApproval,
        Some(&format!("waiting for approval {approval_id}")),
    )
    .await?;
    release_claim(db, exec.id).await?;
    follow_session(db, agents, exec.session_id, SessionStatus::Paused, None).await
}

/// The reason a run stops at its session's iteration cap.
pub fn cap_reason(max_iterations: i32) -> String {
    format!("iteration cap reached: the session allows {max_iterations} iterations")
}

/// The identity the worker acts with for a run's owner: the owner's user id,
/// role `user`, and a nil session id (no request is behind it). Billing reads
/// only the user id; nothing authorises on this actor beyond that.
pub fn owner_actor(user_id: Uuid) -> Actor {
    Actor {
        user_id,
        role: Role::User,
        credential: Credential::Session {
            session_id: Uuid::nil(),
        },
    }
}

/// The one way an execution's status changes: checked by
/// [`ExecutionStatus::transition`], written only if the row still has the
/// status `exec` was read with, and logged as a `status_changed` event.
///
/// # Errors
/// `INVALID_TRANSITION` for an illegal move (nothing is written);
/// `CONFLICT` when the status changed since `exec` was read.
pub async fn move_status(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    to: ExecutionStatus,
    reason: Option<&str>,
) -> Result<(), Error> {
    let from = ExecutionStatus::parse(&exec.status)?;
    from.transition(to)?;
    let now = agents.clock.now();
    let moved = write(
        db,
        "UPDATE agent_executions SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
        vec![
            to.as_str().into(),
            now.into(),
            exec.id.into(),
            from.as_str().into(),
        ],
    )
    .await?;
    if moved == 0 {
        return Err(Error::Conflict {
            field: None,
            message: "the execution changed meanwhile; try again".into(),
        });
    }
    events::emit(
        db,
        exec.id,
        exec.user_id,
        EventKind::StatusChanged,
        json!({ "from": from.as_str(), "to": to.as_str(), "reason": reason }),
        now,
    )
    .await?;
    Ok(())
}

/// Writes the end of a run: status, its fields, the claim cleared.
async fn end_run(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    to: ExecutionStatus,
    result: Option<Json>,
    error: Option<&str>,
) -> Result<agent_execution::Model, Error> {
    let now = agents.clock.now();
    if to != ExecutionStatus::Completed {
        // Nobody should be asked to approve a step of a run that has ended.
        crate::approvals::withdraw_pending(db, exec.id, now).await?;
    }
    move_status(db, agents, exec, to, error).await?;
    let mut change = exec.clone().into_active_model();
    change.status = Set(to.as_str().to_owned());
    change.result = Set(result);
    change.error = Set(error.map(str::to_owned));
    change.completed_at = Set(Some(now));
    change.duration_ms = Set(exec.started_at.map(|t| (now - t).num_milliseconds()));
    change.claimed_by = Set(None);
    change.claim_expires_at = Set(None);
    change.updated_at = Set(now);
    Ok(change.update(db).await?)
}

/// Completes a run with `result` and commits its reservation.
async fn complete_run(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    result: Option<Json>,
) -> Result<(), Error> {
    let exec = end_run(db, agents, exec, ExecutionStatus::Completed, result, None).await?;
    settle(db, agents, &exec, Settle::Commit).await?;
    follow_session(db, agents, exec.session_id, SessionStatus::Complete, None).await
}

/// Fails a run with `reason`: a checkpoint (`checkpoint`, with `error_info`
/// or `{error, phaseIndex, stepIndex}`), status `failed`, reservation released.
///
/// # Errors
/// `INVALID_TRANSITION` for a finished run, `CONFLICT` when it changed
/// meanwhile, internal on database failure.
pub async fn fail_run(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    reason: &str,
    checkpoint: CheckpointReason,
    error_info: Option<Json>,
) -> Result<(), Error> {
    let error_info = error_info.unwrap_or_else(|| {
        json!({
            "error": reason,
            "phaseIndex": exec.current_phase_index,
            "stepIndex": exec.step_index,
        })
    });
    checkpoints::create(db, agents, exec, checkpoint, Some(error_info)).await?;
    let exec = end_run(
        db,
        agents,
        exec,
        ExecutionStatus::Failed,
        None,
        Some(reason),
    )
    .await?;
    settle(db, agents, &exec, Settle::Release).await?;
    follow_session(db, agents, exec.session_id, SessionStatus::Error, None).await
}

/// Cancels a run with `reason` and releases its reservation.
///
/// # Errors
/// As [`fail_run`].
pub async fn cancel_run(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    reason: &str,
) -> Result<(), Error> {
    let exec = end_run(
        db,
        agents,
        exec,
        ExecutionStatus::Cancelled,
        None,
        Some(reason),
    )
    .await?;
    settle(db, agents, &exec, Settle::Release).await?;
    follow_session(db, agents, exec.session_id, SessionStatus::Idle, None).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Commit,
    Release,
}

/// Settles the run's reservation. One the billing cleanup already released
/// (the run outlived the reservation's lifetime) is logged and left alone:
/// the run's own outcome is written regardless.
async fn settle(
    db: &impl ConnectionTrait,
    agents: &Agents,
    exec: &agent_execution::Model,
    how: Settle,
) -> Result<(), Error> {
    let Some(reservation) = exec.reservation_id else {
        return Ok(());
    };
    let actor = owner_actor(exec.user_id);
    let settled = match how {
        Settle::Commit => {
            agents
                .billing
                .commit_execution(db, &actor, reservation)
                .await
        }
        Settle::Release => {
            agents
                .billing
                .release_execution(db, &actor, reservation)
                .await
        }
    };
    match settled {
        Ok(_) => Ok(()),
        Err(Error::InvalidTransition(message)) => {
            tracing::warn!(execution_id = %exec.id, %reservation, %message, "reservation settled elsewhere");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Keeps the session following its run: status, and the phase when given.
///
/// # Errors
/// Internal on database failure.
pub async fn follow_session(
    db: &impl ConnectionTrait,
    agents: &Agents,
    session_id: Uuid,
    status: SessionStatus,
    phase: Option<String>,
) -> Result<(), Error> {
    let now = agents.clock.now();
    match phase {
        Some(phase) => write(
            db,
            "UPDATE agent_sessions SET status = ?, current_phase = ?, updated_at = ? WHERE id = ?",
            vec![
                status.as_str().into(),
                phase.into(),
                now.into(),
                session_id.into(),
            ],
        )
        .await?,
        None => {
            write(
                db,
                "UPDATE agent_sessions SET status = ?, updated_at = ? WHERE id = ?",
                vec![status.as_str().into(), now.into(), session_id.into()],
            )
            .await?
        }
    };
    Ok(())
}

/// Lets any worker claim the run again (it is held or finished).
async fn release_claim(db: &impl ConnectionTrait, id: Uuid) -> Result<(), Error> {
    write(
        db,
        "UPDATE agent_executions SET claimed_by = NULL, claim_expires_at = NULL WHERE id = ?",
        vec![id.into()],
    )
    .await?;
    Ok(())
}

fn phase_name(plan: &Plan, phase: i32) -> Option<String> {
    let phase = plan.phases.get(usize::try_from(phase).ok()?)?;
    Some(phase.name.chars().take(MAX_PHASE_NAME).collect())
}

async fn control_of(
    db: &impl ConnectionTrait,
    execution_id: Uuid,
) -> Result<execution_control::Model, Error> {
    use sea_orm::{ColumnTrait, QueryFilter};
    execution_control::Entity::find()
        .filter(execution_control::Column::ExecutionId.eq(execution_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("an execution without its control row".into()))
}

async fn session_of(
    db: &impl ConnectionTrait,
    session_id: Uuid,
) -> Result<agent_session::Model, Error> {
    agent_session::Entity::find_by_id(session_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("an execution without its session".into()))
}

/// Runs a write and answers how many rows it changed.
pub(crate) async fn write(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, Error> {
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(raw(backend, sql, values))
        .await?
        .rows_affected())
}
