//! Live progress through the schema: `executionEvents` delivers a run's
//! events in order without gaps while another task writes them, resumes with
//! `afterSeq`, ends after the final status, and shows only the caller's runs;
//! `pendingApprovals` emits the caller's set at once and on every change.

mod common;

use agents::approvals;
use agents::entity::agent_execution;
use agents::events::{self, EventKind};
use agents::executions::{self, StartExecution};
use agents::graphql::{AgentSubscription, ExecutionEventQuery};
use agents::live::RECHECK_AFTER_IDLE_POLLS;
use agents::plan::{Phase, Plan, PlanStep};
use agents::runner::ApprovalNeeded;
use agents::status::ExecutionStatus;
use async_graphql::{EmptyMutation, Request, Response, Schema};
use common::Fixture;
use futures_util::{Stream, StreamExt};
use kernel::actor::Actor;
use kernel::db::raw;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

type LiveSchema = Schema<ExecutionEventQuery, EmptyMutation, AgentSubscription>;

/// How often the streams poll in these tests.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait for one message before a test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

fn schema(f: &Fixture) -> LiveSchema {
    let mut agents = f.agents.clone();
    agents.settings.events_poll = POLL;
    Schema::build(ExecutionEventQuery, EmptyMutation, AgentSubscription)
        .data(f.t.db.clone())
        .data(agents)
        .finish()
}

fn request(query: &str, actor: Option<&Actor>) -> Request {
    let req = Request::new(query);
    match actor {
        Some(a) => req.data(a.clone()),
        None => req,
    }
}

fn subscribe(
    s: &LiveSchema,
    query: &str,
    actor: Option<&Actor>,
) -> impl Stream<Item = Response> + Send + Unpin + use<> {
    s.execute_stream(request(query, actor)).boxed()
}

/// The next message as JSON; fails the test after [`WAIT`].
async fn next(stream: &mut (impl Stream<Item = Response> + Unpin)) -> Option<Value> {
    let msg = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a message within the wait");
    msg.map(|r| serde_json::to_value(r).expect("response serialises"))
}

/// Every message until the stream ends.
async fn drain(stream: &mut (impl Stream<Item = Response> + Unpin)) -> Vec<Value> {
    let mut all = Vec::new();
    while let Some(msg) = next(stream).await {
        all.push(msg);
    }
    all
}

