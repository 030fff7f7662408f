//! Fixtures of the engine and controls tests: plans, starting runs, the
//! worker, reading back what a run wrote, and runners that act mid-step.
#![allow(dead_code)]

use crate::common::Fixture;
use agents::entity::{
    agent_event, agent_execution, agent_session, execution_checkpoint, execution_control,
    tool_execution,
};
use agents::executions::{self, StartExecution};
use agents::plan::{Phase, Plan, PlanStep, StepTokens, ThinkingStep};
use agents::runner::{AgentRunner, LocalRunner, RunnerError, StepContext, StepOutput};
use agents::{AgentWorker, Agents, controls};
use chrono::Duration;
use kernel::actor::Actor;
use kernel::clock::ManualClock;
use kernel::db::raw;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub fn think(text: &str) -> PlanStep {
    PlanStep::Think {
        text: text.into(),
        tokens: None,
    }
}

pub fn think_with_tokens(
    text: &str,
    provider: &str,
    model: &str,
    input: i64,
    output: i64,
) -> PlanStep {
    PlanStep::Think {
        text: text.into(),
        tokens: Some(StepTokens {
            provider: provider.into(),
            model: model.into(),
            input_tokens: input,
            output_tokens: output,
        }),
    }
}

pub fn tool(name: &str, duration_ms: i32) -> PlanStep {
    PlanStep::Tool {
        name: name.into(),
        params: json!({ "q": name }),
        result: json!({ "ok": name }),
        error: None,
        duration_ms,
    }
}

pub fn failing_tool(name: &str, error: &str) -> PlanStep {
    PlanStep::Tool {
        name: name.into(),
        params: json!({}),
        result: Value::Null,
        error: Some(error.into()),
        duration_ms: 3,
    }
}

pub fn approval(action_type: &str, description: &str) -> PlanStep {
    PlanStep::Approval {
        action_type: action_type.into(),
        description: description.into(),
        params: json!({}),
        timeout_action: None,
    }
}

pub fn finish(result: Value) -> PlanStep {
    PlanStep::Finish { result }
}

/// A plan of `(phase name, steps)`.
pub fn plan(phases: Vec<(&str, Vec<PlanStep>)>) -> Plan {
    Plan {
        phases: phases
            .into_iter()
            .map(|(name, steps)| Phase {
                name: name.into(),
                steps,
            })
            .collect(),
    }
}

/// `n` think steps in one phase, no finish.
pub fn thoughts(n: usize) -> Plan {
    plan(vec![(
        "thinking",
        (0..n).map(|i| think(&format!("thought {i}"))).collect(),
    )])
}

/// Starts a run of `plan` in `session` for `actor`.
pub async fn start(
    f: &Fixture,
    actor: &Actor,
    session: &agent_session::Model,
    plan: Plan,
) -> agent_execution::Model {
    start_with(f, &f.agents, actor, session, Some(plan)).await
}

pub async fn start_with(
    f: &Fixture,
    agents: &Agents,
    actor: &Actor,
    session: &agent_session::Model,
    plan: Option<Plan>,
) -> agent_execution::Model {
    start_task(f, agents, actor, session, "Research the market", plan).await
}

pub async fn start_task(
    f: &Fixture,
    agents: &Agents,
    actor: &Actor,
    session: &agent_session::Model,
    task: &str,
    plan: Option<Plan>,
) -> agent_execution::Model {
    let req = StartExecution::parse(session.id, task.into(), plan).unwrap();
    executions::start(&f.t.db, agents, actor, req)
        .await
        .unwrap()
}

pub fn worker(f: &Fixture) -> AgentWorker {
    AgentWorker::new(f.t.db.clone(), f.agents.clone(), "worker-a")
}

pub fn worker_with(f: &Fixture, agents: Agents, id: &str) -> AgentWorker {
    AgentWorker::new(f.t.db.clone(), agents, id)
}

/// The fixture's agents with another runner.
pub fn with_runner(f: &Fixture, runner: impl AgentRunner) -> Agents {
    Agents {
        runner: Arc::new(runner),
        ..f.agents.clone()
    }
}

