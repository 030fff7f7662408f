//! Pause, resume, cancel, injected instructions and the pause timeout, each
//! rule by name; and the mutations through a schema.

mod common;
mod engine_common;

use agents::controls::{self, ControlReason, Instruction, PauseTimeoutJob};
use agents::entity::agent_execution;
use common::Fixture;
use engine_common::*;
use kernel::actor::Actor;
use kernel::error::Code;
use kernel::jobs::run_once;
use serde_json::json;
use std::sync::Arc;

/// A run of `p` whose runner acts at `at` while playing it.
async fn acting_run(
    f: &Fixture,
    owner: &Actor,
    p: agents::plan::Plan,
    at: (i32, i32),
    act: Act,
) -> (
    agents::AgentWorker,
    Arc<ActingRunner>,
    agent_execution::Model,
) {
    let session = f.session(owner, 50).await;
    let runner = Arc::new(ActingRunner::new(f, owner, at, act));
    let agents = with_shared(f, runner.clone());
    let run = start_with(f, &agents, owner, &session, Some(p)).await;
    *runner.execution.lock().unwrap() = Some(run.id);
    (worker_with(f, agents, "w"), runner, run)
}

fn risky() -> agents::plan::Plan {
    plan(vec![(
        "cleanup",
        vec![
            think("find old rows"),
            approval("delete_records", "Delete every inactive customer record"),
            finish(json!("cleaned")),
        ],
    )])
}

async fn pause(f: &Fixture, who: &Actor, id: uuid::Uuid) -> Result<String, Code> {
    controls::pause(&f.t.db, &f.agents, who, id, None)
        .await
        .map(|c| c.control_state)
        .map_err(|e| e.code())
}

async fn resume(f: &Fixture, who: &Actor, id: uuid::Uuid) -> Result<String, Code> {
    controls::resume(&f.t.db, &f.agents, who, id)
        .await
        .map(|c| c.control_state)
        .map_err(|e| e.code())
}

async fn cancel(f: &Fixture, who: &Actor, id: uuid::Uuid) -> Result<String, Code> {
    controls::cancel(&f.t.db, &f.agents, who, id, None)
        .await
        .map(|c| c.control_state)
        .map_err(|e| e.code())
}

async fn inject(f: &Fixture, who: &Actor, id: uuid::Uuid, text: &str) -> Result<String, Code> {
    let i = Instruction::parse(text.into()).unwrap();
    controls::inject(&f.t.db, &f.agents, who, id, i)
        .await
        .map(|c| c.control_state)
        .map_err(|e| e.code())
}

#[tokio::test]
async fn a_pause_between_steps_takes_effect_before_the_next_step_and_resume_continues() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let (w, _, run) = acting_run(&f, &alice, thoughts(3), (0, 0), Act::Pause).await;
    tick(&w).await;
    let held = execution(&f, run.id).await;
    assert_eq!(thinking(&held).len(), 1, "the step in flight finished");
    assert_eq!((held.status.as_str(), held.step_index), ("executing", 1));
    assert_eq!(held.claimed_by, None, "the claim was released");
    assert_eq!(control(&f, run.id).await.control_state, "paused");
    assert_eq!(session_row(&f, held.session_id).await.status, "paused");

    tick(&w).await;
    let still = execution(&f, run.id).await;
    assert_eq!(thinking(&still).len(), 1, "a paused run plays nothing");
    assert_eq!(still.iterations, 1);

    assert_eq!(resume(&f, &alice, run.id).await, Ok("running".into()));
    assert_eq!(session_row(&f, held.session_id).await.status, "executing");
    tick(&w).await;
    let done = execution(&f, run.id).await;
    assert_eq!(done.status, "completed");
    let texts: Vec<_> = thinking(&done).into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["thought 0", "thought 1", "thought 2"]);
}

