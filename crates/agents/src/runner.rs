//! The work behind a run sits behind [`AgentRunner`]. [`LocalRunner`], the
//! default, plays the plan given with the task, deterministically and offline.

use crate::plan::{Plan, PlanStep, StepTokens};
use serde_json::Value as Json;

/// A runner's failure; the run fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RunnerError(pub String);

/// What a runner sees when it plays one step.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// The task as the owner wrote it.
    pub task: &'a str,
    /// The plan being played.
    pub plan: &'a Plan,
    /// The phase of the step.
    pub phase_index: i32,
    /// The step within the phase.
    pub step_index: i32,
    /// An instruction the owner injected, consumed by this step.
    pub instruction: Option<&'a str>,
}

/// A tool call a step made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The tool.
    pub name: String,
    /// Its parameters.
    pub params: Json,
    /// Its output.
    pub result: Json,
    /// The error, when the call failed.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
}

/// An action that needs approval before the run goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalNeeded {
    /// The kind of action.
    pub action_type: String,
    /// What it does.
    pub description: String,
    /// Its parameters.
    pub params: Json,
    /// `reject` or `approve` at expiry; `None` is `reject`.
    pub timeout_action: Option<String>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Go on with the next step.
    Continue,
    /// Wait for a human before going on.
    AwaitApproval(ApprovalNeeded),
    /// The run is done.
    Finish(Json),
    /// The run failed.
    Fail(String),
}

/// Everything one step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// Thoughts to append.
    pub thoughts: Vec<String>,
    /// The tool call made, if any.
    pub tool_call: Option<ToolCall>,
    /// Tokens spent, written to billing's cost tracking with the step.
    pub tokens: Option<StepTokens>,
    /// How it ended.
    pub outcome: StepOutcome,
}

/// Who does the model or browser work of a run.
#[async_trait::async_trait]
pub trait AgentRunner: Send + Sync + 'static {
    /// Stored on each execution (`local`, `http`).
    fn name(&self) -> &'static str;

    /// True when a task must come with a plan.
    fn needs_plan(&self) -> bool;

    /// The plan for a task: the given one, or one the runner makes.
    ///
    /// # Errors
    /// The runner's failure; the run fails with it.
    async fn plan(&self, task: &str, given: Option<&Plan>) -> Result<Plan, RunnerError>;

    /// Plays the step at the context's position.
    ///
    /// # Errors
    /// The runner's failure; the run fails with it.
    async fn step(&self, ctx: StepContext<'_>) -> Result<StepOutput, RunnerError>;
}

/// Plays the plan given with the task, step by step, with no network.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalRunner;

#[async_trait::async_trait]
impl AgentRunner for LocalRunner {
    fn name(&self) -> &'static str {
        "local"
    }

    fn needs_plan(&self) -> bool {
        true
    }

    async fn plan(&self, _task: &str, given: Option<&Plan>) -> Result<Plan, RunnerError> {
        given
            .cloned()
            .ok_or_else(|| RunnerError("the local runner needs a plan".into()))
    }

    async fn step(&self, ctx: StepContext<'_>) -> Result<StepOutput, RunnerError> {
        let mut thoughts = Vec::new();
        if let Some(instruction) = ctx.instruction {
            thoughts.push(format!("Following the new instruction: {instruction}"));
        }
        let step = ctx
            .plan
            .step(ctx.phase_index, ctx.step_index)
            .ok_or_else(|| RunnerError("the plan has no step at this position".into()))?;
        let mut out = StepOutput {
            thoughts,
            tool_call: None,
            tokens: None,
            outcome: StepOutcome::Continue,
        };
        match step {
            PlanStep::Think { text, tokens } => {
                out.thoughts.push(text.clone());
                out.tokens = tokens.clone();
            }
            PlanStep::Tool {
                name,
                params,
                result,
                error,
                duration_ms,
            } => {
                out.tool_call = Some(ToolCall {
                    name: name.clone(),
                    params: params.clone(),
                    result: result.clone(),
                    error: error.clone(),
                    duration_ms: *duration_ms,
                });
                if let Some(error) = error {
                    out.outcome = StepOutcome::Fail(format!("tool {name} failed: {error}"));
                }
            }
            PlanStep::Approval {
                action_type,
                description,
                params,
                timeout_action,
            } => {
                out.outcome = StepOutcome::AwaitApproval(ApprovalNeeded {
                    action_type: action_type.clone(),
                    description: description.clone(),
                    params: params.clone(),
                    timeout_action: timeout_action.clone(),
                });
            }
            PlanStep::Fail { reason } => out.outcome = StepOutcome::Fail(reason.clone()),
            PlanStep::Finish { result } => out.outcome = StepOutcome::Finish(result.clone()),
        }
        Ok(out)
    }
}
