//! Fixtures of the read API and session tests: a schema with the session
//! roots and the agents loaders, and rows written in bulk (executions in any
//! status, tool calls, approvals, checkpoints, control rows).
#![allow(dead_code)]

use crate::common::Fixture;
use agents::entity::{
    action_approval, agent_execution, execution_checkpoint, execution_control, tool_execution,
};
use agents::graphql::{SessionMutation, SessionQuery, register_loaders};
use async_graphql::{EmptySubscription, Request, Schema, Variables};
use kernel::actor::Actor;
use kernel::clock::Clock;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};
use uuid::Uuid;

/// The schema under test.
pub type TestSchema = Schema<SessionQuery, SessionMutation, EmptySubscription>;

/// Rows are written this many at a time, well under both databases' bind limits.
const CHUNK: usize = 100;

/// The agents fixture with the session roots mounted.
pub struct Api {
    pub f: Fixture,
    pub schema: TestSchema,
}

impl Api {
    pub async fn new() -> Self {
        let f = Fixture::new().await;
        let schema = Schema::build(SessionQuery, SessionMutation, EmptySubscription)
            .data(f.t.db.clone())
            .data(f.agents.clone())
            .finish();
        Self { f, schema }
    }

    /// Runs `query` as `actor` with the loaders registered as the server does.
    pub async fn run(&self, actor: &Actor, query: &str, vars: Value) -> Value {
        let request = Request::new(query)
            .variables(Variables::from_json(vars))
            .data(actor.clone());
        let request = register_loaders(request, &self.f.t.db);
        let response = self.schema.execute(request).await;
        serde_json::to_value(&response).expect("response serialises")
    }

    /// Runs `query` without registering the loaders (a schema built without the server's wiring).
    pub async fn run_unwired(&self, actor: &Actor, query: &str, vars: Value) -> Value {
        let request = Request::new(query)
            .variables(Variables::from_json(vars))
            .data(actor.clone());
        let response = self.schema.execute(request).await;
        serde_json::to_value(&response).expect("response serialises")
    }