#[tokio::test]
async fn a_finished_or_cancelled_run_cannot_be_paused() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 3).await;
    let session = f.session(&alice, 10).await;
    let done = start(&f, &alice, &session, thoughts(1)).await;
    tick(&worker(&f)).await;
    assert_eq!(execution(&f, done.id).await.status, "completed");
    assert_eq!(
        pause(&f, &alice, done.id).await,
        Err(Code::InvalidTransition)
    );

    let cancelled = start(&f, &alice, &session, thoughts(1)).await;
    cancel(&f, &alice, cancelled.id).await.unwrap();
    assert_eq!(
        pause(&f, &alice, cancelled.id).await,
        Err(Code::InvalidTransition)
    );

    let running = start(&f, &alice, &session, thoughts(1)).await;
    assert_eq!(pause(&f, &alice, running.id).await, Ok("paused".into()));
    assert_eq!(
        pause(&f, &alice, running.id).await,
        Err(Code::InvalidTransition),
        "already paused"
    );
}

#[tokio::test]
async fn resume_only_from_paused() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, thoughts(2)).await;
    assert_eq!(
        resume(&f, &alice, run.id).await,
        Err(Code::InvalidTransition),
        "a running run"
    );
    pause(&f, &alice, run.id).await.unwrap();
    assert_eq!(resume(&f, &alice, run.id).await, Ok("running".into()));
    let moves: Vec<_> = event_kinds(&f, run.id)
        .await
        .into_iter()
        .filter(|(k, _)| k == "control_changed")
        .map(|(_, p)| {
            format!(
                "{}->{}",
                p["from"].as_str().unwrap(),
                p["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(moves, ["running->paused", "paused->running"]);

    cancel(&f, &alice, run.id).await.unwrap();
    assert_eq!(
        resume(&f, &alice, run.id).await,
        Err(Code::InvalidTransition),
        "a cancelled run"
    );
}

#[tokio::test]
async fn resuming_a_run_awaiting_approval_is_invalid_and_names_the_approval() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, risky()).await;
    tick(&worker(&f)).await;
    assert_eq!(control(&f, run.id).await.control_state, "awaiting_approval");
    let err = controls::resume(&f.t.db, &f.agents, &alice, run.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    let approval_id = control(&f, run.id)
        .await
        .state_reason
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let message = err.to_string();
    assert!(
        message.contains(&approval_id) && message.contains("approve or reject"),
        "{message}"
    );
}

#[tokio::test]
async fn a_paused_run_whose_approval_is_still_pending_resumes_into_awaiting_approval() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, risky()).await;
    tick(&worker(&f)).await;
    assert_eq!(pause(&f, &alice, run.id).await, Ok("paused".into()));
    assert_eq!(
        resume(&f, &alice, run.id).await,
        Ok("awaiting_approval".into())
    );
    tick(&worker(&f)).await;
    let held = execution(&f, run.id).await;
    assert_eq!(
        (held.status.as_str(), held.step_index),
        ("executing", 1),
        "still waiting"
    );
}

#[tokio::test]
async fn cancel_is_final_and_refused_on_a_finished_run() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let done = start(&f, &alice, &session, thoughts(1)).await;
    tick(&worker(&f)).await;
    assert_eq!(
        cancel(&f, &alice, done.id).await,
        Err(Code::InvalidTransition)
    );
    assert_eq!(execution(&f, done.id).await.status, "completed");

    let run = start(&f, &alice, &session, thoughts(1)).await;
    assert_eq!(cancel(&f, &alice, run.id).await, Ok("cancelled".into()));
    assert_eq!(
        cancel(&f, &alice, run.id).await,
        Err(Code::InvalidTransition),
        "twice"
    );
}

