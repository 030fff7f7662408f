//! The typed plan a run plays: phases of steps. The local runner plays a plan
//! given with the task; other runners return one from their planning call.
//!
//! Plans are parsed at the edge ([`Plan::parse`]) and stored as JSON on the
//! execution; a stored plan that no longer parses is an internal error.

use chrono::{DateTime, Utc};
use kernel::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// At most this many phases in one plan.
pub const MAX_PHASES: usize = 50;
/// At most this many steps in one phase.
pub const MAX_STEPS_PER_PHASE: usize = 200;
/// Longest text in a step (thoughts, reasons, descriptions), in characters.
pub const MAX_TEXT: usize = 10_000;

/// Phases, played in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The phases.
    pub phases: Vec<Phase>,
}

/// A named group of steps; a checkpoint is written when one ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Shown in progress and checkpoints.
    pub name: String,
    /// The steps, played in order.
    pub steps: Vec<PlanStep>,
}

/// Token usage a runner reports for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTokens {
    /// `anthropic` or `google` (billing's providers).
    pub provider: String,
    /// The model name, priced by billing's price table.
    pub model: String,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanStep {
    /// Reason about the task; appends a thinking step.
    Think {
        /// The thought.
        text: String,
        /// Tokens the thought cost, if the runner reports them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens: Option<StepTokens>,
    },
    /// Call a tool; writes a `tool_executions` row.
    Tool {
        /// The tool's name.
        name: String,
        /// Its parameters.
        params: Json,
        /// What the local runner answers as the tool's result.
        #[serde(default)]
        result: Json,
        /// When set, the call fails with this error and the run fails.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Milliseconds the local runner reports for the call.
        #[serde(default)]
        duration_ms: i32,
    },
    /// Wait for a human to approve an action (low risk is approved at once).
    Approval {
        /// What kind of action (`delete_records`, `send_email`, ...).
        action_type: String,
        /// What it does, for the approver.
        description: String,
        /// Its parameters (targets, amounts, ...).
        params: Json,
        /// What happens when nobody answers in time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_action: Option<String>,
    },
    /// Fail the run with this reason.
    Fail {
        /// Why.
        reason: String,
    },
    /// Finish the run with this result.
    Finish {
        /// The result.
        result: Json,
    },
}

/// One entry of an execution's `thinking_steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingStep {
    /// Phase of the step that produced it.
    pub phase_index: i32,
    /// Step within the phase.
    pub step_index: i32,
    /// `thought`, `instruction` (injected by the owner) or `note`.
    pub kind: String,
    /// The text.
    pub text: String,
    /// When it was written.
    pub at: DateTime<Utc>,
}

