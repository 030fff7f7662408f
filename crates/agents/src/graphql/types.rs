//! Output types of the control plane. Each wraps its entity model, so the
//! database can change without breaking clients; edges to other objects are
//! resolved through DataLoaders.

use super::loaders::{
    ApprovalsOf, CheckpointsOf, ControlOf, ExecutionsOf, SessionOf, ToolExecutionsOf, connection,
    load,
};
use crate::entity::{
    action_approval, agent_execution, agent_session, execution_checkpoint, execution_control,
    tool_execution,
};
use crate::reads::{EdgeKey, EdgeWindow, OwnedKey};
use crate::status;
use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, Json, Object, Result};
use chrono::{DateTime, Utc};
use kernel::error::ResultExt;
use serde_json::Value;

macro_rules! gql_enum {
    ($(#[$meta:meta])* $name:ident from $src:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl From<status::$src> for $name {
            fn from(s: status::$src) -> Self {
                match s {
                    $(status::$src::$variant => Self::$variant),+
                }
            }
        }

        impl From<$name> for status::$src {
            fn from(s: $name) -> Self {
                match s {
                    $($name::$variant => Self::$variant),+
                }
            }
        }

        impl $name {
            /// Reads the stored form; the database CHECK constraint admits only known values.
            pub fn stored(text: &str) -> Self {
                status::$src::parse(text).map(Self::from).unwrap_or(Self::fallback())
            }
        }
    };
}

gql_enum! {
    /// Where an execution is in its life.
    ExecutionStatus from ExecutionStatus {
        /// Waiting for a worker.
        Pending,
        /// Getting a plan.
        Planning,
        /// Playing steps.
        Executing,
        /// Finished with a result.
        Completed,
        /// Stopped with an error.
        Failed,
        /// Stopped by its owner.
        Cancelled,
    }
}

gql_enum! {
    /// What the owner asked of a run.
    ControlState from ControlState {
        /// Steps are played.
        Running,
        /// Held until resumed.
        Paused,
        /// Stopped for good.
        Cancelled,
        /// Held until an approval is answered.
        AwaitingApproval,
    }
}

gql_enum! {
    /// The answer to an approval.
    ApprovalStatus from ApprovalStatus {
        /// Waiting.
        Pending,
        /// Approved.
        Approved,
        /// Rejected.
        Rejected,
        /// Expired unanswered.
        Expired,
    }
}

gql_enum! {
    /// How dangerous an action is.
    RiskLevel from RiskLevel {
        /// Approved automatically.
        Low,
        /// Needs a human.
        Medium,
        /// Needs a human: deletes, purchases, sends, shell commands.
        High,
        /// Needs a human: destructive patterns.
        Critical,
    }
}

gql_enum! {
    /// What happens to an approval nobody answers in time.
    TimeoutAction from TimeoutAction {
        /// It expires and the run fails.
        Reject,
        /// It is approved and the run goes on.
        Approve,
    }
}

gql_enum! {
    /// Why a checkpoint was written.
    CheckpointReason from CheckpointReason {
        /// A step failed.
        Error,
        /// The owner asked for one.
        Manual,
        /// A phase finished.
        PhaseComplete,
        /// A pause outlived its timeout.
        PauseTimeout,
    }
}

gql_enum! {
    /// A session's state, following its latest execution.
    SessionStatus from SessionStatus {
        /// No run in progress.
        Idle,
        /// A run is planning.
        Planning,
        /// A run is executing.
        Executing,
        /// The latest run completed.
        Complete,
        /// The latest run failed.
        Error,
        /// The latest run is held.
        Paused,
    }
}

impl ExecutionStatus {
    fn fallback() -> Self {
        Self::Failed
    }
}
impl ControlState {
    fn fallback() -> Self {
        Self::Paused
    }
}
impl ApprovalStatus {
    fn fallback() -> Self {
        Self::Pending
    }
}
impl RiskLevel {
    fn fallback() -> Self {
        Self::Critical
    }
}
impl TimeoutAction {
    fn fallback() -> Self {
        Self::Reject
    }
}
impl CheckpointReason {
    fn fallback() -> Self {
        Self::Manual
    }
}
impl SessionStatus {
    fn fallback() -> Self {
        Self::Idle
    }
}

/// An agent session: long-lived context and an iteration budget shared by its executions.
pub struct AgentSession(pub agent_session::Model);