#[tokio::test]
async fn cancelling_a_pending_or_held_run_settles_it_at_once() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 3).await;
    let session = f.session(&alice, 10).await;
    let pending = start(&f, &alice, &session, thoughts(2)).await;
    let held = start(&f, &alice, &session, thoughts(2)).await;
    pause(&f, &alice, held.id).await.unwrap();
    assert_eq!(f.running_agents(alice.user_id).await, 2);

    let reason = ControlReason::parse(Some("changed my mind".into())).unwrap();
    controls::cancel(&f.t.db, &f.agents, &alice, pending.id, reason)
        .await
        .unwrap();
    cancel(&f, &alice, held.id).await.unwrap();
    for (id, why) in [
        (pending.id, "changed my mind"),
        (held.id, controls::CANCELLED_BY_OWNER),
    ] {
        let run = execution(&f, id).await;
        assert_eq!(run.status, "cancelled");
        assert_eq!(run.error.as_deref(), Some(why));
        assert!(run.completed_at.is_some());
        assert_eq!(reservation_status(&f, &run).await, "released");
    }
    assert_eq!(f.running_agents(alice.user_id).await, 0);
    assert_eq!(executions_used(&f, alice.user_id).await, 0);
    assert_eq!(session_row(&f, session.id).await.status, "idle");
    tick(&worker(&f)).await;
    assert!(thinking(&execution(&f, pending.id).await).is_empty());
}

#[tokio::test]
async fn a_running_run_is_cancelled_by_the_worker_before_its_next_step() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let (w, _, run) = acting_run(&f, &alice, thoughts(3), (0, 1), Act::Cancel).await;
    tick(&w).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "cancelled");
    let texts: Vec<_> = thinking(&run).into_iter().map(|s| s.text).collect();
    assert_eq!(
        texts,
        ["thought 0", "thought 1"],
        "the step in flight was written, the next never played"
    );
    assert_eq!(reservation_status(&f, &run).await, "released");
    assert_eq!(f.running_agents(alice.user_id).await, 0);
    let moves = status_moves(&f, run.id).await;
    assert_eq!(moves.last().unwrap(), "executing->cancelled");
}

#[tokio::test]
async fn a_cancel_of_a_run_whose_worker_died_is_settled_when_the_lease_runs_out() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, thoughts(2)).await;
    let claimed = agents::worker::claim(&f.t.db, &f.agents, "died")
        .await
        .unwrap();
    assert_eq!(claimed, [run.id]);
    assert_eq!(cancel(&f, &alice, run.id).await, Ok("cancelled".into()));
    assert_eq!(
        execution(&f, run.id).await.status,
        "pending",
        "its holder settles it"
    );
    tick(&worker(&f)).await;
    assert_eq!(execution(&f, run.id).await.status, "pending", "lease live");
    f.clock
        .advance(f.agents.settings.claim_lease + chrono::Duration::seconds(1));
    tick(&worker(&f)).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "cancelled");
    assert!(thinking(&run).is_empty(), "nothing was played");
    assert_eq!(reservation_status(&f, &run).await, "released");
}

#[tokio::test]
async fn an_injected_instruction_is_consumed_exactly_once_by_the_next_step() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let (w, runner, run) = acting_run(
        &f,
        &alice,
        thoughts(3),
        (0, 0),
        Act::Inject("focus on Europe"),
    )
    .await;
    tick(&w).await;
    tick(&w).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed");
    let given: Vec<_> = thinking(&run)
        .into_iter()
        .filter(|s| s.kind == "instruction")
        .collect();
    assert_eq!(given.len(), 1, "appears once");
    assert_eq!(given[0].text, "focus on Europe");
    assert_eq!(
        (given[0].phase_index, given[0].step_index),
        (0, 1),
        "injected during step 0, consumed by step 1"
    );
    assert_eq!(
        *runner.instructions_seen.lock().unwrap(),
        ["focus on Europe"],
        "the runner was given it once"
    );
    assert_eq!(control(&f, run.id).await.injected_instruction, None);
}