fn code(msg: &Value) -> &str {
    msg["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

fn event(msg: &Value) -> &Value {
    assert!(msg["errors"].is_null(), "no error: {msg}");
    &msg["data"]["executionEvents"]
}

fn seqs(msgs: &[Value]) -> Vec<i64> {
    msgs.iter()
        .map(|m| event(m)["seq"].as_i64().unwrap())
        .collect()
}

fn events_query(run: &agent_execution::Model, after: Option<i32>) -> String {
    let after = after
        .map(|n| format!(", afterSeq: {n}"))
        .unwrap_or_default();
    format!(
        r#"subscription {{ executionEvents(executionId: "{}"{after}) {{ seq executionId kind payload createdAt }} }}"#,
        run.id
    )
}

const APPROVALS: &str =
    "subscription { pendingApprovals { id executionId actionType riskLevel status } }";

fn plan() -> Plan {
    Plan {
        phases: vec![Phase {
            name: "only".into(),
            steps: vec![PlanStep::Finish {
                result: json!("ok"),
            }],
        }],
    }
}

/// A run of `actor`, `pending`, whose log holds its first event (seq 1).
async fn start_run(f: &Fixture, actor: &Actor) -> agent_execution::Model {
    let session = f.session(actor, 50).await;
    let req = StartExecution::parse(session.id, "Watch me".into(), Some(plan())).unwrap();
    executions::start(&f.t.db, &f.agents, actor, req)
        .await
        .unwrap()
}

async fn emit(db: &impl ConnectionTrait, run: &agent_execution::Model, kind: EventKind, n: i64) {
    events::emit(
        db,
        run.id,
        run.user_id,
        kind,
        json!({ "n": n }),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
}

/// What the worker does at the end: the status write and its event in one transaction.
async fn finish(db: &DatabaseConnection, run: &agent_execution::Model, to: ExecutionStatus) {
    let from = ExecutionStatus::Executing;
    from.transition(to).unwrap();
    let txn = db.begin().await.unwrap();
    txn.execute_raw(raw(
        txn.get_database_backend(),
        "UPDATE agent_executions SET status = ? WHERE id = ?",
        vec![to.as_str().into(), run.id.into()],
    ))
    .await
    .unwrap();
    events::emit(
        &txn,
        run.id,
        run.user_id,
        EventKind::StatusChanged,
        json!({ "from": from.as_str(), "to": to.as_str() }),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    // Written with the final status: the stream must still deliver it.
    events::emit(
        &txn,
        run.id,
        run.user_id,
        EventKind::Checkpoint,
        json!({ "reason": "phase_complete" }),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
}

async fn high_risk_approval(f: &Fixture, run: &agent_execution::Model, step: i32) -> Uuid {
    let action = ApprovalNeeded {
        action_type: "delete".into(),
        description: "Delete the old drafts".into(),
        params: json!({ "folder": "drafts" }),
        timeout_action: None,
    };
    let approval = approvals::request(&f.t.db, &f.agents, run, 0, step, action)
        .await
        .unwrap();
    assert_eq!(approval.status, "pending", "high risk waits for a human");
    approval.id
}

async fn set_approval_status(f: &Fixture, id: Uuid, status: &str) {
    f.exec(
        "UPDATE action_approvals SET status = ? WHERE id = ?",
        vec![status.into(), id.into()],
    )
    .await;
}

fn approval_ids(msg: &Value) -> Vec<String> {
    assert!(msg["errors"].is_null(), "no error: {msg}");
    msg["data"]["pendingApprovals"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn events_arrive_in_order_without_gaps_while_another_task_writes_them() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    let s = schema(&f);
    let mut stream = subscribe(&s, &events_query(&run, None), Some(&alice));
    let first = next(&mut stream).await.unwrap();
    assert_eq!(event(&first)["seq"], 1);
    assert_eq!(event(&first)["kind"], "STATUS_CHANGED");
    assert_eq!(event(&first)["payload"]["to"], "pending");
    assert_eq!(event(&first)["executionId"], run.id.to_string());

    // More than one poll's batch, written one transaction at a time while subscribed.
    let (db, writer_run) = (f.t.db.clone(), run.clone());
    let writer = tokio::spawn(async move {
        for n in 0..150 {
            let kind = match n % 3 {
                0 => EventKind::Step,
                1 => EventKind::ToolCall,
                _ => EventKind::ControlChanged,
            };
            emit(&db, &writer_run, kind, n).await;
            if n % 40 == 0 {
                tokio::time::sleep(POLL * 2).await;
            }
        }
        finish(&db, &writer_run, ExecutionStatus::Completed).await;
    });
    let rest = drain(&mut stream).await;
    writer.await.unwrap();

    assert_eq!(
        seqs(&rest),
        (2..=153).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert_eq!(event(&rest[0])["kind"], "STEP");
    assert_eq!(event(&rest[1])["kind"], "TOOL_CALL");
    assert_eq!(event(&rest[2])["kind"], "CONTROL_CHANGED");
    assert_eq!(event(&rest[0])["payload"]["n"], 0);
    let last_two = &rest[rest.len() - 2..];
    assert_eq!(event(&last_two[0])["kind"], "STATUS_CHANGED");
    assert_eq!(event(&last_two[0])["payload"]["to"], "completed");
    assert_eq!(
        event(&last_two[1])["kind"],
        "CHECKPOINT",
        "the final transaction's later event is delivered before the end"
    );
}

#[tokio::test]
async fn after_seq_resumes_without_gaps_and_the_log_query_pages_the_same_events() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    for n in 0..5 {
        emit(&f.t.db, &run, EventKind::Step, n).await;
    }
    let s = schema(&f);
    let mut stream = subscribe(&s, &events_query(&run, Some(3)), Some(&alice));
    let resumed = [
        next(&mut stream).await.unwrap(),
        next(&mut stream).await.unwrap(),
    ];
    assert_eq!(seqs(&resumed), vec![4, 5], "starts right after afterSeq");
    emit(&f.t.db, &run, EventKind::ToolCall, 5).await;
    finish(&f.t.db, &run, ExecutionStatus::Failed).await;
    let rest = drain(&mut stream).await;
    assert_eq!(seqs(&rest), vec![6, 7, 8, 9]);
    assert_eq!(event(&rest[2])["payload"]["to"], "failed");

    let page = |after: i32, first: i32| {
        format!(
            r#"{{ executionEventLog(executionId: "{}", afterSeq: {after}, first: {first}) {{ seq kind }} }}"#,
            run.id
        )
    };
    let body = serde_json::to_value(s.execute(request(&page(2, 3), Some(&alice))).await).unwrap();
    let log: Vec<i64> = body["data"]["executionEventLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(log, vec![3, 4, 5]);
    let body = serde_json::to_value(s.execute(request(&page(0, 101), Some(&alice))).await).unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "first");
}

#[tokio::test]
async fn a_finished_run_replays_its_log_then_ends_and_a_caught_up_client_ends_at_once() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    emit(&f.t.db, &run, EventKind::Step, 0).await;
    finish(&f.t.db, &run, ExecutionStatus::Cancelled).await;
    let s = schema(&f);
    let all = drain(&mut subscribe(&s, &events_query(&run, None), Some(&alice))).await;
    assert_eq!(seqs(&all), vec![1, 2, 3, 4]);
    assert_eq!(event(&all[2])["payload"]["to"], "cancelled");
    let none = drain(&mut subscribe(
        &s,
        &events_query(&run, Some(4)),
        Some(&alice),
    ))
    .await;
    assert!(none.is_empty(), "nothing left to send: {none:?}");
}

#[tokio::test]
async fn a_running_stream_does_not_end_before_the_final_status() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    let s = schema(&f);
    let mut stream = subscribe(&s, &events_query(&run, None), Some(&alice));
    next(&mut stream).await.unwrap();
    // A non-final status change does not end it.
    events::emit(
        &f.t.db,
        run.id,
        run.user_id,
        EventKind::StatusChanged,
        json!({ "from": "pending", "to": "planning" }),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let planning = next(&mut stream).await.unwrap();
    assert_eq!(event(&planning)["payload"]["to"], "planning");
    let idle = tokio::time::timeout(POLL * 10, stream.next()).await;
    assert!(idle.is_err(), "still open while the run goes on: {idle:?}");
    // The timeout may have cut the stream's poll short mid-query, holding
    // SQLite's one connection inside the stream: keep polling the stream
    // while the next event is written, so that query finishes and frees it.
    let (_, got) = tokio::join!(emit(&f.t.db, &run, EventKind::Step, 1), next(&mut stream));
    assert_eq!(event(&got.unwrap())["seq"], 3);
}

#[tokio::test]
async fn another_users_run_is_not_found_and_anonymous_callers_are_unauthenticated() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let mallory = f.subscribed_user("mallory@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    let s = schema(&f);

    let refused = drain(&mut subscribe(
        &s,
        &events_query(&run, None),
        Some(&mallory),
    ))
    .await;
    assert_eq!(
        refused.len(),
        1,
        "one error, then the stream ends: {refused:?}"
    );
    assert_eq!(code(&refused[0]), "NOT_FOUND");
    let unknown = format!(
        r#"subscription {{ executionEvents(executionId: "{}") {{ seq }} }}"#,
        Uuid::now_v7()
    );
    assert_eq!(
        code(&drain(&mut subscribe(&s, &unknown, Some(&alice))).await[0]),
        "NOT_FOUND"
    );
    let anonymous = drain(&mut subscribe(&s, &events_query(&run, None), None)).await;
    assert_eq!(code(&anonymous[0]), "UNAUTHENTICATED");
    assert_eq!(
        code(&drain(&mut subscribe(&s, APPROVALS, None)).await[0]),
        "UNAUTHENTICATED"
    );
    let bad = r#"subscription { executionEvents(executionId: "nope") { seq } }"#;
    let bad = drain(&mut subscribe(&s, bad, Some(&alice))).await;
    assert_eq!(code(&bad[0]), "BAD_USER_INPUT");
    assert_eq!(bad[0]["errors"][0]["extensions"]["field"], "executionId");
    let negative = drain(&mut subscribe(
        &s,
        &events_query(&run, Some(-1)),
        Some(&alice),
    ))
    .await;
    assert_eq!(negative[0]["errors"][0]["extensions"]["field"], "afterSeq");

    let log = format!(
        r#"{{ executionEventLog(executionId: "{}") {{ seq }} }}"#,
        run.id
    );
    let body = serde_json::to_value(s.execute(request(&log, Some(&mallory))).await).unwrap();
    assert_eq!(code(&body), "NOT_FOUND");
    let body = serde_json::to_value(s.execute(request(&log, Some(&alice))).await).unwrap();
    assert_eq!(
        body["data"]["executionEventLog"][0]["seq"], 1,
        "the owner reads it"
    );
}

#[tokio::test]
async fn a_subscriber_sees_only_its_own_runs_events_while_others_are_busy() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let bob = f.subscribed_user("bob@example.com", 100, 10).await;
    let mine = start_run(&f, &alice).await;
    let other_mine = start_run(&f, &alice).await;
    let theirs = start_run(&f, &bob).await;
    let s = schema(&f);
    let mut stream = subscribe(&s, &events_query(&mine, None), Some(&alice));
    next(&mut stream).await.unwrap();
    for n in 0..10 {
        emit(&f.t.db, &theirs, EventKind::Step, n).await;
        emit(&f.t.db, &other_mine, EventKind::Step, n).await;
        if n % 3 == 0 {
            emit(&f.t.db, &mine, EventKind::ToolCall, n).await;
        }
    }
    finish(&f.t.db, &mine, ExecutionStatus::Completed).await;
    let rest = drain(&mut stream).await;
    assert_eq!(seqs(&rest), vec![2, 3, 4, 5, 6, 7]);
    for msg in &rest {
        assert_eq!(event(msg)["executionId"], mine.id.to_string());
    }
}

#[tokio::test]
async fn pending_approvals_are_sent_at_once_and_on_every_change_and_never_another_users() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let bob = f.subscribed_user("bob@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    let bobs_run = start_run(&f, &bob).await;
    let bobs = high_risk_approval(&f, &bobs_run, 0).await;
    let s = schema(&f);
    let mut stream = subscribe(&s, APPROVALS, Some(&alice));
    assert!(
        approval_ids(&next(&mut stream).await.unwrap()).is_empty(),
        "bob's is not shown"
    );

    // Added.
    let first = high_risk_approval(&f, &run, 0).await;
    let msg = next(&mut stream).await.unwrap();
    assert_eq!(approval_ids(&msg), vec![first.to_string()]);
    assert_eq!(msg["data"]["pendingApprovals"][0]["riskLevel"], "HIGH");
    assert_eq!(msg["data"]["pendingApprovals"][0]["status"], "PENDING");
    let second = high_risk_approval(&f, &run, 1).await;
    // Another user's changes do not reach alice: her next message is her own change.
    high_risk_approval(&f, &bobs_run, 1).await;
    set_approval_status(&f, bobs, "approved").await;
    assert_eq!(
        approval_ids(&next(&mut stream).await.unwrap()),
        vec![first.to_string(), second.to_string()]
    );

    // Answered.
    set_approval_status(&f, first, "approved").await;
    assert_eq!(
        approval_ids(&next(&mut stream).await.unwrap()),
        vec![second.to_string()]
    );

    // Expired, before the expiry job ran: its deadline passed.
    f.clock
        .advance(f.agents.settings.approval_ttl + chrono::Duration::seconds(1));
    assert!(approval_ids(&next(&mut stream).await.unwrap()).is_empty());

    // Expired by the job, for a newer one.
    let third = high_risk_approval(&f, &run, 2).await;
    assert_eq!(
        approval_ids(&next(&mut stream).await.unwrap()),
        vec![third.to_string()]
    );
    set_approval_status(&f, third, "expired").await;
    assert!(approval_ids(&next(&mut stream).await.unwrap()).is_empty());

    // Nothing changes: nothing is sent.
    let idle = tokio::time::timeout(POLL * 10, stream.next()).await;
    assert!(idle.is_err(), "no message without a change: {idle:?}");
}

#[tokio::test]
async fn dropping_a_stream_stops_its_polling() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    let s = schema(&f);
    let mut events = subscribe(&s, &events_query(&run, None), Some(&alice));
    let mut approvals = subscribe(&s, APPROVALS, Some(&alice));
    next(&mut events).await.unwrap();
    next(&mut approvals).await.unwrap();
    // Polled only while the consumer asks for more, as a WebSocket connection does.
    let pump = tokio::spawn(async move {
        let _ = tokio::join!(events.next(), approvals.next());
    });
    f.t.reset_statements();
    tokio::time::sleep(POLL * 10).await;
    assert!(f.t.statements() >= 4, "both streams poll while open");
    pump.abort();
    let _ = pump.await;
    tokio::time::sleep(POLL * 2).await;
    f.t.reset_statements();
    tokio::time::sleep(POLL * 10).await;
    assert_eq!(f.t.statements(), 0, "no query once the streams are dropped");
}

#[tokio::test]
async fn an_event_written_through_another_pool_reaches_the_subscriber_on_postgres() {
    let f = Fixture::new().await;
    let Some(other_instance) = f.t.another_pool().await else {
        // One in-memory SQLite database cannot be opened by a second pool.
        eprintln!("skipped: needs DATABASE_URL=postgres://...");
        return;
    };
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    let s = schema(&f);
    let mut stream = subscribe(&s, &events_query(&run, None), Some(&alice));
    next(&mut stream).await.unwrap();
    emit(&other_instance, &run, EventKind::ToolCall, 7).await;
    let msg = next(&mut stream).await.unwrap();
    assert_eq!(event(&msg)["seq"], 2);
    assert_eq!(event(&msg)["kind"], "TOOL_CALL");
    assert_eq!(event(&msg)["payload"]["n"], 7);
    finish(&other_instance, &run, ExecutionStatus::Completed).await;
    assert_eq!(seqs(&drain(&mut stream).await), vec![3, 4]);
}

#[tokio::test]
async fn a_run_made_final_without_its_event_still_ends_the_stream() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 10).await;
    let run = start_run(&f, &alice).await;
    let s = schema(&f);
    let mut stream = subscribe(&s, &events_query(&run, None), Some(&alice));
    next(&mut stream).await.unwrap();
    f.exec(
        "UPDATE agent_executions SET status = 'failed' WHERE id = ?",
        vec![run.id.into()],
    )
    .await;
    let ended = tokio::time::timeout(POLL * (RECHECK_AFTER_IDLE_POLLS + 10), stream.next()).await;
    assert!(
        matches!(ended, Ok(None)),
        "ended after the row check: {ended:?}"
    );
}
