//! Fixtures of the approvals and checkpoints tests: runs put into the state
//! the worker would leave them in, written directly through services and SQL
//! so these tests do not depend on the worker.
#![allow(dead_code)]

use crate::common::Fixture;
use agents::approvals;
use agents::entity::{
    action_approval, agent_event, agent_execution, execution_checkpoint, execution_control,
};
use agents::executions::{self, StartExecution};
use agents::plan::{Phase, Plan, PlanStep};
use agents::runner::ApprovalNeeded;
use async_graphql::{EmptySubscription, Request, Schema, Variables};
use kernel::actor::Actor;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Two phases: `gather` (think, approval, tool) and `report` (think, finish).
pub fn plan() -> Plan {
    Plan {
        phases: vec![
            Phase {
                name: "gather".into(),
                steps: vec![
                    PlanStep::Think {
                        text: "Look at the leads".into(),
                        tokens: None,
                    },
                    PlanStep::Approval {
                        action_type: "send_email".into(),
                        description: "Mail the weekly report".into(),
                        params: json!({"to": "boss@example.com"}),
                        timeout_action: None,
                    },
                    PlanStep::Tool {
                        name: "send_email".into(),
                        params: json!({"to": "boss@example.com"}),
                        result: json!({"sent": true}),
                        error: None,
                        duration_ms: 5,
                    },
                ],
            },
            Phase {
                name: "report".into(),
                steps: vec![
                    PlanStep::Think {
                        text: "Summarise".into(),
                        tokens: None,
                    },
                    PlanStep::Finish {
                        result: json!("done"),
                    },
                ],
            },
        ],
    }
}

/// A high-risk action (sending mail) with the given timeout action.
pub fn risky(timeout_action: Option<&str>) -> ApprovalNeeded {
    ApprovalNeeded {
        action_type: "send_email".into(),
        description: "Mail the weekly report".into(),
        params: json!({"to": "boss@example.com"}),
        timeout_action: timeout_action.map(str::to_owned),
    }
}

/// A medium-risk action (updating one record) with the given timeout action.
pub fn moderate(timeout_action: Option<&str>) -> ApprovalNeeded {
    ApprovalNeeded {
        action_type: "update_record".into(),
        description: "Update the lead's tag".into(),
        params: json!({"id": 1, "tag": "warm"}),
        timeout_action: timeout_action.map(str::to_owned),
    }
}

/// A low-risk action (reading a page).
pub fn harmless() -> ApprovalNeeded {
    ApprovalNeeded {
        action_type: "read_page".into(),
        description: "Read the pricing page".into(),
        params: json!({"url": "https://example.com/pricing"}),
        timeout_action: None,
    }
}

impl Fixture {
    /// A fresh run of `actor`, `pending`, in a new session.
    pub async fn run(&self, actor: &Actor) -> agent_execution::Model {
        let session = self.session(actor, 100).await;
        self.run_in(actor, session.id).await
    }

    /// A fresh run of `actor` in `session_id`.
    pub async fn run_in(&self, actor: &Actor, session_id: Uuid) -> agent_execution::Model {
        let req =
            StartExecution::parse(session_id, "Send the report".into(), Some(plan())).unwrap();
        executions::start(&self.t.db, &self.agents, actor, req)
            .await
            .unwrap()
    }

    /// Sets a run's status (and position) as the worker would have.
    pub async fn set_run(&self, id: Uuid, status: &str, phase: i32, step: i32) {
        self.exec(
            "UPDATE agent_executions SET status = ?, current_phase_index = ?, step_index = ? \
             WHERE id = ?",
            vec![status.into(), phase.into(), step.into(), id.into()],
        )
        .await;
    }

    /// Sets a run's control state.
    pub async fn set_control(&self, id: Uuid, state: &str, reason: Option<String>) {
        self.exec(
            "UPDATE execution_controls SET control_state = ?, state_reason = ? WHERE execution_id = ?",
            vec![state.into(), reason.into(), id.into()],
        )
        .await;
    }