#[tokio::test]
async fn inject_rules_by_control_state() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let session = f.session(&alice, 10).await;

    let done = start(&f, &alice, &session, thoughts(1)).await;
    tick(&worker(&f)).await;
    assert_eq!(
        inject(&f, &alice, done.id, "more").await,
        Err(Code::InvalidTransition),
        "finished"
    );

    let cancelled = start(&f, &alice, &session, thoughts(1)).await;
    cancel(&f, &alice, cancelled.id).await.unwrap();
    assert_eq!(
        inject(&f, &alice, cancelled.id, "more").await,
        Err(Code::InvalidTransition),
        "cancelled"
    );

    let running = start(&f, &alice, &session, thoughts(1)).await;
    assert_eq!(
        inject(&f, &alice, running.id, "first").await,
        Ok("running".into())
    );
    assert_eq!(
        inject(&f, &alice, running.id, "second").await,
        Err(Code::Conflict),
        "one unconsumed instruction at a time"
    );
    assert_eq!(
        control(&f, running.id)
            .await
            .injected_instruction
            .as_deref(),
        Some("first")
    );

    let paused = start(&f, &alice, &session, thoughts(1)).await;
    pause(&f, &alice, paused.id).await.unwrap();
    assert_eq!(
        inject(&f, &alice, paused.id, "go on").await,
        Ok("running".into()),
        "stored and resumed"
    );

    let waiting = start(&f, &alice, &session, risky()).await;
    tick(&worker(&f)).await;
    assert_eq!(
        inject(&f, &alice, waiting.id, "be careful").await,
        Ok("awaiting_approval".into()),
        "stored, still waiting"
    );
    assert_eq!(
        control(&f, waiting.id)
            .await
            .injected_instruction
            .as_deref(),
        Some("be careful")
    );
}

#[tokio::test]
async fn another_users_execution_is_not_found_and_bad_input_names_the_field() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let mallory = f.subscribed_user("mallory@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, thoughts(1)).await;
    assert_eq!(pause(&f, &mallory, run.id).await, Err(Code::NotFound));
    assert_eq!(resume(&f, &mallory, run.id).await, Err(Code::NotFound));
    assert_eq!(cancel(&f, &mallory, run.id).await, Err(Code::NotFound));
    assert_eq!(inject(&f, &mallory, run.id, "x").await, Err(Code::NotFound));
    assert_eq!(control(&f, run.id).await.control_state, "running");

    let err = Instruction::parse("   ".into()).unwrap_err();
    assert!(matches!(err, kernel::Error::BadInput { ref field, .. } if field == "instruction"));
    let err = ControlReason::parse(Some("x".repeat(1001))).unwrap_err();
    assert!(matches!(err, kernel::Error::BadInput { ref field, .. } if field == "reason"));
    assert_eq!(ControlReason::parse(Some("  ".into())).unwrap(), None);
}

#[tokio::test]
async fn a_pause_that_outlives_the_timeout_writes_a_checkpoint_and_fails_the_run() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let (w, _, run) = acting_run(&f, &alice, thoughts(3), (0, 0), Act::Pause).await;
    tick(&w).await;
    let job = PauseTimeoutJob {
        db: f.t.db.clone(),
        agents: f.agents.clone(),
    };
    f.clock.advance(chrono::Duration::minutes(29));
    run_once(&job).await.unwrap();
    assert_eq!(
        execution(&f, run.id).await.status,
        "executing",
        "not yet timed out"
    );

    f.clock.advance(chrono::Duration::minutes(2));
    run_once(&job).await.unwrap();
    run_once(&job).await.unwrap();
    let failed = execution(&f, run.id).await;
    assert_eq!(failed.status, "failed");
    assert_eq!(
        failed.error.as_deref(),
        Some("paused longer than 30 minutes")
    );
    let cps = checkpoints(&f, run.id).await;
    assert_eq!(cps.len(), 1, "once, though the job ran twice");
    assert_eq!(cps[0].checkpoint_reason, "pause_timeout");
    assert_eq!((cps[0].phase_index, cps[0].step_index), (0, 1));
    let info = cps[0].error_info.clone().unwrap();
    assert_eq!(info["error"], "paused longer than 30 minutes");
    assert_eq!(info["pauseTimeoutSeconds"], 1800);
    assert_eq!(reservation_status(&f, &failed).await, "released");
    assert_eq!(f.running_agents(alice.user_id).await, 0);
    assert_eq!(
        resume(&f, &alice, run.id).await,
        Err(Code::InvalidTransition),
        "a timed-out run stays failed"
    );
}

