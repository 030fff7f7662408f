//! Live progress over a real `graphql-transport-ws` connection: a TCP server
//! on port 0, a WebSocket client authenticated by the connection-init payload,
//! and the run's events as the services write them.

mod common;

use agents::Agents;
use agents::approvals;
use agents::entity::agent_execution;
use agents::events::{self, EventKind};
use agents::executions::{self, StartExecution};
use agents::plan::{Phase, Plan, PlanStep};
use agents::runner::ApprovalNeeded;
use agents::sessions::{self, NewSession};
use common::ws::{connect, open, recv, send, serve, subscribe};
use common::{TestApp, spawn_app};
use kernel::actor::{Actor, Credential, Role};
use kernel::db::raw;
use migration::m20261128_000008_billing_plans::STARTER_ID;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use uuid::Uuid;

fn events_query(run: &agent_execution::Model) -> String {
    format!(
        r#"subscription {{ executionEvents(executionId: "{}") {{ seq executionId kind payload createdAt }} }}"#,
        run.id
    )
}

/// The `executionEvents` payload of a `next` message for subscription `id`.
fn event<'a>(msg: &'a Value, id: &str) -> &'a Value {
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["id"], id);
    assert!(msg["payload"]["errors"].is_null(), "no error: {msg}");
    &msg["payload"]["data"]["executionEvents"]
}

/// A registered user on the Starter plan: its token and an actor for the services.
async fn customer(app: &TestApp, email: &str) -> (String, Actor) {
    let token = app.register(email).await;
    let q = format!(
        r#"mutation {{ subscribe(input: {{tierId: "{STARTER_ID}", frequency: MONTHLY}}) {{ status }} }}"#
    );
    let body = app.gql(&q, Some(&token)).await;
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");
    let me = app.gql("{ me { id } }", Some(&token)).await;
    let user_id = Uuid::parse_str(me["data"]["me"]["id"].as_str().unwrap()).unwrap();
    let actor = Actor {
        user_id,
        role: Role::User,
        credential: Credential::Session {
            session_id: Uuid::now_v7(),
        },
    };
    (token, actor)
}

/// A `pending` run of `actor`, written by the services on the app's database.
async fn start_run(app: &TestApp, agents: &Agents, actor: &Actor) -> agent_execution::Model {
    let db = &app.db.db;
    let session = NewSession::parse("Live".into(), None, Some(20)).unwrap();
    let session = sessions::create(db, actor, session, chrono::Utc::now())
        .await
        .unwrap();
    let plan = Plan {
        phases: vec![Phase {
            name: "only".into(),
            steps: vec![PlanStep::Finish {
                result: json!("ok"),
            }],
        }],
    };
    let req = StartExecution::parse(session.id, "Watch me".into(), Some(plan)).unwrap();
    executions::start(db, agents, actor, req).await.unwrap()
}

async fn emit(app: &TestApp, run: &agent_execution::Model, kind: EventKind, payload: Value) {
    events::emit(
        &app.db.db,
        run.id,
        run.user_id,
        kind,
        payload,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
}

/// The worker's last move: the final status and its event, in one transaction.
async fn complete(app: &TestApp, run: &agent_execution::Model) {
    let txn = app.db.db.begin().await.unwrap();
    txn.execute_raw(raw(
        txn.get_database_backend(),
        "UPDATE agent_executions SET status = 'completed' WHERE id = ?",
        vec![run.id.into()],
    ))
    .await
    .unwrap();
    events::emit(
        &txn,
        run.id,
        run.user_id,
        EventKind::StatusChanged,
        json!({ "from": "executing", "to": "completed" }),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
}

fn delete_action() -> ApprovalNeeded {
    ApprovalNeeded {
        action_type: "delete".into(),
        description: "Delete the old drafts".into(),
        params: json!({ "folder": "drafts" }),
        timeout_action: None,
    }
}

#[actix_web::test]
async fn a_client_with_a_bearer_token_follows_its_run_to_the_end_over_the_websocket() {
    let app = spawn_app().await;
    let addr = serve(&app);
    let agents = Agents::local(kernel::clock::system());
    let (token, alice) = customer(&app, "alice@example.com").await;
    let run = start_run(&app, &agents, &alice).await;
    let mut ws = connect(addr, Some(&token)).await;
    subscribe(&mut ws, "1", &events_query(&run)).await;

    let first = recv(&mut ws).await;
    assert_eq!(event(&first, "1")["seq"], 1);
    assert_eq!(event(&first, "1")["kind"], "STATUS_CHANGED");
    assert_eq!(event(&first, "1")["payload"]["to"], "pending");
    assert_eq!(event(&first, "1")["executionId"], run.id.to_string());

    emit(
        &app,
        &run,
        EventKind::StatusChanged,
        json!({ "from": "pending", "to": "planning" }),
    )
    .await;
    emit(
        &app,
        &run,
        EventKind::Step,
        json!({ "thought": "look around" }),
    )
    .await;
    emit(
        &app,
        &run,
        EventKind::ToolCall,
        json!({ "toolName": "search", "success": true }),
    )
    .await;
    let approval = approvals::request(&app.db.db, &agents, &run, 0, 0, delete_action())
        .await
        .unwrap();
    complete(&app, &run).await;

    let mut seen = Vec::new();
    loop {
        let msg = recv(&mut ws).await;
        if msg["type"] == "complete" {
            assert_eq!(msg["id"], "1");
            break;
        }
        seen.push(event(&msg, "1").clone());
    }
    let seqs: Vec<i64> = seen.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6], "in order, no gap, then complete");
    let kinds: Vec<&str> = seen.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "STATUS_CHANGED",
            "STEP",
            "TOOL_CALL",
            "APPROVAL_NEEDED",
            "STATUS_CHANGED"
        ]
    );
    assert_eq!(seen[3]["payload"]["approvalId"], approval.id.to_string());
    assert_eq!(seen[3]["payload"]["riskLevel"], "high");
    assert_eq!(seen[4]["payload"]["to"], "completed");
}

