//! Checkpoints: a saved position of a run, written on error, at the end of a
//! phase, when a pause times out, and on request.

use crate::entity::{agent_execution, execution_checkpoint};
use crate::events::{self, EventKind};
use crate::plan::Plan;
use crate::settings::Agents;
use crate::status::CheckpointReason;
use kernel::Error;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::{Value as Json, json};

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