#[tokio::test]
async fn a_resume_before_the_pause_timeout_job_leaves_the_run_running() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, thoughts(1)).await;
    pause(&f, &alice, run.id).await.unwrap();
    f.clock.advance(chrono::Duration::minutes(45));
    resume(&f, &alice, run.id).await.unwrap();
    let job = PauseTimeoutJob {
        db: f.t.db.clone(),
        agents: f.agents.clone(),
    };
    run_once(&job).await.unwrap();
    assert_eq!(execution(&f, run.id).await.status, "pending");
    assert!(checkpoints(&f, run.id).await.is_empty());
    tick(&worker(&f)).await;
    assert_eq!(execution(&f, run.id).await.status, "completed");
}

mod graphql {
    use super::*;
    use agents::graphql::ExecutionMutation;
    use async_graphql::{EmptySubscription, Object, Request, Schema, Variables};
    use serde_json::Value;

    /// The schema needs a query root; the agents queries belong to other parts.
    #[derive(Default)]
    struct Q;

    #[Object]
    impl Q {
        async fn ok(&self) -> bool {
            true
        }
    }

    type S = Schema<Q, ExecutionMutation, EmptySubscription>;

    fn schema(f: &Fixture) -> S {
        Schema::build(Q, ExecutionMutation, EmptySubscription)
            .data(f.t.db.clone())
            .data(f.agents.clone())
            .extension(kernel::tx::AwaitRollbacks)
            .finish()
    }