    /// A run stopped at step (0, 1) waiting for an approval of `action`, as
    /// the worker leaves it: `executing`, the approval written by
    /// `approvals::request`, and the control `awaiting_approval` naming it
    /// (when the approval is pending).
    pub async fn waiting(
        &self,
        actor: &Actor,
        action: ApprovalNeeded,
    ) -> (agent_execution::Model, action_approval::Model) {
        let run = self.run(actor).await;
        self.set_run(run.id, "executing", 0, 1).await;
        let run = self.execution(run.id).await;
        let approval = approvals::request(&self.t.db, &self.agents, &run, 0, 1, action)
            .await
            .unwrap();
        if approval.status == "pending" {
            self.set_control(
                run.id,
                "awaiting_approval",
                Some(format!("awaiting approval {}", approval.id)),
            )
            .await;
        }
        (self.execution(run.id).await, approval)
    }

    /// A run of `actor` that failed at `(phase, step)`, its reservation released
    /// as the worker does on failure.
    pub async fn failed_run(&self, actor: &Actor, phase: i32, step: i32) -> agent_execution::Model {
        let run = self.run(actor).await;
        self.end_run(actor, &run, "failed", phase, step).await
    }

    /// Ends `run` with `status` at `(phase, step)` and releases its reservation.
    pub async fn end_run(
        &self,
        actor: &Actor,
        run: &agent_execution::Model,
        status: &str,
        phase: i32,
        step: i32,
    ) -> agent_execution::Model {
        self.set_run(run.id, status, phase, step).await;
        if let Some(reservation) = run.reservation_id {
            self.agents
                .billing
                .release_execution(&self.t.db, actor, reservation)
                .await
                .unwrap();
        }
        self.execution(run.id).await
    }

    pub async fn execution(&self, id: Uuid) -> agent_execution::Model {
        agent_execution::Entity::find_by_id(id)
            .one(&self.t.db)
            .await
            .unwrap()
            .expect("an execution")
    }

    pub async fn approval(&self, id: Uuid) -> action_approval::Model {
        action_approval::Entity::find_by_id(id)
            .one(&self.t.db)
            .await
            .unwrap()
            .expect("an approval")
    }

    pub async fn checkpoint(&self, id: Uuid) -> execution_checkpoint::Model {
        execution_checkpoint::Entity::find_by_id(id)
            .one(&self.t.db)
            .await
            .unwrap()
            .expect("a checkpoint")
    }

    pub async fn control(&self, execution_id: Uuid) -> execution_control::Model {
        execution_control::Entity::find()
            .filter(execution_control::Column::ExecutionId.eq(execution_id))
            .one(&self.t.db)
            .await
            .unwrap()
            .expect("a control row")
    }

    /// The run's events, oldest first, as `(kind, payload)`.
    pub async fn events(&self, execution_id: Uuid) -> Vec<(String, Json)> {
        agent_event::Entity::find()
            .filter(agent_event::Column::ExecutionId.eq(execution_id))
            .order_by_asc(agent_event::Column::Seq)
            .all(&self.t.db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.payload))
            .collect()
    }

    /// Executions resumed from `checkpoint_id`.
    pub async fn attempts_from(&self, checkpoint_id: Uuid) -> Vec<agent_execution::Model> {
        agent_execution::Entity::find()
            .filter(agent_execution::Column::ResumedFromCheckpointId.eq(checkpoint_id))
            .all(&self.t.db)
            .await
            .unwrap()
    }

    /// The approvals part of the schema, on this fixture's database and services.
    pub fn schema(&self) -> ApprovalSchema {
        Schema::build(
            agents::graphql::ApprovalQuery,
            agents::graphql::ApprovalMutation,
            EmptySubscription,
        )
        .data(self.t.db.clone())
        .data(self.agents.clone())
        .finish()
    }

    /// Runs `query` as `actor`; answers `(data, first error code, its field)`.
    pub async fn gql(
        &self,
        actor: &Actor,
        query: &str,
        variables: Json,
    ) -> (Json, Option<String>, Option<String>) {
        let resp = self
            .schema()
            .execute(
                Request::new(query)
                    .variables(Variables::from_json(variables))
                    .data(actor.clone()),
            )
            .await;
        let data = resp.data.into_json().unwrap();
        let first = resp.errors.first().and_then(|e| e.extensions.as_ref());
        let ext = |key: &str| {
            first
                .and_then(|x| x.get(key))
                .map(|v| v.clone().into_json().unwrap())
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        (data, ext("code"), ext("field"))
    }
}

pub type ApprovalSchema =
    Schema<agents::graphql::ApprovalQuery, agents::graphql::ApprovalMutation, EmptySubscription>;
