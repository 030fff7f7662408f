//! Approvals of risky actions. The worker asks with [`request`] when a step
//! needs one; a `low` risk (see [`crate::risk`]) is approved at once, anything
//! else waits `pending` until answered or expired. The worker finds the
//! answer for its position with [`for_step`].

use crate::entity::{action_approval, agent_execution};
use crate::events::{self, EventKind};
use crate::risk;
use crate::runner::ApprovalNeeded;
use crate::settings::Agents;
use crate::status::{ApprovalStatus, RiskLevel, TimeoutAction};
use kernel::Error;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use uuid::Uuid;

/// Writes the approval for the step at `(phase_index, step_index)` of `execution`.
///
/// # Errors
/// `BAD_USER_INPUT` on `timeoutAction` for an unknown action; internal on
/// database failure (including a second approval for the same step).
pub async fn request(
    db: &impl ConnectionTrait,
    agents: &Agents,
    execution: &agent_execution::Model,
    phase_index: i32,
    step_index: i32,
    action: ApprovalNeeded,
) -> Result<action_approval::Model, Error> {
    let now = agents.clock.now();
    let risk = risk::score(&action.action_type, &action.description, &action.params);
    let timeout_action = match action.timeout_action.as_deref() {
        None => TimeoutAction::Reject,
        Some(text) => TimeoutAction::parse(text)
            .map_err(|_| Error::bad_input("timeoutAction", "must be reject or approve"))?,
    };
    let automatic = risk.level == RiskLevel::Low;
    let status = if automatic {
        ApprovalStatus::Approved
    } else {
        ApprovalStatus::Pending
    };
    let approval = action_approval::ActiveModel {
        id: Set(new_id()),
        execution_id: Set(execution.id),
        user_id: Set(execution.user_id),
        phase_index: Set(phase_index),
        step_index: Set(step_index),
        action_type: Set(action.action_type),
        action_description: Set(action.description),
        action_params: Set(action.params),
        risk_level: Set(risk.level.as_str().to_owned()),
        risk_factors: Set(json!(risk.factors)),
        screenshot_url: Set(None),
        status: Set(status.as_str().to_owned()),
        approved_at: Set(automatic.then_some(now)),
        rejected_at: Set(None),
        rejection_reason: Set(None),
        expires_at: Set(now + agents.settings.approval_ttl),
        timeout_action: Set(timeout_action.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    let (kind, payload) = if automatic {
        (
            EventKind::ApprovalAnswered,
            json!({
                "approvalId": approval.id,
                "status": approval.status,
                "automatic": true,
            }),
        )
    } else {
        (
            EventKind::ApprovalNeeded,
            json!({
                "approvalId": approval.id,
                "actionType": approval.action_type,
                "riskLevel": approval.risk_level,
                "expiresAt": approval.expires_at,
            }),
        )
    };
    events::emit(db, execution.id, execution.user_id, kind, payload, now).await?;
    Ok(approval)
}

/// The approval written for a step, if any.
///
/// # Errors
/// Internal on database failure.
pub async fn for_step(
    db: &impl ConnectionTrait,
    execution_id: Uuid,
    phase_index: i32,
    step_index: i32,
) -> Result<Option<action_approval::Model>, Error> {
    Ok(action_approval::Entity::find()
        .filter(action_approval::Column::ExecutionId.eq(execution_id))
        .filter(action_approval::Column::PhaseIndex.eq(phase_index))
        .filter(action_approval::Column::StepIndex.eq(step_index))
        .one(db)
        .await?)
}