    async fn run(s: &S, actor: &Actor, query: &str, vars: Value) -> (Value, Option<String>) {
        let res = s
            .execute(
                Request::new(query)
                    .variables(Variables::from_json(vars))
                    .data(actor.clone()),
            )
            .await;
        // Errors refused by validation carry no code: answer their message.
        let code = res.errors.first().map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map_or_else(
                    || e.message.clone(),
                    |v| v.to_string().trim_matches('"').to_owned(),
                )
        });
        (res.data.into_json().unwrap(), code)
    }

    const START: &str =
        "mutation($i: StartExecutionInput!) { startExecution(input: $i) { id status runner } }";
    const PAUSE: &str =
        "mutation($id: ID!) { pauseExecution(id: $id, reason: \"lunch\") { state reason } }";
    const RESUME: &str = "mutation($id: ID!) { resumeExecution(id: $id) { state } }";
    const INJECT: &str = "mutation($i: InjectInstructionInput!) { injectInstruction(input: $i) { state pendingInstruction } }";
    const CANCEL: &str = "mutation($id: ID!) { cancelExecution(id: $id) { state } }";

    #[tokio::test]
    async fn graphql_starts_pauses_resumes_and_controls_an_execution() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let mallory = f.subscribed_user("mallory@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let s = schema(&f);
        let input = json!({ "i": {
            "sessionId": session.id.to_string(),
            "task": "Write the report",
            "plan": [
                { "name": "work", "steps": [
                    { "think": { "text": "outline", "tokens": {
                        "provider": "ANTHROPIC", "model": "claude-haiku-3.5",
                        "inputTokens": 10, "outputTokens": 20 } } },
                    { "tool": { "name": "search", "params": { "q": "x" }, "durationMs": 7 } },
                    { "finish": { "result": { "pages": 3 } } }
                ] }
            ]
        }});
        let (data, code) = run(&s, &alice, START, input).await;
        assert_eq!(code, None);
        assert_eq!(data["startExecution"]["status"], "PENDING");
        assert_eq!(data["startExecution"]["runner"], "local");
        let id = data["startExecution"]["id"].as_str().unwrap().to_owned();

        let (data, code) = run(&s, &alice, PAUSE, json!({ "id": id })).await;
        assert_eq!(code, None);
        assert_eq!(
            data["pauseExecution"],
            json!({ "state": "PAUSED", "reason": "lunch" })
        );
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        tick(&worker(&f)).await;
        assert_eq!(
            execution(&f, uuid).await.status,
            "pending",
            "paused: not played"
        );

        let (_, code) = run(&s, &mallory, RESUME, json!({ "id": id })).await;
        assert_eq!(code.as_deref(), Some("NOT_FOUND"));
        let (data, code) = run(
            &s,
            &alice,
            INJECT,
            json!({ "i": { "executionId": id, "instruction": "keep it short" } }),
        )
        .await;
        assert_eq!(code, None);
        assert_eq!(
            data["injectInstruction"],
            json!({ "state": "RUNNING", "pendingInstruction": "keep it short" }),
            "injecting into a paused run resumed it"
        );
        let (_, code) = run(&s, &alice, RESUME, json!({ "id": id })).await;
        assert_eq!(
            code.as_deref(),
            Some("INVALID_TRANSITION"),
            "already running"
        );

        tick(&worker(&f)).await;
        let done = execution(&f, uuid).await;
        assert_eq!(done.status, "completed");
        assert_eq!(done.result, Some(json!({ "pages": 3 })));
        assert_eq!(tool_rows(&f, uuid).await[0].duration_ms, Some(7));
        assert_eq!(token_rows(&f, uuid).await, 1);
        let (_, code) = run(&s, &alice, CANCEL, json!({ "id": id })).await;
        assert_eq!(code.as_deref(), Some("INVALID_TRANSITION"));
    }

    /// A refused mutation that had locked the execution row (`take` locks it
    /// before the rules refuse) has released the lock when it answers, so
    /// the worker's `SKIP LOCKED` claim right after does not pass the run
    /// over. Without `AwaitRollbacks` the driver only queues the rollback
    /// and this fails on PostgreSQL every time.
    #[tokio::test]
    async fn a_refused_control_has_released_the_execution_row_when_it_answers() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let run_ = start(&f, &alice, &session, thoughts(1)).await;
        let s = schema(&f);
        let (_, code) = run(&s, &alice, RESUME, json!({ "id": run_.id.to_string() })).await;
        assert_eq!(
            code.as_deref(),
            Some("INVALID_TRANSITION"),
            "running: not resumable"
        );
        if let Some(free) = f.t.row_lockable_elsewhere("agent_executions", run_.id) {
            assert!(free, "the refused resume still held the execution row");
        }
        let claimed = agents::worker::claim(&f.t.db, &f.agents, "w")
            .await
            .unwrap();
        assert_eq!(claimed, [run_.id]);
    }

    #[tokio::test]
    async fn graphql_refuses_bad_input_and_writes_nothing() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let s = schema(&f);
        let (_, code) = run(
            &s,
            &alice,
            START,
            json!({ "i": { "sessionId": session.id.to_string(), "task": "x", "plan": [] } }),
        )
        .await;
        assert_eq!(code.as_deref(), Some("BAD_USER_INPUT"));
        let (_, code) = run(
            &s,
            &alice,
            START,
            json!({ "i": { "sessionId": "nope", "task": "x" } }),
        )
        .await;
        assert_eq!(code.as_deref(), Some("BAD_USER_INPUT"));
        let (_, code) = run(
            &s,
            &alice,
            START,
            json!({ "i": { "sessionId": session.id.to_string(), "task": "x",
                "plan": [{ "name": "p", "steps": [{ "think": { "text": "a" }, "fail": { "reason": "b" } }] }] } }),
        )
        .await;
        let message = code.unwrap();
        assert!(
            message.contains("exactly one"),
            "a step is exactly one kind: {message}"
        );
        assert_eq!(f.running_agents(alice.user_id).await, 0, "nothing reserved");
    }
}
