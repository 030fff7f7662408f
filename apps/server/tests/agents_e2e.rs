//! Issue 5 end to end, through the served API only: a customer starts an
//! execution with a local plan, pauses it mid-run, resumes it, answers its
//! approval, and follows every event on a `graphql-transport-ws`
//! subscription while a real worker plays the run.
//!
//! The runner is the local one behind a gate that lets one step through per
//! permit, so "mid-run" is a fact the test controls rather than a race.

mod common;

use agents::plan::Plan;
use agents::runner::{AgentRunner, LocalRunner, RunnerError, StepContext, StepOutput};
use agents::{AgentSettings, AgentWorker, Agents};
use common::ws::{WAIT, connect, recv, serve, subscribe};
use common::{TestApp, spawn_app};
use migration::m20261128_000008_billing_plans::STARTER_ID;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The local runner, one step per permit.
struct Gated {
    permits: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl AgentRunner for Gated {
    fn name(&self) -> &'static str {
        "local"
    }

    fn needs_plan(&self) -> bool {
        true
    }

    async fn plan(&self, task: &str, given: Option<&Plan>) -> Result<Plan, RunnerError> {
        LocalRunner.plan(task, given).await
    }

    async fn step(&self, ctx: StepContext<'_>) -> Result<StepOutput, RunnerError> {
        self.permits
            .acquire()
            .await
            .expect("the gate stays open")
            .forget();
        LocalRunner.step(ctx).await
    }
}

