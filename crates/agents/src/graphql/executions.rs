//! Starting executions and controlling them: `startExecution`,
//! `pauseExecution`, `resumeExecution`, `cancelExecution`, `injectInstruction`.

use super::agents;
use super::types::{AgentExecution, ExecutionControl, TimeoutAction};
use crate::controls::{self, ControlReason, Instruction};
use crate::executions::{self, StartExecution};
use crate::plan::{Phase, Plan, PlanStep, StepTokens};
use crate::status;
use async_graphql::{Context, ID, InputObject, Json, Object, OneofObject, Result};
use billing::costs::Provider;
use billing::graphql::costs::AiProvider;
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use serde_json::Value;

/// A task to run.
#[derive(InputObject)]
pub struct StartExecutionInput {
    /// The session to run it in (the caller's).
    pub session_id: ID,
    /// What to do, 1 to 20,000 characters.
    pub task: String,
    /// The plan to play; the local runner needs one, other runners make their own when it is absent.
    pub plan: Option<Vec<PlanPhaseInput>>,
}

/// A named group of steps; a checkpoint is written when it ends.
#[derive(InputObject)]
pub struct PlanPhaseInput {
    /// Its name, shown in progress and checkpoints.
    pub name: String,
    /// Its steps, played in order (1 to 200).
    pub steps: Vec<PlanStepInput>,
}

/// One step of a plan: exactly one of its fields.
#[derive(OneofObject)]
pub enum PlanStepInput {
    /// Reason about the task.
    Think(ThinkStepInput),
    /// Call a tool.
    Tool(ToolStepInput),
    /// Wait for a human to approve an action (low risk is approved at once).
    Approval(ApprovalStepInput),
    /// Fail the run.
    Fail(FailStepInput),
    /// Finish the run with a result.
    Finish(FinishStepInput),
}

/// A thought.
#[derive(InputObject)]
pub struct ThinkStepInput {
    /// The thought.
    pub text: String,
    /// Tokens it cost, recorded in cost tracking when the step is played.
    pub tokens: Option<StepTokensInput>,
}

/// Tokens one step cost.
#[derive(InputObject)]
pub struct StepTokensInput {
    /// Whose model.
    pub provider: AiProvider,
    /// The model, as priced by cost tracking.
    pub model: String,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
}

/// A tool call the local runner plays.
#[derive(InputObject)]
pub struct ToolStepInput {
    /// The tool, 1 to 100 characters.
    pub name: String,
    /// Its parameters; default `{}`.
    pub params: Option<Json<Value>>,
    /// The result the local runner answers; default null.
    pub result: Option<Json<Value>>,
    /// When set, the call fails with this error and the run fails.
    pub error: Option<String>,
    /// Milliseconds the call reports; default 0.
    pub duration_ms: Option<i32>,
}

/// An action that needs approval.
#[derive(InputObject)]
pub struct ApprovalStepInput {
    /// What kind of action (`delete_records`, `send_email`, ...).
    pub action_type: String,
    /// What it does, for the approver.
    pub description: String,
    /// Its parameters (targets, amounts, ...); default `{}`.
    pub params: Option<Json<Value>>,
    /// What happens when nobody answers in time; default `REJECT`.
    pub timeout_action: Option<TimeoutAction>,
}

/// A failure.
#[derive(InputObject)]
pub struct FailStepInput {
    /// Why the run fails.
    pub reason: String,
}

/// The end of the run.
#[derive(InputObject)]
pub struct FinishStepInput {
    /// The result; default null.
    pub result: Option<Json<Value>>,
}

/// An instruction for a run's next step.
#[derive(InputObject)]
pub struct InjectInstructionInput {
    /// The execution (the caller's).
    pub execution_id: ID,
    /// The instruction, 1 to 10,000 characters.
    pub instruction: String,
}