/// The fixture's agents with a shared runner the test keeps a handle on.
pub fn with_shared(f: &Fixture, runner: Arc<ActingRunner>) -> Agents {
    Agents {
        runner,
        ..f.agents.clone()
    }
}

pub async fn tick(worker: &AgentWorker) {
    kernel::jobs::run_once(worker).await.unwrap();
}

pub async fn execution(f: &Fixture, id: Uuid) -> agent_execution::Model {
    agent_execution::Entity::find_by_id(id)
        .one(&f.t.db)
        .await
        .unwrap()
        .unwrap()
}

pub async fn session_row(f: &Fixture, id: Uuid) -> agent_session::Model {
    agent_session::Entity::find_by_id(id)
        .one(&f.t.db)
        .await
        .unwrap()
        .unwrap()
}

pub async fn control(f: &Fixture, id: Uuid) -> execution_control::Model {
    execution_control::Entity::find()
        .filter(execution_control::Column::ExecutionId.eq(id))
        .one(&f.t.db)
        .await
        .unwrap()
        .unwrap()
}

pub async fn tool_rows(f: &Fixture, id: Uuid) -> Vec<tool_execution::Model> {
    tool_execution::Entity::find()
        .filter(tool_execution::Column::ExecutionId.eq(id))
        .order_by_asc(tool_execution::Column::PhaseIndex)
        .order_by_asc(tool_execution::Column::StepIndex)
        .all(&f.t.db)
        .await
        .unwrap()
}

pub async fn events(f: &Fixture, id: Uuid) -> Vec<agent_event::Model> {
    agent_event::Entity::find()
        .filter(agent_event::Column::ExecutionId.eq(id))
        .order_by_asc(agent_event::Column::Seq)
        .all(&f.t.db)
        .await
        .unwrap()
}

pub async fn checkpoints(f: &Fixture, id: Uuid) -> Vec<execution_checkpoint::Model> {
    execution_checkpoint::Entity::find()
        .filter(execution_checkpoint::Column::ExecutionId.eq(id))
        .order_by_asc(execution_checkpoint::Column::CreatedAt)
        .order_by_asc(execution_checkpoint::Column::Id)
        .all(&f.t.db)
        .await
        .unwrap()
}

pub fn thinking(exec: &agent_execution::Model) -> Vec<ThinkingStep> {
    serde_json::from_value(exec.thinking_steps.clone()).unwrap()
}

/// `(kind, payload)` of each event, in order.
pub async fn event_kinds(f: &Fixture, id: Uuid) -> Vec<(String, Value)> {
    events(f, id)
        .await
        .into_iter()
        .map(|e| (e.kind, e.payload))
        .collect()
}