/// An agent session: long-lived context and an iteration budget shared by its executions.
#[Object]
impl AgentSession {
    /// The session id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The name its owner gave it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Its state, following its latest execution.
    async fn status(&self) -> SessionStatus {
        SessionStatus::stored(&self.0.status)
    }
    /// Context the owner keeps with the session.
    async fn context(&self) -> Option<Json<Value>> {
        self.0.context.clone().map(Json)
    }
    /// The phase its latest run is in.
    async fn current_phase(&self) -> Option<&str> {
        self.0.current_phase.as_deref()
    }
    /// Steps taken by all its executions.
    async fn iteration_count(&self) -> i32 {
        self.0.iteration_count
    }
    /// The most steps its executions may take together.
    async fn max_iterations(&self) -> i32 {
        self.0.max_iterations
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Its executions, newest first: `first` 0 to 100 (default 20), `after` a cursor.
    #[graphql(complexity = "super::loaders::edge_complexity(first, child_complexity)")]
    async fn executions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AgentExecution>> {
        let key = edge(self.0.id, self.0.user_id, first, after)?;
        connection(ctx, ExecutionsOf(key), AgentExecution).await
    }
}

fn edge(
    parent: uuid::Uuid,
    owner: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<EdgeKey> {
    let window = EdgeWindow::parse(first, after).gql()?;
    Ok(EdgeKey {
        parent,
        owner,
        window,
    })
}

/// One run of a task.
pub struct AgentExecution(pub agent_execution::Model);

/// One run of a task.
#[Object]
impl AgentExecution {
    /// The execution id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The session it belongs to.
    async fn session_id(&self) -> ID {
        ID(self.0.session_id.to_string())
    }
    /// The task as its owner wrote it.
    async fn task_description(&self) -> &str {
        &self.0.task_description
    }
    /// Where it is in its life.
    async fn status(&self) -> ExecutionStatus {
        ExecutionStatus::stored(&self.0.status)
    }
    /// Which runner plays it (`local`, `http`).
    async fn runner(&self) -> &str {
        &self.0.runner
    }
    /// The plan being played.
    async fn plan(&self) -> Option<Json<Value>> {
        self.0.plan.clone().map(Json)
    }
    /// The phase of the next step.
    async fn current_phase_index(&self) -> i32 {
        self.0.current_phase_index
    }
    /// The next step within the phase.
    async fn step_index(&self) -> i32 {
        self.0.step_index
    }
    /// The reasoning log, oldest first.
    async fn thinking_steps(&self) -> Json<Value> {
        Json(self.0.thinking_steps.clone())
    }
    /// The result, once completed.
    async fn result(&self) -> Option<Json<Value>> {
        self.0.result.clone().map(Json)
    }
    /// Why it failed or was cancelled.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Steps taken.
    async fn iterations(&self) -> i32 {
        self.0.iterations
    }
    /// Milliseconds from start to end, once finished.
    async fn duration_ms(&self) -> Option<i64> {
        self.0.duration_ms
    }
    /// 1 for a fresh run, more for runs resumed from a checkpoint.
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }
    /// The checkpoint this attempt resumed from.
    async fn resumed_from_checkpoint_id(&self) -> Option<ID> {
        self.0
            .resumed_from_checkpoint_id
            .map(|id| ID(id.to_string()))
    }
    /// When a worker started it.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// When it finished.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The session it belongs to.
    async fn session(&self, ctx: &Context<'_>) -> Result<AgentSession> {
        let key = SessionOf(OwnedKey {
            id: self.0.session_id,
            owner: self.0.user_id,
        });
        let found = load(ctx, key).await?;
        found
            .map(AgentSession)
            .ok_or(kernel::Error::NotFound("agent session"))
            .gql()
    }
    /// Its tool calls, newest first: `first` 0 to 100 (default 20), `after` a cursor.
    #[graphql(complexity = "super::loaders::edge_complexity(first, child_complexity)")]
    async fn tool_executions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ToolExecution>> {
        let key = edge(self.0.id, self.0.user_id, first, after)?;
        connection(ctx, ToolExecutionsOf(key), ToolExecution).await
    }
    /// Its control state: what its owner asked of it.
    async fn control(&self, ctx: &Context<'_>) -> Result<Option<ExecutionControl>> {
        let key = ControlOf(OwnedKey {
            id: self.0.id,
            owner: self.0.user_id,
        });
        let found = load(ctx, key).await?;
        Ok(found.map(ExecutionControl))
    }
    /// The approvals it asked for, newest first: `first` 0 to 100 (default 20), `after` a cursor.
    #[graphql(complexity = "super::loaders::edge_complexity(first, child_complexity)")]
    async fn approvals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ActionApproval>> {
        let key = edge(self.0.id, self.0.user_id, first, after)?;
        connection(ctx, ApprovalsOf(key), ActionApproval).await
    }
    /// Its checkpoints, newest first: `first` 0 to 100 (default 20), `after` a cursor.
    #[graphql(complexity = "super::loaders::edge_complexity(first, child_complexity)")]
    async fn checkpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ExecutionCheckpoint>> {
        let key = edge(self.0.id, self.0.user_id, first, after)?;
        connection(ctx, CheckpointsOf(key), ExecutionCheckpoint).await
    }
}

/// One tool call a run made.
pub struct ToolExecution(pub tool_execution::Model);

/// One tool call a run made.
#[Object]
impl ToolExecution {
    /// The tool call id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The execution that made it.
    async fn execution_id(&self) -> ID {
        ID(self.0.execution_id.to_string())
    }
    /// The phase of the step.
    async fn phase_index(&self) -> i32 {
        self.0.phase_index
    }
    /// The step within the phase.
    async fn step_index(&self) -> i32 {
        self.0.step_index
    }
    /// The tool called.
    async fn tool_name(&self) -> &str {
        &self.0.tool_name
    }
    /// Its parameters.
    async fn parameters(&self) -> Option<Json<Value>> {
        self.0.parameters.clone().map(Json)
    }
    /// Its output.
    async fn result(&self) -> Option<Json<Value>> {
        self.0.result.clone().map(Json)
    }
    /// Whether it succeeded.
    async fn success(&self) -> bool {
        self.0.success
    }
    /// How long it took.
    async fn duration_ms(&self) -> Option<i32> {
        self.0.duration_ms
    }
    /// The error, when it failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// When it ran.
    async fn executed_at(&self) -> DateTime<Utc> {
        self.0.executed_at
    }
}

/// The control state of a run: what its owner asked of it.
pub struct ExecutionControl(pub execution_control::Model);

/// The control state of a run: what its owner asked of it.
#[Object]
impl ExecutionControl {
    /// The execution controlled.
    async fn execution_id(&self) -> ID {
        ID(self.0.execution_id.to_string())
    }
    /// The state.
    async fn state(&self) -> ControlState {
        ControlState::stored(&self.0.control_state)
    }
    /// Why it is in this state.
    async fn reason(&self) -> Option<&str> {
        self.0.state_reason.as_deref()
    }
    /// An injected instruction the worker has not consumed yet.
    async fn pending_instruction(&self) -> Option<&str> {
        self.0.injected_instruction.as_deref()
    }
    /// When the state last changed.
    async fn last_state_change(&self) -> DateTime<Utc> {
        self.0.last_state_change
    }
}

/// A risky action waiting for (or given) a human's answer.
pub struct ActionApproval(pub action_approval::Model);

/// A risky action waiting for (or given) a human's answer.
#[Object]
impl ActionApproval {
    /// The approval id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The execution that asked.
    async fn execution_id(&self) -> ID {
        ID(self.0.execution_id.to_string())
    }
    /// The kind of action.
    async fn action_type(&self) -> &str {
        &self.0.action_type
    }
    /// What the action does.
    async fn action_description(&self) -> &str {
        &self.0.action_description
    }
    /// Its parameters.
    async fn action_params(&self) -> Json<Value> {
        Json(self.0.action_params.clone())
    }
    /// How dangerous it is.
    async fn risk_level(&self) -> RiskLevel {
        RiskLevel::stored(&self.0.risk_level)
    }
    /// The scoring rules that matched.
    async fn risk_factors(&self) -> Vec<String> {
        self.0
            .risk_factors
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// A screenshot of the page the action would act on.
    async fn screenshot_url(&self) -> Option<&str> {
        self.0.screenshot_url.as_deref()
    }
    /// The answer.
    async fn status(&self) -> ApprovalStatus {
        ApprovalStatus::stored(&self.0.status)
    }
    /// When it was approved.
    async fn approved_at(&self) -> Option<DateTime<Utc>> {
        self.0.approved_at
    }
    /// When it was rejected.
    async fn rejected_at(&self) -> Option<DateTime<Utc>> {
        self.0.rejected_at
    }
    /// Why it was rejected.
    async fn rejection_reason(&self) -> Option<&str> {
        self.0.rejection_reason.as_deref()
    }
    /// When it stops waiting.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// What happens at expiry.
    async fn timeout_action(&self) -> TimeoutAction {
        TimeoutAction::stored(&self.0.timeout_action)
    }
    /// When it was asked.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A saved position a run can be resumed from.
pub struct ExecutionCheckpoint(pub execution_checkpoint::Model);

/// A saved position a run can be resumed from.
#[Object]
impl ExecutionCheckpoint {
    /// The checkpoint id, for `resumeFromCheckpoint`.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The execution it saved.
    async fn execution_id(&self) -> ID {
        ID(self.0.execution_id.to_string())
    }
    /// The phase to resume at.
    async fn phase_index(&self) -> i32 {
        self.0.phase_index
    }
    /// That phase's name.
    async fn phase_name(&self) -> Option<&str> {
        self.0.phase_name.as_deref()
    }
    /// The step to resume at.
    async fn step_index(&self) -> i32 {
        self.0.step_index
    }
    /// Steps done in the phase.
    async fn completed_steps(&self) -> Json<Value> {
        Json(self.0.completed_steps.clone())
    }
    /// Phases done.
    async fn completed_phases(&self) -> Json<Value> {
        Json(self.0.completed_phases.clone())
    }
    /// Results so far.
    async fn partial_results(&self) -> Json<Value> {
        Json(self.0.partial_results.clone())
    }
    /// What went wrong, for error and pause-timeout checkpoints.
    async fn error_info(&self) -> Option<Json<Value>> {
        self.0.error_info.clone().map(Json)
    }
    /// Why it was written.
    async fn reason(&self) -> CheckpointReason {
        CheckpointReason::stored(&self.0.checkpoint_reason)
    }
    /// Whether it can still be resumed from.
    async fn can_resume(&self) -> bool {
        self.0.can_resume
    }
    /// How many attempts were started from it.
    async fn resume_count(&self) -> i32 {
        self.0.resume_count
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it stops being resumable.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
}