    /// Runs `query` and returns its data; panics on errors.
    pub async fn data(&self, actor: &Actor, query: &str, vars: Value) -> Value {
        let body = self.run(actor, query, vars).await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// `n` sessions of `actor`.
    pub async fn sessions(&self, actor: &Actor, n: usize) -> Vec<Uuid> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.f.session(actor, 100).await.id);
        }
        ids
    }

    /// `n` executions in `status` under each of `sessions`, owned by `owner`
    /// (a row whose owner differs from its session's is how a test plants a
    /// cross-tenant row).
    pub async fn executions(
        &self,
        owner: Uuid,
        sessions: &[Uuid],
        n: usize,
        status: &str,
    ) -> Vec<Uuid> {
        let now = self.f.clock.now();
        let rows: Vec<agent_execution::ActiveModel> = sessions
            .iter()
            .flat_map(|s| std::iter::repeat_n(*s, n))
            .map(|session_id| (session_id, new_id()))
            .map(|(session_id, id)| agent_execution::ActiveModel {
                id: Set(id),
                session_id: Set(session_id),
                user_id: Set(owner),
                task_description: Set("Fixture task".into()),
                status: Set(status.into()),
                runner: Set("local".into()),
                plan: Set(None),
                current_phase_index: Set(0),
                step_index: Set(0),
                thinking_steps: Set(json!([])),
                result: Set(None),
                error: Set(None),
                iterations: Set(0),
                duration_ms: Set(None),
                reservation_id: Set(None),
                resumed_from_checkpoint_id: Set(None),
                root_execution_id: Set(id),
                attempt: Set(1),
                claimed_by: Set(None),
                claim_expires_at: Set(None),
                event_seq: Set(0),
                started_at: Set(None),
                completed_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            })
            .collect();
        let ids = rows.iter().map(|r| *r.id.as_ref()).collect();
        for chunk in rows.chunks(CHUNK) {
            agent_execution::Entity::insert_many(chunk.to_vec())
                .exec(&self.f.t.db)
                .await
                .expect("insert executions");
        }
        ids
    }

    /// `n` tool calls under each of `executions`, owned by `owner`.
    pub async fn tool_calls(&self, owner: Uuid, executions: &[Uuid], n: usize) -> Vec<Uuid> {
        let now = self.f.clock.now();
        let rows: Vec<tool_execution::ActiveModel> = executions
            .iter()
            .flat_map(|e| (0..n).map(move |i| (*e, i)))
            .map(|(execution_id, i)| tool_execution::ActiveModel {
                id: Set(new_id()),
                execution_id: Set(execution_id),
                user_id: Set(owner),
                phase_index: Set(0),
                step_index: Set(i as i32),
                tool_name: Set(format!("tool-{i}")),
                parameters: Set(None),
                result: Set(None),
                success: Set(true),
                duration_ms: Set(Some(5)),
                error: Set(None),
                executed_at: Set(now),
            })
            .collect();
        let ids = rows.iter().map(|r| *r.id.as_ref()).collect();
        for chunk in rows.chunks(CHUNK) {
            tool_execution::Entity::insert_many(chunk.to_vec())
                .exec(&self.f.t.db)
                .await
                .expect("insert tool calls");
        }
        ids
    }

    /// A control row `running` for `execution`.
    pub async fn control(&self, owner: Uuid, execution: Uuid) {
        let now = self.f.clock.now();
        execution_control::ActiveModel {
            id: Set(new_id()),
            execution_id: Set(execution),
            user_id: Set(owner),
            control_state: Set("running".into()),
            state_reason: Set(None),
            injected_instruction: Set(None),
            injected_at: Set(None),
            checkpoint_data: Set(None),
            last_state_change: Set(now),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.f.t.db)
        .await
        .expect("insert control");
    }

    /// `n` pending approvals of `execution`, one per step.
    pub async fn approvals(&self, owner: Uuid, execution: Uuid, n: usize) -> Vec<Uuid> {
        let now = self.f.clock.now();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let row = action_approval::ActiveModel {
                id: Set(new_id()),
                execution_id: Set(execution),
                user_id: Set(owner),
                phase_index: Set(0),
                step_index: Set(i as i32),
                action_type: Set("send_email".into()),
                action_description: Set("Send the report".into()),
                action_params: Set(json!({})),
                risk_level: Set("high".into()),
                risk_factors: Set(json!(["sending"])),
                screenshot_url: Set(None),
                status: Set("pending".into()),
                approved_at: Set(None),
                rejected_at: Set(None),
                rejection_reason: Set(None),
                expires_at: Set(now + chrono::Duration::minutes(5)),
                timeout_action: Set("reject".into()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&self.f.t.db)
            .await
            .expect("insert approval");
            ids.push(row.id);
        }
        ids
    }

    /// `n` manual checkpoints of `execution`.
    pub async fn checkpoints(&self, owner: Uuid, execution: Uuid, n: usize) -> Vec<Uuid> {
        let now = self.f.clock.now();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let row = execution_checkpoint::ActiveModel {
                id: Set(new_id()),
                execution_id: Set(execution),
                user_id: Set(owner),
                phase_index: Set(i as i32),
                phase_name: Set(None),
                step_index: Set(0),
                completed_steps: Set(json!([])),
                completed_phases: Set(json!([])),
                partial_results: Set(json!({})),
                extracted_data: Set(json!({})),
                session_state: Set(None),
                browser_context: Set(None),
                error_info: Set(None),
                checkpoint_reason: Set("manual".into()),
                can_resume: Set(true),
                resume_count: Set(0),
                created_at: Set(now),
                expires_at: Set(None),
            }
            .insert(&self.f.t.db)
            .await
            .expect("insert checkpoint");
            ids.push(row.id);
        }
        ids
    }

    /// Rows of `table` (a fixed name from the test).
    pub async fn count(&self, table: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        let backend = self.f.t.db.get_database_backend();
        let row = self
            .f
            .t
            .db
            .query_one_raw(kernel::db::raw(
                backend,
                &format!("SELECT COUNT(*) AS n FROM {table}"),
                vec![],
            ))
            .await
            .expect("count")
            .expect("one row");
        row.try_get::<i64>("", "n")
            .or_else(|_| row.try_get::<i32>("", "n").map(i64::from))
            .expect("count column")
    }
}

/// The `extensions.code` of the first error, or `<none>`.
pub fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

/// The `extensions.field` of the first error, or `<none>`.
pub fn field(body: &Value) -> String {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

/// The ids of a connection's nodes, in order.
pub fn ids(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

/// `ids` as strings, newest first (v7 ids sort by creation).
pub fn newest_first(ids: &[Uuid]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.into_iter().map(|i| i.to_string()).collect()
}
