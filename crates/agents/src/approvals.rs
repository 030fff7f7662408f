//! Approvals of risky actions. The worker asks with [`request`] when a step
//! needs one; a `low` risk (see [`crate::risk`]) is approved at once, anything
//! else waits `pending` until answered or expired. The worker finds the
//! answer for its position with [`for_step`].
//!
//! Answering ([`approve`], [`reject`], and the expiry job in
//! [`crate::expiry`]) only settles the approval and releases the run's
//! control from `awaiting_approval` back to `running`; the worker then reads
//! the answer and goes on or fails the run. Every answer is one conditional
//! `UPDATE ... WHERE status = 'pending'` guarded by the expiry time, so an
//! owner's answer and the expiry job racing on any number of server
//! instances settle an approval exactly once; the losers are
//! `INVALID_TRANSITION`.

use crate::entity::{action_approval, agent_execution, execution_control};
use crate::events::{self, EventKind};
use crate::risk;
use crate::runner::ApprovalNeeded;
use crate::settings::Agents;
use crate::status::{ApprovalStatus, ControlState, ExecutionStatus, RiskLevel, TimeoutAction};
use chrono::{DateTime, Utc};
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use kernel::page::{self, Page, Window};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

/// Longest rejection reason, in characters.
pub const MAX_REASON: usize = 2_000;

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
    let asked = match action.timeout_action.as_deref() {
        None => TimeoutAction::Reject,
        Some(text) => TimeoutAction::parse(text)
            .map_err(|_| Error::bad_input("timeoutAction", "must be reject or approve"))?,
    };
    // Silence never approves a high or critical action: only a human does.
    let timeout_action = if risk.level >= RiskLevel::High {
        TimeoutAction::Reject
    } else {
        asked
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
    if !automatic {
        crate::worker::keep_reservation_until(db, agents, execution, approval.expires_at).await?;
    }
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

/// Why the owner rejected an action, parsed: trimmed, 1 to [`MAX_REASON`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionReason(String);

impl RejectionReason {
    /// Parses an optional reason; blank text is no reason.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `reason` when longer than [`MAX_REASON`] characters.
    pub fn parse(text: Option<String>) -> Result<Option<Self>, Error> {
        let Some(text) = text else {
            return Ok(None);
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > MAX_REASON {
            return Err(Error::bad_input(
                "reason",
                format!("must be at most {MAX_REASON} characters"),
            ));
        }
        Ok(Some(Self(text.to_owned())))
    }

    /// The reason text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who settles an approval, which decides the time guard of the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settler {
    /// The run's owner, strictly before `expires_at`.
    Owner,
    /// The expiry job, at or after `expires_at`.
    Timeout,
    /// The expiry job, for a run that has ended: nothing to release.
    TimeoutOfEndedRun,
    /// The run failed or was cancelled while the approval waited: it is
    /// withdrawn (`expired`) at once, nothing to release.
    RunEnded,
}

/// The caller's approval `id`.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or belongs to someone else.
pub async fn own(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<action_approval::Model, Error> {
    find(db, actor, id)
        .await?
        .ok_or(Error::NotFound("approval"))
}

/// The caller's approval `id`, or `None` when it is not theirs.
///
/// # Errors
/// Internal on database failure.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<Option<action_approval::Model>, Error> {
    Ok(action_approval::Entity::find_by_id(id)
        .filter(action_approval::Column::UserId.eq(actor.user_id))
        .one(db)
        .await?)
}

/// One page of the caller's approvals, newest first, optionally of one status.
///
/// # Errors
/// Internal on database failure.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    status: Option<ApprovalStatus>,
    window: Window,
) -> Result<Page<action_approval::Model>, Error> {
    let mut select =
        action_approval::Entity::find().filter(action_approval::Column::UserId.eq(actor.user_id));
    if let Some(status) = status {
        select = select.filter(action_approval::Column::Status.eq(status.as_str()));
    }
    page::fetch(db, select, action_approval::Column::Id, |m| m.id, window).await
}

/// Approves the caller's pending approval: the run goes on past the step.
///
/// # Errors
/// `NOT_FOUND` for another user's approval; `INVALID_TRANSITION` when it is
/// not pending, when `expires_at` has passed (even before the expiry job ran),
/// or when its run was cancelled or has ended; internal on database failure.
#[tracing::instrument(skip(db, agents, actor), err)]
pub async fn approve(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    approval_id: Uuid,
) -> Result<action_approval::Model, Error> {
    answer(
        db,
        agents,
        actor,
        approval_id,
        ApprovalStatus::Approved,
        None,
    )
    .await
}

/// Rejects the caller's pending approval, with an optional reason: the run
/// fails with "action rejected: <reason>".
///
/// # Errors
/// As [`approve`].
#[tracing::instrument(skip(db, agents, actor, reason), err)]
pub async fn reject(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    approval_id: Uuid,
    reason: Option<RejectionReason>,
) -> Result<action_approval::Model, Error> {
    answer(
        db,
        agents,
        actor,
        approval_id,
        ApprovalStatus::Rejected,
        reason,
    )
    .await
}

async fn answer(
    db: &impl ConnectionTrait,
    agents: &Agents,
    actor: &Actor,
    approval_id: Uuid,
    to: ApprovalStatus,
    reason: Option<RejectionReason>,
) -> Result<action_approval::Model, Error> {
    let now = agents.clock.now();
    let approval = own(db, actor, approval_id).await?;
    ApprovalStatus::parse(&approval.status)?.transition(to)?;
    if now >= approval.expires_at {
        return Err(Error::InvalidTransition(format!(
            "the approval expired at {}",
            approval.expires_at.to_rfc3339()
        )));
    }
    if let RunState::Ended(why) = run_state(db, approval.execution_id).await? {
        return Err(Error::InvalidTransition(format!(
            "the approval's run {why}"
        )));
    }
    settle(
        db,
        &approval,
        to,
        reason.as_ref().map(RejectionReason::as_str),
        Settler::Owner,
        now,
    )
    .await
}

/// Whether the run an approval belongs to can still use an answer.
pub(crate) enum RunState {
    /// Not final and not cancelled.
    Live,
    /// Final, or its control is cancelled: why, for the error message.
    Ended(String),
}

pub(crate) async fn run_state(
    db: &impl ConnectionTrait,
    execution_id: Uuid,
) -> Result<RunState, Error> {
    let execution = agent_execution::Entity::find_by_id(execution_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("execution"))?;
    let status = ExecutionStatus::parse(&execution.status)?;
    if status.is_final() {
        return Ok(RunState::Ended(format!("has ended ({status})")));
    }
    let control = control_of(db, execution_id).await?;
    if control.is_some_and(|c| c.control_state == ControlState::Cancelled.as_str()) {
        return Ok(RunState::Ended("was cancelled".to_owned()));
    }
    Ok(RunState::Live)
}

async fn control_of(
    db: &impl ConnectionTrait,
    execution_id: Uuid,
) -> Result<Option<execution_control::Model>, Error> {
    Ok(execution_control::Entity::find()
        .filter(execution_control::Column::ExecutionId.eq(execution_id))
        .one(db)
        .await?)
}

/// Writes the answer `to` once, releases the run's control when it was held
/// for this approval, and logs both events.
///
/// # Errors
/// `INVALID_TRANSITION` when the approval was settled first by someone else
/// (or the time guard of `by` no longer holds), or when the run was cancelled
/// while an owner answered; internal on database failure.
pub(crate) async fn settle(
    db: &impl ConnectionTrait,
    approval: &action_approval::Model,
    to: ApprovalStatus,
    reason: Option<&str>,
    by: Settler,
    now: DateTime<Utc>,
) -> Result<action_approval::Model, Error> {
    use action_approval::Column as A;
    let to = ApprovalStatus::parse(&approval.status)?.transition(to)?;
    // Lock order: the execution row first, as the worker and the controls do.
    agent_execution::Entity::find_by_id(approval.execution_id)
        .lock_exclusive()
        .one(db)
        .await?;
    let mut update = action_approval::Entity::update_many()
        .col_expr(A::Status, Expr::value(to.as_str()))
        .col_expr(A::UpdatedAt, Expr::value(now))
        .filter(A::Id.eq(approval.id))
        .filter(A::Status.eq(ApprovalStatus::Pending.as_str()));
    update = match to {
        ApprovalStatus::Approved => update.col_expr(A::ApprovedAt, Expr::value(now)),
        ApprovalStatus::Rejected => update
            .col_expr(A::RejectedAt, Expr::value(now))
            .col_expr(A::RejectionReason, Expr::value(reason.map(str::to_owned))),
        ApprovalStatus::Expired | ApprovalStatus::Pending => update,
    };
    update = match by {
        Settler::Owner => update.filter(A::ExpiresAt.gt(now)),
        Settler::Timeout | Settler::TimeoutOfEndedRun => update.filter(A::ExpiresAt.lte(now)),
        Settler::RunEnded => update,
    };
    if update.exec(db).await?.rows_affected == 0 {
        return Err(Error::InvalidTransition(
            "the approval was already answered or has expired".to_owned(),
        ));
    }
    let payload = match by {
        Settler::Owner => json!({ "approvalId": approval.id, "status": to.as_str() }),
        Settler::Timeout | Settler::TimeoutOfEndedRun => {
            json!({ "approvalId": approval.id, "status": to.as_str(), "timeout": true })
        }
        Settler::RunEnded => {
            json!({ "approvalId": approval.id, "status": to.as_str(), "withdrawn": true })
        }
    };
    events::emit(
        db,
        approval.execution_id,
        approval.user_id,
        EventKind::ApprovalAnswered,
        payload,
        now,
    )
    .await?;
    if !matches!(by, Settler::TimeoutOfEndedRun | Settler::RunEnded) {
        release_control(db, approval, to, by, now).await?;
    }
    action_approval::Entity::find_by_id(approval.id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("approval"))
}

/// Withdraws the pending approvals of a run that is ending (failed or
/// cancelled): each becomes `expired` at once with an `approval_answered`
/// event marked `withdrawn`, so no one is asked to approve a dead run.
/// Call it in the transaction that ends the run, before its final status.
///
/// # Errors
/// Internal on database failure.
pub(crate) async fn withdraw_pending(
    db: &impl ConnectionTrait,
    execution_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let pending = action_approval::Entity::find()
        .filter(action_approval::Column::ExecutionId.eq(execution_id))
        .filter(action_approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
        .all(db)
        .await?;
    for approval in pending {
        settle(
            db,
            &approval,
            ApprovalStatus::Expired,
            None,
            Settler::RunEnded,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Moves the run's control `awaiting_approval -> running` so the worker picks
/// the run up again. A paused run stays paused (the owner's resume decides),
/// and a running one has nothing to release.
async fn release_control(
    db: &impl ConnectionTrait,
    approval: &action_approval::Model,
    status: ApprovalStatus,
    by: Settler,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    use execution_control::Column as C;
    let Some(control) = control_of(db, approval.execution_id).await? else {
        return Ok(());
    };
    let from = ControlState::parse(&control.control_state)?;
    if from != ControlState::AwaitingApproval {
        return Ok(());
    }
    let to = from.transition(ControlState::Running)?;
    let reason = format!("approval {} {status}", approval.id);
    let moved = execution_control::Entity::update_many()
        .col_expr(C::ControlState, Expr::value(to.as_str()))
        .col_expr(C::StateReason, Expr::value(reason.clone()))
        .col_expr(C::LastStateChange, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::ExecutionId.eq(approval.execution_id))
        .filter(C::ControlState.eq(from.as_str()))
        .exec(db)
        .await?;
    if moved.rows_affected == 0 {
        // Changed since it was read: paused stays paused; a cancel that landed
        // first makes an owner's answer moot, so it is refused with the cancel.
        if by == Settler::Owner
            && matches!(
                run_state(db, approval.execution_id).await?,
                RunState::Ended(_)
            )
        {
            return Err(Error::InvalidTransition(
                "the approval's run was cancelled".to_owned(),
            ));
        }
        return Ok(());
    }
    events::emit(
        db,
        approval.execution_id,
        approval.user_id,
        EventKind::ControlChanged,
        json!({ "from": from.as_str(), "to": to.as_str(), "reason": reason }),
        now,
    )
    .await?;
    Ok(())
}