#[actix_web::test]
async fn pending_approvals_reach_their_owner_over_the_websocket() {
    let app = spawn_app().await;
    let addr = serve(&app);
    let agents = Agents::local(kernel::clock::system());
    let (token, alice) = customer(&app, "alice@example.com").await;
    let (_, bob) = customer(&app, "bob@example.com").await;
    let run = start_run(&app, &agents, &alice).await;
    let bobs_run = start_run(&app, &agents, &bob).await;
    let mut ws = connect(addr, Some(&token)).await;
    subscribe(
        &mut ws,
        "a",
        "subscription { pendingApprovals { id executionId riskLevel status } }",
    )
    .await;
    let empty = recv(&mut ws).await;
    assert_eq!(
        empty["payload"]["data"]["pendingApprovals"],
        json!([]),
        "{empty}"
    );

    approvals::request(&app.db.db, &agents, &bobs_run, 0, 0, delete_action())
        .await
        .unwrap();
    let mine = approvals::request(&app.db.db, &agents, &run, 0, 0, delete_action())
        .await
        .unwrap();
    let msg = recv(&mut ws).await;
    assert_eq!(msg["type"], "next");
    assert_eq!(msg["id"], "a");
    let list = msg["payload"]["data"]["pendingApprovals"]
        .as_array()
        .unwrap();
    assert_eq!(list.len(), 1, "only alice's: {msg}");
    assert_eq!(list[0]["id"], mine.id.to_string());
    assert_eq!(list[0]["executionId"], run.id.to_string());
    assert_eq!(list[0]["status"], "PENDING");
}

#[actix_web::test]
async fn a_bad_token_is_refused_at_connection_init() {
    let app = spawn_app().await;
    let addr = serve(&app);
    let mut ws = open(addr).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-token" } }),
    )
    .await;
    let refused = recv(&mut ws).await;
    assert_ne!(refused["type"], "connection_ack", "{refused}");
    assert!(refused["close"].as_i64().unwrap() > 0, "closed: {refused}");
    assert_eq!(refused["reason"], "invalid or expired token");
}

#[actix_web::test]
async fn another_users_run_is_not_found_and_an_anonymous_connection_is_unauthenticated() {
    let app = spawn_app().await;
    let addr = serve(&app);
    let agents = Agents::local(kernel::clock::system());
    let (_, alice) = customer(&app, "alice@example.com").await;
    let mallory = app.register("mallory@example.com").await;
    let run = start_run(&app, &agents, &alice).await;

    let mut ws = connect(addr, Some(&mallory)).await;
    subscribe(&mut ws, "x", &events_query(&run)).await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
    assert!(
        refused["payload"]["data"].is_null(),
        "nothing of alice's run: {refused}"
    );
    assert_eq!(
        recv(&mut ws).await,
        json!({ "type": "complete", "id": "x" })
    );

    let mut anonymous = connect(addr, None).await;
    subscribe(&mut anonymous, "y", &events_query(&run)).await;
    let refused = recv(&mut anonymous).await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}
