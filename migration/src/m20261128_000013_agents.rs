//! The agent control plane (seed 004 "AI Agent System"): `agent_sessions`,
//! `agent_executions`, `tool_executions`, `execution_controls`,
//! `action_approvals`, `execution_checkpoints`, plus `agent_events`, the
//! ordered event log that live subscriptions read.
//!
//! Statuses are text with CHECK constraints naming the closed sets, so a
//! value no Rust enum knows can never be stored.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum AgentSessions {
    Table,
    Id,
    UserId,
    Name,
    Status,
    Context,
    CurrentPhase,
    IterationCount,
    MaxIterations,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum AgentExecutions {
    Table,
    Id,
    SessionId,
    UserId,
    TaskDescription,
    Status,
    Runner,
    Plan,
    CurrentPhaseIndex,
    StepIndex,
    ThinkingSteps,
    Result,
    Error,
    Iterations,
    DurationMs,
    ReservationId,
    ResumedFromCheckpointId,
    RootExecutionId,
    Attempt,
    ClaimedBy,
    ClaimExpiresAt,
    EventSeq,
    StartedAt,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ToolExecutions {
    Table,
    Id,
    ExecutionId,
    UserId,
    PhaseIndex,
    StepIndex,
    ToolName,
    Parameters,
    Result,
    Success,
    DurationMs,
    Error,
    ExecutedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionControls {
    Table,
    Id,
    ExecutionId,
    UserId,
    ControlState,
    StateReason,
    InjectedInstruction,
    InjectedAt,
    CheckpointData,
    LastStateChange,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ActionApprovals {
    Table,
    Id,
    ExecutionId,
    UserId,
    PhaseIndex,
    StepIndex,
    ActionType,
    ActionDescription,
    ActionParams,
    RiskLevel,
    RiskFactors,
    ScreenshotUrl,
    Status,
    ApprovedAt,
    RejectedAt,
    RejectionReason,
    ExpiresAt,
    TimeoutAction,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionCheckpoints {
    Table,
    Id,
    ExecutionId,
    UserId,
    PhaseIndex,
    PhaseName,
    StepIndex,
    CompletedSteps,
    CompletedPhases,
    PartialResults,
    ExtractedData,
    SessionState,
    BrowserContext,
    ErrorInfo,
    CheckpointReason,
    CanResume,
    ResumeCount,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AgentEvents {
    Table,
    Id,
    ExecutionId,
    UserId,
    Seq,
    Kind,
    Payload,
    CreatedAt,
}

const SESSION_STATUSES: [&str; 6] = [
    "idle",
    "planning",
    "executing",
    "complete",
    "error",
    "paused",
];
const EXECUTION_STATUSES: [&str; 6] = [
    "pending",
    "planning",
    "executing",
    "completed",
    "failed",
    "cancelled",
];
const CONTROL_STATES: [&str; 4] = ["running", "paused", "cancelled", "awaiting_approval"];
const RISK_LEVELS: [&str; 4] = ["low", "medium", "high", "critical"];
const APPROVAL_STATUSES: [&str; 4] = ["pending", "approved", "rejected", "expired"];
const TIMEOUT_ACTIONS: [&str; 2] = ["reject", "approve"];
const CHECKPOINT_REASONS: [&str; 4] = ["error", "manual", "phase_complete", "pause_timeout"];

fn one_of<C: IntoIden + Copy + 'static>(col: C, values: &[&str]) -> Expr {
    Expr::col(col).is_in(values.iter().copied())
}

fn owner<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    table: T,
    col: C,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn of_execution<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    table: T,
    col: C,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(AgentExecutions::Table, AgentExecutions::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use AgentExecutions as E;
        use AgentSessions as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(pk_uuid(S::Id))
                .col(uuid(S::UserId))
                .col(string_len(S::Name, 200))
                .col(string_len(S::Status, 50).default("idle"))
                .col(json_binary_null(S::Context))
                .col(string_len_null(S::CurrentPhase, 100))
                .col(integer(S::IterationCount).default(0))
                .col(integer(S::MaxIterations).default(100))
                .col(timestamp_with_time_zone(S::CreatedAt))
                .col(timestamp_with_time_zone(S::UpdatedAt))
                .check((
                    "agent_sessions_status_known",
                    one_of(S::Status, &SESSION_STATUSES),
                ))
                // The cap is enforced by a conditional UPDATE; this is the last line of defence.
                .check((
                    "agent_sessions_iterations_within_cap",
                    Expr::col(S::IterationCount)
                        .gte(0)
                        .and(Expr::col(S::IterationCount).lte(Expr::col(S::MaxIterations)))
                        .and(Expr::col(S::MaxIterations).gt(0)),
                ))
                .foreign_key(&mut owner(S::Table, S::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "agent_sessions_user_id_idx",
            S::Table,
            &[S::UserId, S::Id],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(E::Table)
                .col(pk_uuid(E::Id))
                .col(uuid(E::SessionId))
                .col(uuid(E::UserId))
                .col(text(E::TaskDescription))
                .col(string_len(E::Status, 50).default("pending"))
                .col(string_len(E::Runner, 50))
                .col(json_binary_null(E::Plan))
                .col(integer(E::CurrentPhaseIndex).default(0))
                .col(integer(E::StepIndex).default(0))
                .col(json_binary(E::ThinkingSteps))
                .col(json_binary_null(E::Result))
                .col(text_null(E::Error))
                .col(integer(E::Iterations).default(0))
                .col(big_integer_null(E::DurationMs))
                .col(uuid_null(E::ReservationId))
                .col(uuid_null(E::ResumedFromCheckpointId))
                // The first run of the lineage; a fresh run names itself.
                .col(uuid(E::RootExecutionId))
                .col(integer(E::Attempt).default(1))
                .col(string_len_null(E::ClaimedBy, 100))
                .col(timestamp_with_time_zone_null(E::ClaimExpiresAt))
                .col(big_integer(E::EventSeq).default(0))
                .col(timestamp_with_time_zone_null(E::StartedAt))
                .col(timestamp_with_time_zone_null(E::CompletedAt))
                .col(timestamp_with_time_zone(E::CreatedAt))
                .col(timestamp_with_time_zone(E::UpdatedAt))
                .check((
                    "agent_executions_status_known",
                    one_of(E::Status, &EXECUTION_STATUSES),
                ))
                .foreign_key(
                    ForeignKey::create()
                        .from(E::Table, E::SessionId)
                        .to(S::Table, S::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(&mut owner(E::Table, E::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "agent_executions_session_id_idx",
            E::Table,
            &[E::SessionId, E::Id],
        )
        .await?;
        index(
            m,
            "agent_executions_user_id_idx",
            E::Table,
            &[E::UserId, E::Id],
        )
        .await?;
        // Resuming a checkpoint: the live attempts of one lineage.
        index(
            m,
            "agent_executions_root_execution_id_idx",
            E::Table,
            &[E::RootExecutionId, E::Status],
        )
        .await?;
        // The worker's claim scan: unfinished runs by status.
        index(
            m,
            "agent_executions_status_idx",
            E::Table,
            &[E::Status, E::ClaimExpiresAt],
        )
        .await?;

        use ToolExecutions as T;
        m.create_table(
            Table::create()
                .table(T::Table)
                .col(pk_uuid(T::Id))
                .col(uuid(T::ExecutionId))
                .col(uuid(T::UserId))
                .col(integer(T::PhaseIndex))
                .col(integer(T::StepIndex))
                .col(string_len(T::ToolName, 100))
                .col(json_binary_null(T::Parameters))
                .col(json_binary_null(T::Result))
                .col(boolean(T::Success).default(true))
                .col(integer_null(T::DurationMs))
                .col(text_null(T::Error))
                .col(timestamp_with_time_zone(T::ExecutedAt))
                .foreign_key(&mut of_execution(T::Table, T::ExecutionId))
                .foreign_key(&mut owner(T::Table, T::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "tool_executions_execution_id_idx",
            T::Table,
            &[T::ExecutionId, T::Id],
        )
        .await?;
        index(m, "tool_executions_tool_name_idx", T::Table, &[T::ToolName]).await?;

        use ExecutionControls as C;
        m.create_table(
            Table::create()
                .table(C::Table)
                .col(pk_uuid(C::Id))
                .col(uuid_uniq(C::ExecutionId))
                .col(uuid(C::UserId))
                .col(string_len(C::ControlState, 20))
                .col(text_null(C::StateReason))
                .col(text_null(C::InjectedInstruction))
                .col(timestamp_with_time_zone_null(C::InjectedAt))
                .col(json_binary_null(C::CheckpointData))
                .col(timestamp_with_time_zone(C::LastStateChange))
                .col(timestamp_with_time_zone(C::CreatedAt))
                .col(timestamp_with_time_zone(C::UpdatedAt))
                .check((
                    "execution_controls_state_known",
                    one_of(C::ControlState, &CONTROL_STATES),
                ))
                .foreign_key(&mut of_execution(C::Table, C::ExecutionId))
                .foreign_key(&mut owner(C::Table, C::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "execution_controls_state_idx",
            C::Table,
            &[C::ControlState, C::LastStateChange],
        )
        .await?;

        use ActionApprovals as A;
        m.create_table(
            Table::create()
                .table(A::Table)
                .col(pk_uuid(A::Id))
                .col(uuid(A::ExecutionId))
                .col(uuid(A::UserId))
                .col(integer(A::PhaseIndex))
                .col(integer(A::StepIndex))
                .col(string_len(A::ActionType, 100))
                .col(text(A::ActionDescription))
                .col(json_binary(A::ActionParams))
                .col(string_len(A::RiskLevel, 20))
                .col(json_binary(A::RiskFactors))
                .col(text_null(A::ScreenshotUrl))
                .col(string_len(A::Status, 20).default("pending"))
                .col(timestamp_with_time_zone_null(A::ApprovedAt))
                .col(timestamp_with_time_zone_null(A::RejectedAt))
                .col(text_null(A::RejectionReason))
                .col(timestamp_with_time_zone(A::ExpiresAt))
                .col(string_len(A::TimeoutAction, 20).default("reject"))
                .col(timestamp_with_time_zone(A::CreatedAt))
                .col(timestamp_with_time_zone(A::UpdatedAt))
                .check((
                    "action_approvals_risk_known",
                    one_of(A::RiskLevel, &RISK_LEVELS),
                ))
                .check((
                    "action_approvals_status_known",
                    one_of(A::Status, &APPROVAL_STATUSES),
                ))
                .check((
                    "action_approvals_timeout_action_known",
                    one_of(A::TimeoutAction, &TIMEOUT_ACTIONS),
                ))
                .foreign_key(&mut of_execution(A::Table, A::ExecutionId))
                .foreign_key(&mut owner(A::Table, A::UserId))
                .to_owned(),
        )
        .await?;
        // One approval per step of a run: the worker finds the answer by position.
        m.create_index(
            Index::create()
                .name("action_approvals_execution_step_key")
                .table(A::Table)
                .col(A::ExecutionId)
                .col(A::PhaseIndex)
                .col(A::StepIndex)
                .unique()
                .to_owned(),
        )
        .await?;
        index(
            m,
            "action_approvals_user_status_idx",
            A::Table,
            &[A::UserId, A::Status],
        )
        .await?;
        index(
            m,
            "action_approvals_status_expires_idx",
            A::Table,
            &[A::Status, A::ExpiresAt],
        )
        .await?;

        use ExecutionCheckpoints as K;
        m.create_table(
            Table::create()
                .table(K::Table)
                .col(pk_uuid(K::Id))
                .col(uuid(K::ExecutionId))
                .col(uuid(K::UserId))
                .col(integer(K::PhaseIndex))
                .col(text_null(K::PhaseName))
                .col(integer(K::StepIndex).default(0))
                .col(json_binary(K::CompletedSteps))
                .col(json_binary(K::CompletedPhases))
                .col(json_binary(K::PartialResults))
                .col(json_binary(K::ExtractedData))
                .col(json_binary_null(K::SessionState))
                .col(json_binary_null(K::BrowserContext))
                .col(json_binary_null(K::ErrorInfo))
                .col(string_len(K::CheckpointReason, 100))
                .col(boolean(K::CanResume).default(true))
                .col(integer(K::ResumeCount).default(0))
                .col(timestamp_with_time_zone(K::CreatedAt))
                .col(timestamp_with_time_zone_null(K::ExpiresAt))
                .check((
                    "execution_checkpoints_reason_known",
                    one_of(K::CheckpointReason, &CHECKPOINT_REASONS),
                ))
                .foreign_key(&mut of_execution(K::Table, K::ExecutionId))
                .foreign_key(&mut owner(K::Table, K::UserId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "execution_checkpoints_execution_id_idx",
            K::Table,
            &[K::ExecutionId, K::Id],
        )
        .await?;
        index(
            m,
            "execution_checkpoints_user_id_idx",
            K::Table,
            &[K::UserId, K::Id],
        )
        .await?;

        use AgentEvents as V;
        m.create_table(
            Table::create()
                .table(V::Table)
                .col(pk_uuid(V::Id))
                .col(uuid(V::ExecutionId))
                .col(uuid(V::UserId))
                .col(big_integer(V::Seq))
                .col(string_len(V::Kind, 50))
                .col(json_binary(V::Payload))
                .col(timestamp_with_time_zone(V::CreatedAt))
                .foreign_key(&mut of_execution(V::Table, V::ExecutionId))
                .foreign_key(&mut owner(V::Table, V::UserId))
                .to_owned(),
        )
        .await?;
        // Per-run order: seq is taken under the execution row's write, so a
        // reader polling `seq > last` never skips an event committed late.
        m.create_index(
            Index::create()
                .name("agent_events_execution_seq_key")
                .table(V::Table)
                .col(V::ExecutionId)
                .col(V::Seq)
                .unique()
                .to_owned(),
        )
        .await?;
        index(
            m,
            "agent_events_user_id_idx",
            V::Table,
            &[V::UserId, V::CreatedAt],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AgentEvents::Table.into_iden(),
            ExecutionCheckpoints::Table.into_iden(),
            ActionApprovals::Table.into_iden(),
            ExecutionControls::Table.into_iden(),
            ToolExecutions::Table.into_iden(),
            AgentExecutions::Table.into_iden(),
            AgentSessions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
