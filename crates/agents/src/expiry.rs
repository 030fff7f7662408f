//! The approval expiry job: every pending approval whose `expires_at` has
//! come gets its `timeout_action` applied (`reject` -> `expired`, `approve`
//! -> `approved`), and its run's control is released for the worker, which
//! then fails the run ("approval expired") or goes on.
//!
//! An approval whose run has already ended or was cancelled expires whatever
//! its timeout action: nobody is left to act on an approval. Each approval is
//! settled in its own transaction by the same conditional write an owner's
//! answer uses, so the job may run twice, or on several instances at once,
//! and each approval is still settled exactly once.

use crate::approvals::{self, RunState, Settler};
use crate::entity::action_approval;
use crate::settings::Agents;
use crate::status::{ApprovalStatus, TimeoutAction};
use kernel::Error;
use kernel::error::Code;
use kernel::jobs::Job;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

/// How many due approvals one query picks up.
pub const BATCH: u64 = 100;

/// What one run of the job settled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Approvals moved to `expired`.
    pub expired: u64,
    /// Approvals moved to `approved` by an `approve` timeout action.
    pub approved: u64,
}

/// Applies the timeout action of the due approval `approval_id`.
///
/// # Errors
/// `NOT_FOUND` for an unknown approval; `INVALID_TRANSITION` when it is not
/// pending any more (someone settled it first) or not due yet; internal on
/// database failure.
pub async fn expire(
    db: &impl ConnectionTrait,
    agents: &Agents,
    approval_id: Uuid,
) -> Result<action_approval::Model, Error> {
    let now = agents.clock.now();
    let approval = action_approval::Entity::find_by_id(approval_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("approval"))?;
    if now < approval.expires_at {
        return Err(Error::InvalidTransition(format!(
            "the approval waits until {}",
            approval.expires_at.to_rfc3339()
        )));
    }
    let (to, by) = match approvals::run_state(db, approval.execution_id).await? {
        RunState::Ended(_) => (ApprovalStatus::Expired, Settler::TimeoutOfEndedRun),
        RunState::Live => match TimeoutAction::parse(&approval.timeout_action)? {
            TimeoutAction::Reject => (ApprovalStatus::Expired, Settler::Timeout),
            TimeoutAction::Approve => (ApprovalStatus::Approved, Settler::Timeout),
        },
    };
    approvals::settle(db, &approval, to, None, by, now).await
}

/// Settles every approval due now, each in its own transaction.
///
/// # Errors
/// Internal on database failure; approvals settled before it stay settled.
#[tracing::instrument(skip_all, err)]
pub async fn expire_due(db: &DatabaseConnection, agents: &Agents) -> Result<ExpiryReport, Error> {
    let mut report = ExpiryReport::default();
    loop {
        let now = agents.clock.now();
        let due: Vec<Uuid> = action_approval::Entity::find()
            .select_only()
            .column(action_approval::Column::Id)
            .filter(action_approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
            .filter(action_approval::Column::ExpiresAt.lte(now))
            .order_by_asc(action_approval::Column::ExpiresAt)
            .order_by_asc(action_approval::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        let mut settled = 0;
        for id in &due {
            let txn = db.begin().await?;
            match expire(&txn, agents, *id).await {
                Ok(approval) => {
                    txn.commit().await?;
                    settled += 1;
                    if approval.status == ApprovalStatus::Approved.as_str() {
                        report.approved += 1;
                    } else {
                        report.expired += 1;
                    }
                }
                // Another instance, or the owner, settled it first.
                Err(err) if err.code() == Code::InvalidTransition => txn.rollback().await?,
                // One approval that cannot be settled must not hold up the
                // others due behind it; it is tried again at the next tick.
                Err(err) => {
                    txn.rollback().await?;
                    tracing::warn!(approval_id = %id, error = %err, "approval not expired");
                }
            }
        }
        if (due.len() as u64) < BATCH || settled == 0 {
            break;
        }
    }
    if report != ExpiryReport::default() {
        tracing::info!(?report, "approvals expired");
    }
    Ok(report)
}

/// [`expire_due`] as a periodic job (`agents.approval_expiry`).
#[derive(Debug, Clone)]
pub struct ApprovalExpiryJob {
    /// The database it runs on.
    pub db: DatabaseConnection,
    /// The agents services (clock).
    pub agents: Agents,
}

#[async_trait::async_trait]
impl Job for ApprovalExpiryJob {
    fn name(&self) -> &'static str {
        "agents.approval_expiry"
    }

    async fn run(&self) -> Result<(), Error> {
        expire_due(&self.db, &self.agents).await.map(|_| ())
    }
}