/// Serves `app` with agents on the gated runner, and a worker that ticks every 20 ms.
fn with_gated_agents(app: &mut TestApp, permits: Arc<Semaphore>) {
    let clock = kernel::clock::system();
    let billing = billing::Billing::local(clock.clone());
    let agents = Agents::new(
        AgentSettings::default(),
        clock,
        billing.clone(),
        Arc::new(Gated { permits }),
    );
    app.state.schema = server::build_schema_with_services(
        app.db.db.clone(),
        app.state.auth.clone(),
        kernel::crypto::KeyRing::single(1, [7; 32]),
        Arc::new(kernel::mail::LocalMailer),
        true,
        billing,
        agents.clone(),
    );
    let worker = AgentWorker::new(app.db.db.clone(), agents, "e2e-worker");
    tokio::spawn(async move {
        loop {
            let _ = kernel::jobs::run_once(&worker).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

fn data<'a>(body: &'a Value, field: &str) -> &'a Value {
    assert!(body["errors"].is_null(), "{field}: {body}");
    &body["data"][field]
}

async fn control_state(app: &TestApp, token: &str, run: &str) -> Value {
    let q = format!(r#"{{ agentExecution(id: "{run}") {{ status control {{ state }} }} }}"#);
    let body = app.gql(&q, Some(token)).await;
    data(&body, "agentExecution").clone()
}

#[actix_web::test]
async fn a_run_is_paused_mid_run_resumed_approved_and_followed_event_by_event() {
    let mut app = spawn_app().await;
    let permits = Arc::new(Semaphore::new(0));
    with_gated_agents(&mut app, permits.clone());
    let addr = serve(&app);

    // A customer on the Starter plan with a session.
    let token = app.register("owner@example.com").await;
    let q = format!(
        r#"mutation {{ subscribe(input: {{tierId: "{STARTER_ID}", frequency: MONTHLY}}) {{ status }} }}"#
    );
    assert_eq!(
        data(&app.gql(&q, Some(&token)).await, "subscribe")["status"],
        "ACTIVE"
    );
    let body = app
        .gql(
            r#"mutation { createAgentSession(input: {name: "Weekly report", maxIterations: 20}) { id } }"#,
            Some(&token),
        )
        .await;
    let session = data(&body, "createAgentSession")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two phases: research (think, search), then act (approval to send, send, finish).
    let start = json!({
        "query": "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id status } }",
        "variables": { "i": {
            "sessionId": session,
            "task": "Send the client their weekly report",
            "plan": [
                { "name": "research", "steps": [
                    { "think": { "text": "Find last week's numbers" } },
                    { "tool": { "name": "search", "params": { "q": "weekly numbers" },
                                "result": { "visits": 1200 }, "durationMs": 40 } }
                ]},
                { "name": "act", "steps": [
                    { "approval": { "actionType": "send_email",
                                    "description": "Send the report to the client",
                                    "params": { "to": "client@example.com" } } },
                    { "tool": { "name": "send_email", "params": { "to": "client@example.com" },
                                "result": { "sent": true } } },
                    { "finish": { "result": { "sent": true } } }
                ]}
            ]
        }}
    });
    let (_, body) = app.post_json(start, Some(&token)).await;
    let run = data(&body, "startExecution")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(data(&body, "startExecution")["status"], "PENDING");

    // Follow it over the WebSocket from its first event.
    let mut ws = connect(addr, Some(&token)).await;
    subscribe(
        &mut ws,
        "run",
        &format!(
            r#"subscription {{ executionEvents(executionId: "{run}") {{ seq kind payload }} }}"#
        ),
    )
    .await;
    let mut seen: Vec<Value> = Vec::new();
    // Reads events until one matches; returns it.
    async fn until(
        ws: &mut common::ws::Ws,
        seen: &mut Vec<Value>,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        loop {
            let msg = recv(ws).await;
            assert_eq!(msg["type"], "next", "{msg}");
            assert!(msg["payload"]["errors"].is_null(), "{msg}");
            let event = msg["payload"]["data"]["executionEvents"].clone();
            seen.push(event.clone());
            if want(&event) {
                return event;
            }
        }
    }

    // One permit: the worker plans, then plays the first step and waits at the second.
    permits.add_permits(1);
    until(&mut ws, &mut seen, |e| e["kind"] == "STEP").await;

    // Pause mid-run through GraphQL, then let the step in flight finish.
    let body = app
        .gql(
            &format!(r#"mutation {{ pauseExecution(id: "{run}", reason: "checking numbers") {{ state }} }}"#),
            Some(&token),
        )
        .await;
    assert_eq!(data(&body, "pauseExecution")["state"], "PAUSED");
    until(&mut ws, &mut seen, |e| {
        e["kind"] == "CONTROL_CHANGED" && e["payload"]["to"] == "paused"
    })
    .await;
    permits.add_permits(10);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = app
        .gql(
            &format!(r#"{{ executionEventLog(executionId: "{run}", first: 100) {{ seq kind }} }}"#),
            Some(&token),
        )
        .await;
    let held = data(&before, "executionEventLog").as_array().unwrap().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = app
        .gql(
            &format!(r#"{{ executionEventLog(executionId: "{run}", first: 100) {{ seq kind }} }}"#),
            Some(&token),
        )
        .await;
    assert_eq!(
        data(&after, "executionEventLog").as_array().unwrap().len(),
        held,
        "a paused run plays no step however many permits it has"
    );
    let state = control_state(&app, &token, &run).await;
    assert_eq!(state["status"], "EXECUTING");
    assert_eq!(state["control"]["state"], "PAUSED");
    let tool_calls_while_paused = app
        .gql(
            &format!(
                r#"{{ agentExecution(id: "{run}") {{ toolExecutions(first: 10) {{ nodes {{ toolName }} }} }} }}"#
            ),
            Some(&token),
        )
        .await;
    let calls = data(&tool_calls_while_paused, "agentExecution")["toolExecutions"]["nodes"]
        .as_array()
        .unwrap()
        .len();
    assert!(calls <= 1, "at most the step in flight finished: {calls}");

    // Resume: the run goes on until the high-risk send waits for a human.
    let body = app
        .gql(
            &format!(r#"mutation {{ resumeExecution(id: "{run}") {{ state }} }}"#),
            Some(&token),
        )
        .await;
    assert_eq!(data(&body, "resumeExecution")["state"], "RUNNING");
    let needed = until(&mut ws, &mut seen, |e| e["kind"] == "APPROVAL_NEEDED").await;
    assert_eq!(needed["payload"]["riskLevel"], "high");
    until(&mut ws, &mut seen, |e| {
        e["kind"] == "CONTROL_CHANGED" && e["payload"]["to"] == "awaiting_approval"
    })
    .await;
    let approval = needed["payload"]["approvalId"].as_str().unwrap().to_owned();
    let pending = app
        .gql(
            "{ actionApprovals(status: PENDING) { nodes { id } } }",
            Some(&token),
        )
        .await;
    assert_eq!(
        data(&pending, "actionApprovals")["nodes"][0]["id"],
        approval.as_str()
    );

    // Approve it: the worker sends and finishes.
    let body = app
        .gql(
            &format!(r#"mutation {{ approveAction(id: "{approval}") {{ status }} }}"#),
            Some(&token),
        )
        .await;
    assert_eq!(data(&body, "approveAction")["status"], "APPROVED");
    until(&mut ws, &mut seen, |e| {
        e["kind"] == "STATUS_CHANGED" && e["payload"]["to"] == "completed"
    })
    .await;
    let end = tokio::time::timeout(WAIT, recv(&mut ws)).await.unwrap();
    assert_eq!(
        end,
        json!({ "type": "complete", "id": "run" }),
        "the stream ends with the run"
    );

    // Every event of the run reached the subscriber, in order, without gaps.
    let log = app
        .gql(
            &format!(r#"{{ executionEventLog(executionId: "{run}", first: 100) {{ seq kind payload }} }}"#),
            Some(&token),
        )
        .await;
    let log = data(&log, "executionEventLog").as_array().unwrap().clone();
    assert_eq!(seen, log, "the subscriber saw exactly the run's event log");
    let seqs: Vec<i64> = seen.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let kinds: Vec<&str> = seen.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "STATUS_CHANGED",
        "STEP",
        "TOOL_CALL",
        "CONTROL_CHANGED",
        "APPROVAL_NEEDED",
        "APPROVAL_ANSWERED",
        "CHECKPOINT",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let statuses: Vec<&str> = seen
        .iter()
        .filter(|e| e["kind"] == "STATUS_CHANGED")
        .map(|e| e["payload"]["to"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "planning", "executing", "completed"]);
    let controls: Vec<&str> = seen
        .iter()
        .filter(|e| e["kind"] == "CONTROL_CHANGED")
        .map(|e| e["payload"]["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        controls,
        ["paused", "running", "awaiting_approval", "running"]
    );

    // The run's result, its two tool calls, and the execution it used.
    let body = app
        .gql(
            &format!(
                r#"{{ agentExecution(id: "{run}") {{ status result toolExecutions(first: 10) {{ nodes {{ toolName success }} }} }} }}"#
            ),
            Some(&token),
        )
        .await;
    let done = data(&body, "agentExecution");
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["result"], json!({ "sent": true }));
    let mut tools: Vec<&str> = done["toolExecutions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["toolName"].as_str().unwrap())
        .collect();
    tools.sort_unstable();
    assert_eq!(tools, ["search", "send_email"]);
}

#[actix_web::test]
async fn the_served_schema_accepts_the_three_level_sessions_page_of_the_issue() {
    let app = spawn_app().await;
    let token = app.register("reader@example.com").await;
    let body = app
        .gql(
            r#"mutation { createAgentSession(input: {name: "One"}) { id } }"#,
            Some(&token),
        )
        .await;
    data(&body, "createAgentSession");
    let query = "{ agentSessions(first: 20) { nodes { executions(first: 10) { nodes { \
                 toolExecutions(first: 10) { nodes { toolName } } } } } } }";
    let body = app.gql(query, Some(&token)).await;
    let nodes = data(&body, "agentSessions")["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "within the complexity limit: {body}");
    assert_eq!(nodes[0]["executions"]["nodes"], json!([]));
}

#[actix_web::test]
async fn negative_page_sizes_on_agent_lists_are_refused_not_a_crash() {
    let app = spawn_app().await;
    let token = app.register("hostile@example.com").await;
    for field in ["actionApprovals", "browserSessions", "knowledgeEntries"] {
        let query = format!("{{ {field}(first: -1, last: -1) {{ nodes {{ id }} }} }}");
        let body = app.gql(&query, Some(&token)).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{field}: {body}"
        );
    }
}

/// The served schema rolls a refused mutation back before it answers: the
/// execution row `resumeExecution` locked before refusing is free for
/// another instance the moment the answer is out (PostgreSQL; SQLite has
/// no row locks), and the run is claimable.
#[actix_web::test]
async fn the_served_schema_releases_a_refused_mutations_locks_before_it_answers() {
    let app = spawn_app().await;
    let token = app.register("owner@example.com").await;
    let actor = app
        .state
        .auth
        .authenticate(&app.db.db, &token)
        .await
        .unwrap();
    let q = format!(
        r#"mutation {{ subscribe(input: {{tierId: "{STARTER_ID}", frequency: MONTHLY}}) {{ status }} }}"#
    );
    data(&app.gql(&q, Some(&token)).await, "subscribe");
    let body = app
        .gql(
            r#"mutation { createAgentSession(input: {name: "Locks"}) { id } }"#,
            Some(&token),
        )
        .await;
    let session = data(&body, "createAgentSession")["id"].clone();
    let start = json!({
        "query": "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id } }",
        "variables": { "i": { "sessionId": session, "task": "t",
            "plan": [{ "name": "p", "steps": [{ "finish": { "result": 1 } }] }] } }
    });
    let (_, body) = app.post_json(start, Some(&token)).await;
    let run = data(&body, "startExecution")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run_id = uuid::Uuid::parse_str(&run).unwrap();

    let resume = format!(r#"mutation {{ resumeExecution(id: "{run}") {{ state }} }}"#);
    let answer = app
        .state
        .schema
        .execute(async_graphql::Request::new(resume).data(actor))
        .await;
    let code = answer.errors[0].extensions.as_ref().unwrap().get("code");
    assert_eq!(
        code.map(ToString::to_string).as_deref(),
        Some("\"INVALID_TRANSITION\""),
        "a running run is not resumable"
    );
    if let Some(free) = app.db.row_lockable_elsewhere("agent_executions", run_id) {
        assert!(free, "the refused mutation still held the execution row");
    }
}