impl From<PlanStepInput> for PlanStep {
    fn from(step: PlanStepInput) -> Self {
        match step {
            PlanStepInput::Think(t) => PlanStep::Think {
                text: t.text,
                tokens: t.tokens.map(|k| StepTokens {
                    provider: Provider::from(k.provider).as_str().to_owned(),
                    model: k.model,
                    input_tokens: k.input_tokens,
                    output_tokens: k.output_tokens,
                }),
            },
            PlanStepInput::Tool(t) => PlanStep::Tool {
                name: t.name,
                params: t.params.map_or_else(|| serde_json::json!({}), |j| j.0),
                result: t.result.map_or(Value::Null, |j| j.0),
                error: t.error,
                duration_ms: t.duration_ms.unwrap_or(0),
            },
            PlanStepInput::Approval(a) => PlanStep::Approval {
                action_type: a.action_type,
                description: a.description,
                params: a.params.map_or_else(|| serde_json::json!({}), |j| j.0),
                timeout_action: a
                    .timeout_action
                    .map(|t| status::TimeoutAction::from(t).as_str().to_owned()),
            },
            PlanStepInput::Fail(f) => PlanStep::Fail { reason: f.reason },
            PlanStepInput::Finish(f) => PlanStep::Finish {
                result: f.result.map_or(Value::Null, |j| j.0),
            },
        }
    }
}

impl From<Vec<PlanPhaseInput>> for Plan {
    fn from(phases: Vec<PlanPhaseInput>) -> Self {
        Plan {
            phases: phases
                .into_iter()
                .map(|p| Phase {
                    name: p.name,
                    steps: p.steps.into_iter().map(PlanStep::from).collect(),
                })
                .collect(),
        }
    }
}

/// Starting and controlling executions.
#[derive(Default)]
pub struct ExecutionMutation;

#[Object]
impl ExecutionMutation {
    /// Reserves an execution through the usage gate (`LIMIT_EXCEEDED` when the
    /// plan allows no more) and queues the run `PENDING` for a worker.
    async fn start_execution(
        &self,
        ctx: &Context<'_>,
        input: StartExecutionInput,
    ) -> Result<AgentExecution> {
        let actor = ctx.writer()?;
        let session_id = parse_id(&input.session_id, "sessionId").gql()?;
        let plan = input.plan.map(Plan::from);
        let req = StartExecution::parse(session_id, input.task, plan).gql()?;
        let mut tx = ctx.begin().await?;
        let run = executions::start(&tx, agents(ctx), actor, req)
            .await
            .gql()?;
        tx.subject("agent_execution", run.id);
        tx.commit().await.gql()?;
        Ok(AgentExecution(run))
    }

    /// Pauses a run before its next step. `INVALID_TRANSITION` for a finished,
    /// cancelled or already paused run.
    async fn pause_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<ExecutionControl> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let reason = ControlReason::parse(reason).gql()?;
        let mut tx = ctx.begin().await?;
        let control = controls::pause(&tx, agents(ctx), actor, id, reason)
            .await
            .gql()?;
        tx.subject("agent_execution", id);
        tx.commit().await.gql()?;
        Ok(ExecutionControl(control))
    }

    /// Resumes a paused run (into `AWAITING_APPROVAL` when its current step's
    /// approval is still pending). A run awaiting approval is resumed by
    /// answering the approval: resuming it is `INVALID_TRANSITION`.
    async fn resume_execution(&self, ctx: &Context<'_>, id: ID) -> Result<ExecutionControl> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut tx = ctx.begin().await?;
        let control = controls::resume(&tx, agents(ctx), actor, id).await.gql()?;
        tx.subject("agent_execution", id);
        tx.commit().await.gql()?;
        Ok(ExecutionControl(control))
    }

    /// Cancels a run for good; one that no worker is playing is settled at
    /// once. `INVALID_TRANSITION` for a finished or already cancelled run.
    async fn cancel_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<ExecutionControl> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let reason = ControlReason::parse(reason).gql()?;
        let mut tx = ctx.begin().await?;
        let control = controls::cancel(&tx, agents(ctx), actor, id, reason)
            .await
            .gql()?;
        tx.subject("agent_execution", id);
        tx.commit().await.gql()?;
        Ok(ExecutionControl(control))
    }

    /// Gives a run an instruction its next step consumes, once; a paused run
    /// is resumed by it. `CONFLICT` while an earlier one is unconsumed.
    async fn inject_instruction(
        &self,
        ctx: &Context<'_>,
        input: InjectInstructionInput,
    ) -> Result<ExecutionControl> {
        let actor = ctx.writer()?;
        let id = parse_id(&input.execution_id, "executionId").gql()?;
        let instruction = Instruction::parse(input.instruction).gql()?;
        let mut tx = ctx.begin().await?;
        let control = controls::inject(&tx, agents(ctx), actor, id, instruction)
            .await
            .gql()?;
        tx.subject("agent_execution", id);
        tx.commit().await.gql()?;
        Ok(ExecutionControl(control))
    }
}