fn check_text(field: &str, text: &str) -> Result<(), Error> {
    if text.trim().is_empty() {
        return Err(Error::bad_input(field, "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(Error::bad_input(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(())
}

impl Plan {
    /// Checks a plan received from a client or a runner.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `plan` (or the offending part) for an empty plan,
    /// too many phases or steps, empty names or texts, or an unknown
    /// `timeoutAction`.
    pub fn parse(self) -> Result<Self, Error> {
        if self.phases.is_empty() {
            return Err(Error::bad_input("plan", "needs at least one phase"));
        }
        if self.phases.len() > MAX_PHASES {
            return Err(Error::bad_input(
                "plan",
                format!("at most {MAX_PHASES} phases"),
            ));
        }
        for phase in &self.phases {
            check_text("plan.name", &phase.name)?;
            if phase.steps.is_empty() {
                return Err(Error::bad_input(
                    "plan.steps",
                    "a phase needs at least one step",
                ));
            }
            if phase.steps.len() > MAX_STEPS_PER_PHASE {
                return Err(Error::bad_input(
                    "plan.steps",
                    format!("at most {MAX_STEPS_PER_PHASE} steps per phase"),
                ));
            }
            for step in &phase.steps {
                match step {
                    PlanStep::Think { text, .. } => check_text("plan.think.text", text)?,
                    PlanStep::Tool { name, .. } => {
                        check_text("plan.tool.name", name)?;
                        if name.chars().count() > 100 {
                            return Err(Error::bad_input(
                                "plan.tool.name",
                                "at most 100 characters",
                            ));
                        }
                    }
                    PlanStep::Approval {
                        action_type,
                        description,
                        timeout_action,
                        ..
                    } => {
                        check_text("plan.approval.actionType", action_type)?;
                        if action_type.chars().count() > 100 {
                            return Err(Error::bad_input(
                                "plan.approval.actionType",
                                "at most 100 characters",
                            ));
                        }
                        check_text("plan.approval.description", description)?;
                        if let Some(action) = timeout_action {
                            crate::status::TimeoutAction::parse(action).map_err(|_| {
                                Error::bad_input(
                                    "plan.approval.timeoutAction",
                                    "must be reject or approve",
                                )
                            })?;
                        }
                    }
                    PlanStep::Fail { reason } => check_text("plan.fail.reason", reason)?,
                    PlanStep::Finish { .. } => {}
                }
            }
        }
        Ok(self)
    }

    /// Reads a plan stored on an execution.
    ///
    /// # Errors
    /// Internal, when the stored JSON is not a plan.
    pub fn from_json(json: &Json) -> Result<Self, Error> {
        serde_json::from_value(json.clone()).map_err(Error::internal)
    }

    /// The plan as stored JSON.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// The step at a position, if there is one.
    pub fn step(&self, phase_index: i32, step_index: i32) -> Option<&PlanStep> {
        let phase = self.phases.get(usize::try_from(phase_index).ok()?)?;
        phase.steps.get(usize::try_from(step_index).ok()?)
    }

    /// The position after `(phase_index, step_index)`, and whether that move
    /// ends a phase; `None` after the last step.
    pub fn next(&self, phase_index: i32, step_index: i32) -> (Option<(i32, i32)>, bool) {
        let Some(phase) = usize::try_from(phase_index)
            .ok()
            .and_then(|p| self.phases.get(p))
        else {
            return (None, false);
        };
        if (step_index as usize) + 1 < phase.steps.len() {
            return (Some((phase_index, step_index + 1)), false);
        }
        if (phase_index as usize) + 1 < self.phases.len() {
            (Some((phase_index + 1, 0)), true)
        } else {
            (None, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> Plan {
        Plan {
            phases: vec![
                Phase {
                    name: "research".into(),
                    steps: vec![
                        PlanStep::Think {
                            text: "look".into(),
                            tokens: None,
                        },
                        PlanStep::Tool {
                            name: "search".into(),
                            params: json!({"q": "x"}),
                            result: json!(["a"]),
                            error: None,
                            duration_ms: 5,
                        },
                    ],
                },
                Phase {
                    name: "report".into(),
                    steps: vec![PlanStep::Finish {
                        result: json!("done"),
                    }],
                },
            ],
        }
    }

    #[test]
    fn positions_walk_phases_in_order() {
        let p = plan().parse().unwrap();
        assert_eq!(p.next(0, 0), (Some((0, 1)), false));
        assert_eq!(p.next(0, 1), (Some((1, 0)), true));
        assert_eq!(p.next(1, 0), (None, true));
        assert!(matches!(p.step(1, 0), Some(PlanStep::Finish { .. })));
        assert!(p.step(2, 0).is_none());
        assert!(p.step(-1, 0).is_none());
    }

    #[test]
    fn plans_round_trip_through_json() {
        let p = plan();
        assert_eq!(Plan::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn bad_plans_name_the_field() {
        let err = Plan { phases: vec![] }.parse().unwrap_err();
        assert!(matches!(err, Error::BadInput { ref field, .. } if field == "plan"));
        let mut p = plan();
        p.phases[0].steps.push(PlanStep::Approval {
            action_type: "send_email".into(),
            description: "mail".into(),
            params: json!({}),
            timeout_action: Some("shrug".into()),
        });
        let err = p.parse().unwrap_err();
        assert!(
            matches!(err, Error::BadInput { ref field, .. } if field == "plan.approval.timeoutAction")
        );
    }
}