/// The status moves of a run, as `from->to`.
pub async fn status_moves(f: &Fixture, id: Uuid) -> Vec<String> {
    events(f, id)
        .await
        .into_iter()
        .filter(|e| e.kind == "status_changed")
        .map(|e| {
            format!(
                "{}->{}",
                e.payload["from"].as_str().unwrap_or("null"),
                e.payload["to"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

async fn int(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(raw(backend, sql, values))
        .await
        .unwrap()
        .expect("a row");
    row.try_get::<i64>("", "n")
        .or_else(|_| row.try_get::<i32>("", "n").map(i64::from))
        .unwrap()
}

/// Executions counted in the owner's current period.
pub async fn executions_used(f: &Fixture, user_id: Uuid) -> i64 {
    int(
        &f.t.db,
        "SELECT executions_used_this_period AS n FROM user_subscriptions WHERE user_id = ?",
        vec![user_id.into()],
    )
    .await
}

/// The reservation's status: `reserved`, `committed` or `released`.
pub async fn reservation_status(f: &Fixture, exec: &agent_execution::Model) -> String {
    let backend = f.t.db.get_database_backend();
    let row =
        f.t.db
            .query_one_raw(raw(
                backend,
                "SELECT status FROM usage_reservations WHERE id = ?",
                vec![exec.reservation_id.unwrap().into()],
            ))
            .await
            .unwrap()
            .unwrap();
    row.try_get("", "status").unwrap()
}

/// Rows of billing's Claude token table for the execution.
pub async fn token_rows(f: &Fixture, execution_id: Uuid) -> i64 {
    int(
        &f.t.db,
        "SELECT COUNT(*) AS n FROM api_token_usage WHERE execution_id = ?",
        vec![execution_id.into()],
    )
    .await
}

/// Plays the local plan, advancing the manual clock by `per_step` each step.
pub struct TickingRunner {
    pub clock: Arc<ManualClock>,
    pub per_step: Duration,
}

#[async_trait::async_trait]
impl AgentRunner for TickingRunner {
    fn name(&self) -> &'static str {
        "local"
    }
    fn needs_plan(&self) -> bool {
        true
    }
    async fn plan(&self, task: &str, given: Option<&Plan>) -> Result<Plan, RunnerError> {
        LocalRunner.plan(task, given).await
    }
    async fn step(&self, ctx: StepContext<'_>) -> Result<StepOutput, RunnerError> {
        self.clock.advance(self.per_step);
        LocalRunner.step(ctx).await
    }
}

/// What [`ActingRunner`] does while playing the step at its position.
pub enum Act {
    Pause,
    Cancel,
    Inject(&'static str),
}

/// Plays the local plan; while playing step `at` of its run, acts through the
/// control services as the owner would from another request.
pub struct ActingRunner {
    pub db: DatabaseConnection,
    pub agents: Agents,
    pub owner: Actor,
    pub at: (i32, i32),
    pub act: Act,
    pub execution: Mutex<Option<Uuid>>,
    pub instructions_seen: Mutex<Vec<String>>,
}

impl ActingRunner {
    pub fn new(f: &Fixture, owner: &Actor, at: (i32, i32), act: Act) -> Self {
        Self {
            db: f.t.db.clone(),
            agents: f.agents.clone(),
            owner: owner.clone(),
            at,
            act,
            execution: Mutex::new(None),
            instructions_seen: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl AgentRunner for ActingRunner {
    fn name(&self) -> &'static str {
        "local"
    }
    fn needs_plan(&self) -> bool {
        true
    }
    async fn plan(&self, task: &str, given: Option<&Plan>) -> Result<Plan, RunnerError> {
        LocalRunner.plan(task, given).await
    }
    async fn step(&self, ctx: StepContext<'_>) -> Result<StepOutput, RunnerError> {
        if let Some(text) = ctx.instruction {
            self.instructions_seen.lock().unwrap().push(text.to_owned());
        }
        let id = *self.execution.lock().unwrap();
        if (ctx.phase_index, ctx.step_index) == self.at
            && let Some(id) = id
        {
            let (db, a, owner) = (&self.db, &self.agents, &self.owner);
            match self.act {
                Act::Pause => {
                    controls::pause(db, a, owner, id, None).await.unwrap();
                }
                Act::Cancel => {
                    controls::cancel(db, a, owner, id, None).await.unwrap();
                }
                Act::Inject(text) => {
                    let i = controls::Instruction::parse(text.into()).unwrap();
                    controls::inject(db, a, owner, id, i).await.unwrap();
                }
            }
        }
        LocalRunner.step(ctx).await
    }
}

/// Plays the local plan, yielding to the scheduler for a few milliseconds
/// each step, so concurrent workers really interleave; counts the runner's
/// calls per `task/phase/step`.
#[derive(Default)]
pub struct SlowRunner {
    pub calls: Mutex<std::collections::HashMap<String, usize>>,
}

#[async_trait::async_trait]
impl AgentRunner for SlowRunner {
    fn name(&self) -> &'static str {
        "local"
    }
    fn needs_plan(&self) -> bool {
        true
    }
    async fn plan(&self, task: &str, given: Option<&Plan>) -> Result<Plan, RunnerError> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(format!("{task}/plan"))
            .or_default() += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        LocalRunner.plan(task, given).await
    }
    async fn step(&self, ctx: StepContext<'_>) -> Result<StepOutput, RunnerError> {
        let key = format!("{}/{}/{}", ctx.task, ctx.phase_index, ctx.step_index);
        *self.calls.lock().unwrap().entry(key).or_default() += 1;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        LocalRunner.step(ctx).await
    }
}
