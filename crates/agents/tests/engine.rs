//! The worker plays runs: plans to completion, failures, the iteration cap,
//! token usage in the step's transaction, approvals, events, and two workers
//! at once on PostgreSQL.

mod common;
mod engine_common;

use agents::entity::{action_approval, agent_execution};
use agents::status::ExecutionStatus;
use agents::worker;
use common::Fixture;
use engine_common::*;
use kernel::error::Code;
use kernel::jobs::run_once;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn a_plan_played_to_completion_writes_thinking_steps_tool_rows_and_duration_and_commits_the_reservation()
 {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let agents = with_runner(
        &f,
        TickingRunner {
            clock: f.clock.clone(),
            per_step: chrono::Duration::milliseconds(1500),
        },
    );
    let p = plan(vec![
        ("research", vec![think("look around"), tool("search", 12)]),
        (
            "report",
            vec![think("write it up"), finish(json!({"summary": "done"}))],
        ),
    ]);
    let run = start_with(&f, &agents, &alice, &session, Some(p)).await;
    tick(&worker_with(&f, agents, "w")).await;

    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed");
    assert_eq!(run.result, Some(json!({"summary": "done"})));
    assert_eq!(run.duration_ms, Some(4 * 1500), "four steps of 1.5 s");
    assert!(run.started_at.is_some() && run.completed_at.is_some());
    assert_eq!(run.iterations, 4);
    assert_eq!(run.claimed_by, None, "the claim is released");
    let texts: Vec<_> = thinking(&run).into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["look around", "write it up"]);
    let tools = tool_rows(&f, run.id).await;
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].tool_name, "search");
    assert_eq!(tools[0].parameters, Some(json!({"q": "search"})));
    assert_eq!(tools[0].result, Some(json!({"ok": "search"})));
    assert!(tools[0].success);
    assert_eq!(tools[0].duration_ms, Some(12));
    assert_eq!((tools[0].phase_index, tools[0].step_index), (0, 1));

    let cps = checkpoints(&f, run.id).await;
    assert_eq!(cps.len(), 1, "one phase ended before the last");
    assert_eq!(cps[0].checkpoint_reason, "phase_complete");
    assert_eq!((cps[0].phase_index, cps[0].step_index), (1, 0));
    assert_eq!(cps[0].completed_phases, json!(["research"]));

    assert_eq!(reservation_status(&f, &run).await, "committed");
    assert_eq!(f.running_agents(alice.user_id).await, 0);
    assert_eq!(executions_used(&f, alice.user_id).await, 1);
    let session = session_row(&f, session.id).await;
    assert_eq!(session.status, "complete");
    assert_eq!(session.iteration_count, 4);
    assert_eq!(session.current_phase.as_deref(), Some("report"));
}

#[tokio::test]
async fn a_plan_ending_without_finish_completes_with_a_null_result() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, thoughts(2)).await;
    tick(&worker(&f)).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed");
    assert_eq!(run.result, None);
    assert_eq!(thinking(&run).len(), 2);
}

#[tokio::test]
async fn a_failing_tool_fails_the_run_writes_an_error_checkpoint_and_releases_the_reservation() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let p = plan(vec![(
        "deploy",
        vec![
            think("ready"),
            failing_tool("deploy", "timeout"),
            think("never"),
        ],
    )]);
    let run = start(&f, &alice, &session, p).await;
    tick(&worker(&f)).await;

    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "failed");
    assert_eq!(run.error.as_deref(), Some("tool deploy failed: timeout"));
    assert_eq!(thinking(&run).len(), 1, "the third step never ran");
    let tools = tool_rows(&f, run.id).await;
    assert_eq!(tools.len(), 1);
    assert!(!tools[0].success);
    assert_eq!(tools[0].error.as_deref(), Some("timeout"));
    let cps = checkpoints(&f, run.id).await;
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].checkpoint_reason, "error");
    assert_eq!((cps[0].phase_index, cps[0].step_index), (0, 1));
    assert_eq!(
        cps[0].error_info.as_ref().unwrap()["error"],
        "tool deploy failed: timeout"
    );
    assert_eq!(reservation_status(&f, &run).await, "released");
    assert_eq!(f.running_agents(alice.user_id).await, 0);
    assert_eq!(executions_used(&f, alice.user_id).await, 0, "given back");
    assert_eq!(session_row(&f, session.id).await.status, "error");
}

#[tokio::test]
async fn a_fail_step_fails_the_run_with_its_reason() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let p = plan(vec![(
        "only",
        vec![agents::plan::PlanStep::Fail {
            reason: "the site is down".into(),
        }],
    )]);
    let run = start(&f, &alice, &session, p).await;
    tick(&worker(&f)).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "failed");
    assert_eq!(run.error.as_deref(), Some("the site is down"));
    assert_eq!(reservation_status(&f, &run).await, "released");
}

#[tokio::test]
async fn the_iteration_cap_stops_a_run_with_a_clear_reason() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 2).await;
    let run = start(&f, &alice, &session, thoughts(5)).await;
    tick(&worker(&f)).await;

    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "failed");
    assert_eq!(
        run.error.as_deref(),
        Some("iteration cap reached: the session allows 2 iterations")
    );
    assert_eq!(run.iterations, 2);
    assert_eq!(thinking(&run).len(), 2);
    assert_eq!(session_row(&f, session.id).await.iteration_count, 2);
    assert_eq!(reservation_status(&f, &run).await, "released");

    // The cap is the session's: a second run in it cannot take a step either.
    let second = start(&f, &alice, &session, thoughts(1)).await;
    tick(&worker(&f)).await;
    let second = execution(&f, second.id).await;
    assert_eq!(second.status, "failed");
    assert_eq!(second.iterations, 0);
}

#[tokio::test]
async fn token_usage_is_recorded_in_billings_cost_tables_with_the_step() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let p = plan(vec![(
        "only",
        vec![
            think_with_tokens("priced", "anthropic", "claude-sonnet-4", 1000, 500),
            finish(json!("ok")),
        ],
    )]);
    let run = start(&f, &alice, &session, p).await;
    tick(&worker(&f)).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed");
    use billing::cost_entity::api_token_usage;
    let rows = api_token_usage::Entity::find()
        .filter(api_token_usage::Column::ExecutionId.eq(run.id))
        .all(&f.t.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_id, alice.user_id, "billed to the run's owner");
    assert_eq!((rows[0].input_tokens, rows[0].output_tokens), (1000, 500));
    assert_eq!(rows[0].model, "claude-sonnet-4");
    // 1,000 × $3/M + 500 × $15/M = $0.0105.
    assert_eq!(rows[0].total_cost_nanos, 10_500_000);
}

#[tokio::test]
async fn a_step_whose_token_model_has_no_price_fails_and_nothing_of_that_step_is_written() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let p = plan(vec![(
        "only",
        vec![
            think("first"),
            tool("lookup", 4),
            think_with_tokens("second", "anthropic", "no-such-model", 10, 10),
            think("third"),
        ],
    )]);
    let run = start(&f, &alice, &session, p).await;
    tick(&worker(&f)).await;

    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "failed");
    let error = run.error.clone().unwrap();
    assert!(
        error.contains("no-such-model") && error.contains("no price"),
        "{error}"
    );
    let texts: Vec<_> = thinking(&run).into_iter().map(|s| s.text).collect();
    assert_eq!(
        texts,
        ["first"],
        "the unpriced step's thought was rolled back"
    );
    assert_eq!(run.iterations, 2, "its iteration was rolled back too");
    assert_eq!(session_row(&f, session.id).await.iteration_count, 2);
    assert_eq!(token_rows(&f, run.id).await, 0);
    let steps = events(&f, run.id)
        .await
        .into_iter()
        .filter(|e| e.kind == "step")
        .count();
    assert_eq!(steps, 1, "no event of the rolled-back step");
    assert_eq!(reservation_status(&f, &run).await, "released");
    assert_eq!((run.current_phase_index, run.step_index), (0, 2));
}

#[tokio::test]
async fn illegal_status_moves_are_invalid_transition_and_write_nothing() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let done = start(&f, &alice, &session, thoughts(1)).await;
    tick(&worker(&f)).await;
    let done = execution(&f, done.id).await;
    assert_eq!(done.status, "completed");
    let before = events(&f, done.id).await.len();
    let err = worker::move_status(&f.t.db, &f.agents, &done, ExecutionStatus::Cancelled, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(execution(&f, done.id).await.status, "completed");
    assert_eq!(events(&f, done.id).await.len(), before, "no event");

    let fresh = start(&f, &alice, &session, thoughts(1)).await;
    let err = worker::move_status(&f.t.db, &f.agents, &fresh, ExecutionStatus::Completed, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition, "no skipping the run");
    assert_eq!(execution(&f, fresh.id).await.status, "pending");

    // A stale read loses: the row is no longer `pending`.
    worker::move_status(&f.t.db, &f.agents, &fresh, ExecutionStatus::Planning, None)
        .await
        .unwrap();
    let err = worker::move_status(&f.t.db, &f.agents, &fresh, ExecutionStatus::Planning, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
}

#[tokio::test]
async fn events_are_written_in_order_with_gapless_seq() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let p = plan(vec![(
        "only",
        vec![think("hm"), tool("search", 1), finish(json!(1))],
    )]);
    let run = start(&f, &alice, &session, p).await;
    tick(&worker(&f)).await;

    let log = events(&f, run.id).await;
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=log.len() as i64).collect::<Vec<_>>());
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "status_changed",
            "status_changed",
            "status_changed",
            "step",
            "tool_call",
            "status_changed"
        ]
    );
    assert_eq!(
        status_moves(&f, run.id).await,
        [
            "null->pending",
            "pending->planning",
            "planning->executing",
            "executing->completed"
        ]
    );
    assert_eq!(log[3].payload["text"], "hm");
    assert_eq!(log[4].payload["toolName"], "search");
    assert_eq!(execution(&f, run.id).await.event_seq, log.len() as i64);
}

#[tokio::test]
async fn a_run_held_by_another_workers_live_lease_is_not_claimed() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let run = start(&f, &alice, &session, thoughts(1)).await;
    let claimed = worker::claim(&f.t.db, &f.agents, "crashed").await.unwrap();
    assert_eq!(claimed, [run.id]);
    tick(&worker(&f)).await;
    assert_eq!(execution(&f, run.id).await.status, "pending", "lease live");
    // The crashed worker's lease runs out: another worker takes the run over.
    f.clock
        .advance(f.agents.settings.claim_lease + chrono::Duration::seconds(1));
    tick(&worker(&f)).await;
    assert_eq!(execution(&f, run.id).await.status, "completed");
}

#[tokio::test]
async fn a_tick_that_runs_out_of_time_hands_the_run_to_the_next_tick() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let mut agents = f.agents.clone();
    // A zero lease leaves a zero time budget: one step per tick.
    agents.settings.claim_lease = chrono::Duration::zero();
    let run = start(&f, &alice, &session, thoughts(3)).await;
    let w = worker_with(&f, agents, "w");
    tick(&w).await;
    let after_one = execution(&f, run.id).await;
    assert_eq!(after_one.status, "planning", "one step, then handed over");
    assert_eq!(after_one.claimed_by, None);
    let mut ticks = 1;
    while execution(&f, run.id).await.status != "completed" && ticks < 20 {
        tick(&w).await;
        ticks += 1;
    }
    assert_eq!(ticks, 5, "planning, executing, and three steps");
    assert_eq!(thinking(&execution(&f, run.id).await).len(), 3);
}

#[tokio::test]
async fn a_run_that_outlives_the_reservation_ttl_is_still_charged() {
    use kernel::clock::Clock;
    let f = Fixture::new().await;
    // One concurrent agent: a released reservation would free the only slot.
    let alice = f.subscribed_user("alice@example.com", 10, 1).await;
    let session = f.session(&alice, 10).await;
    let ttl = f.agents.billing.settings.reservation_ttl.0;
    let step = chrono::Duration::minutes(25);
    assert!(
        step < f.agents.settings.pause_timeout,
        "each pause stays under the timeout"
    );
    let run = start(&f, &alice, &session, thoughts(5)).await;
    let started = f.clock.now();

    // Play one step, paused by the owner while it is played; resume 25 min later.
    let mut position = 0;
    while f.clock.now() - started <= ttl {
        let runner = Arc::new(ActingRunner::new(&f, &alice, (0, position), Act::Pause));
        *runner.execution.lock().unwrap() = Some(run.id);
        tick(&worker_with(&f, with_shared(&f, runner), "w")).await;
        let held = execution(&f, run.id).await;
        assert_eq!(held.status, "executing");
        assert_eq!(held.step_index, position + 1, "one step per cycle");
        assert_eq!(control(&f, run.id).await.control_state, "paused");
        f.clock.advance(step);
        agents::controls::resume(&f.t.db, &f.agents, &alice, run.id)
            .await
            .unwrap();
        position += 1;
    }
    assert_eq!(position, 3, "75 minutes of pause/resume cycles");

    // The period job at 75 min: the live run's reservation is not stale.
    let job = billing::rollover::PeriodJob {
        billing: f.agents.billing.clone(),
        db: f.t.db.clone(),
    };
    run_once(&job).await.unwrap();
    assert_eq!(reservation_status(&f, &run).await, "reserved");
    assert_eq!(f.running_agents(alice.user_id).await, 1, "the slot is held");
    let over_cap = f
        .agents
        .billing
        .reserve_execution(&f.t.db, &alice, Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        over_cap.code(),
        Code::LimitExceeded,
        "no agent beyond the cap"
    );

    tick(&worker(&f)).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed");
    assert_eq!(thinking(&run).len(), 5);
    assert_eq!(reservation_status(&f, &run).await, "committed");
    assert_eq!(executions_used(&f, alice.user_id).await, 1, "still charged");
    assert_eq!(f.running_agents(alice.user_id).await, 0);
}

/// Moves the fixture's clock on by `by`, then runs billing's period job.
async fn period_job_after(f: &Fixture, by: chrono::Duration) {
    f.clock.advance(by);
    let job = billing::rollover::PeriodJob {
        billing: f.agents.billing.clone(),
        db: f.t.db.clone(),
    };
    run_once(&job).await.unwrap();
}

#[tokio::test]
async fn a_pause_longer_than_the_reservation_ttl_keeps_the_slot_until_the_timeout() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 1).await;
    let session = f.session(&alice, 10).await;
    let ttl = f.agents.billing.settings.reservation_ttl.0;
    let mut agents = f.agents.clone();
    agents.settings.pause_timeout = ttl * 3;
    let run = start(&f, &alice, &session, thoughts(1)).await;
    agents::controls::pause(&f.t.db, &agents, &alice, run.id, None)
        .await
        .unwrap();

    // Twice the reservation's lifetime later, still inside the pause timeout.
    period_job_after(&f, ttl * 2).await;
    assert_eq!(reservation_status(&f, &run).await, "reserved");
    assert_eq!(f.running_agents(alice.user_id).await, 1, "the slot is held");

    agents::controls::resume(&f.t.db, &agents, &alice, run.id)
        .await
        .unwrap();
    tick(&worker_with(&f, agents, "w")).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed");
    assert_eq!(reservation_status(&f, &run).await, "committed");
    assert_eq!(executions_used(&f, alice.user_id).await, 1, "charged once");
}

#[tokio::test]
async fn a_pause_during_a_step_is_not_cut_back_by_the_worker_finishing_that_step() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 1).await;
    let session = f.session(&alice, 10).await;
    let ttl = f.agents.billing.settings.reservation_ttl.0;
    // The owner pauses while the worker plays the first step; the worker then
    // re-takes the run to write that step, which renews the reservation.
    let mut acting = ActingRunner::new(&f, &alice, (0, 0), Act::Pause);
    acting.agents.settings.pause_timeout = ttl * 3;
    let runner = Arc::new(acting);
    let agents = with_shared(&f, runner.clone());
    let run = start_with(&f, &agents, &alice, &session, Some(thoughts(3))).await;
    *runner.execution.lock().unwrap() = Some(run.id);
    tick(&worker_with(&f, agents, "w")).await;
    assert_eq!(control(&f, run.id).await.control_state, "paused");
    assert_eq!(
        execution(&f, run.id).await.step_index,
        1,
        "the step was written"
    );

    period_job_after(&f, ttl * 2).await;
    assert_eq!(reservation_status(&f, &run).await, "reserved");
}

/// A run of a one-agent user that waits on a high-risk approval whose TTL is
/// three reservation lifetimes; answers the agents it runs with and that lifetime.
async fn waiting_on_a_long_approval(
    f: &Fixture,
) -> (
    kernel::actor::Actor,
    agents::Agents,
    agent_execution::Model,
    chrono::Duration,
) {
    let alice = f.subscribed_user("alice@example.com", 10, 1).await;
    let session = f.session(&alice, 10).await;
    let ttl = f.agents.billing.settings.reservation_ttl.0;
    let mut agents = f.agents.clone();
    agents.settings.approval_ttl = ttl * 3;
    let p = plan(vec![(
        "act",
        vec![
            approval("send_email", "Send the report to the client"),
            finish(json!("sent")),
        ],
    )]);
    let run = start_with(f, &agents, &alice, &session, Some(p)).await;
    (alice, agents, run, ttl)
}

#[tokio::test]
async fn an_instruction_injected_while_waiting_on_an_approval_keeps_the_longer_hold() {
    let f = Fixture::new().await;
    let (alice, agents, run, ttl) = waiting_on_a_long_approval(&f).await;
    tick(&worker_with(&f, agents.clone(), "w")).await;
    assert_eq!(control(&f, run.id).await.control_state, "awaiting_approval");
    let note = agents::controls::Instruction::parse("keep it short".into()).unwrap();
    agents::controls::inject(&f.t.db, &agents, &alice, run.id, note)
        .await
        .unwrap();

    period_job_after(&f, ttl * 2).await;
    assert_eq!(reservation_status(&f, &run).await, "reserved");
}

#[tokio::test]
async fn a_run_waiting_on_an_approval_longer_than_the_reservation_ttl_keeps_the_slot() {
    let f = Fixture::new().await;
    let (alice, agents, run, ttl) = waiting_on_a_long_approval(&f).await;
    let w = worker_with(&f, agents.clone(), "w");
    tick(&w).await;
    assert_eq!(control(&f, run.id).await.control_state, "awaiting_approval");

    period_job_after(&f, ttl * 2).await;
    assert_eq!(reservation_status(&f, &run).await, "reserved");
    assert_eq!(f.running_agents(alice.user_id).await, 1, "the slot is held");

    let waiting = action_approval::Entity::find()
        .filter(action_approval::Column::ExecutionId.eq(run.id))
        .one(&f.t.db)
        .await
        .unwrap()
        .unwrap();
    agents::approvals::approve(&f.t.db, &agents, &alice, waiting.id)
        .await
        .unwrap();
    tick(&w).await;
    let run = execution(&f, run.id).await;
    assert_eq!(run.status, "completed");
    assert_eq!(reservation_status(&f, &run).await, "committed");
}

mod approvals_protocol {
    use super::*;

    async fn approval_of(f: &Fixture, id: uuid::Uuid) -> action_approval::Model {
        action_approval::Entity::find()
            .filter(action_approval::Column::ExecutionId.eq(id))
            .one(&f.t.db)
            .await
            .unwrap()
            .unwrap()
    }

    /// What the approvals part does when a human answers: the approval's
    /// status, and the control back to `running`.
    async fn answer(f: &Fixture, id: uuid::Uuid, status: &str, reason: Option<&str>) {
        f.exec(
            "UPDATE action_approvals SET status = ?, rejection_reason = ? WHERE execution_id = ?",
            vec![status.into(), reason.map(str::to_owned).into(), id.into()],
        )
        .await;
        f.exec(
            "UPDATE execution_controls SET control_state = 'running' WHERE execution_id = ?",
            vec![id.into()],
        )
        .await;
    }

    fn risky() -> agents::plan::Plan {
        plan(vec![(
            "cleanup",
            vec![
                think("find old rows"),
                approval("delete_records", "Delete every inactive customer record"),
                tool("delete", 5),
                finish(json!("cleaned")),
            ],
        )])
    }

    #[tokio::test]
    async fn a_risky_step_waits_awaiting_approval_and_is_never_claimed_meanwhile() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let run = start(&f, &alice, &session, risky()).await;
        tick(&worker(&f)).await;

        let held = execution(&f, run.id).await;
        assert_eq!(held.status, "executing");
        assert_eq!((held.current_phase_index, held.step_index), (0, 1));
        assert_eq!(held.claimed_by, None);
        let approval = approval_of(&f, run.id).await;
        assert_eq!(approval.status, "pending");
        let c = control(&f, run.id).await;
        assert_eq!(c.control_state, "awaiting_approval");
        assert!(c.state_reason.unwrap().contains(&approval.id.to_string()));
        assert_eq!(session_row(&f, session.id).await.status, "paused");
        assert!(
            worker::claim(&f.t.db, &f.agents, "x")
                .await
                .unwrap()
                .is_empty()
        );
        let kinds: Vec<String> = events(&f, run.id)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert!(kinds.ends_with(&["approval_needed".into(), "control_changed".into()]));

        answer(&f, run.id, "approved", None).await;
        tick(&worker(&f)).await;
        let done = execution(&f, run.id).await;
        assert_eq!(done.status, "completed");
        assert_eq!(done.result, Some(json!("cleaned")));
        assert_eq!(tool_rows(&f, run.id).await.len(), 1);
        assert_eq!(done.iterations, 4, "the approval step was played once");
    }

    #[tokio::test]
    async fn cancelling_a_run_awaiting_approval_withdraws_its_approval() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let run = start(&f, &alice, &session, risky()).await;
        tick(&worker(&f)).await;
        assert_eq!(approval_of(&f, run.id).await.status, "pending");

        agents::controls::cancel(&f.t.db, &f.agents, &alice, run.id, None)
            .await
            .unwrap();
        assert_eq!(execution(&f, run.id).await.status, "cancelled");
        let approval = approval_of(&f, run.id).await;
        assert_eq!(
            approval.status, "expired",
            "nobody is asked to approve a dead run"
        );
        let offered = agents::live::pending(&f.t.db, &alice, &f.agents.clock)
            .await
            .unwrap();
        assert!(offered.is_empty(), "still offered: {offered:?}");
        let log = events(&f, run.id).await;
        let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
        assert!(
            kinds.ends_with(&["approval_answered", "status_changed"]),
            "withdrawn before the final status: {kinds:?}"
        );
        let withdrawn = &log[log.len() - 2];
        assert_eq!(withdrawn.payload["withdrawn"], json!(true));
    }

    #[tokio::test]
    async fn a_rejected_approval_fails_the_run_with_the_reason() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let run = start(&f, &alice, &session, risky()).await;
        tick(&worker(&f)).await;
        answer(&f, run.id, "rejected", Some("too risky")).await;
        tick(&worker(&f)).await;
        let run = execution(&f, run.id).await;
        assert_eq!(run.status, "failed");
        assert_eq!(run.error.as_deref(), Some("action rejected: too risky"));
        assert!(tool_rows(&f, run.id).await.is_empty());
        assert_eq!(reservation_status(&f, &run).await, "released");
    }

    #[tokio::test]
    async fn an_expired_approval_fails_the_run() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let run = start(&f, &alice, &session, risky()).await;
        tick(&worker(&f)).await;
        answer(&f, run.id, "expired", None).await;
        tick(&worker(&f)).await;
        let run = execution(&f, run.id).await;
        assert_eq!(run.status, "failed");
        assert_eq!(run.error.as_deref(), Some("approval expired"));
    }

    #[tokio::test]
    async fn a_low_risk_approval_is_granted_at_once_and_the_run_goes_on() {
        let f = Fixture::new().await;
        let alice = f.subscribed_user("alice@example.com", 10, 2).await;
        let session = f.session(&alice, 10).await;
        let p = plan(vec![(
            "read",
            vec![
                approval("read_report", "Read the weekly report"),
                finish(json!("read")),
            ],
        )]);
        let run = start(&f, &alice, &session, p).await;
        tick(&worker(&f)).await;
        let run = execution(&f, run.id).await;
        assert_eq!(run.status, "completed");
        assert_eq!(approval_of(&f, run.id).await.status, "approved");
        assert_eq!(control(&f, run.id).await.control_state, "running");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgresql_drive_every_run_exactly_once() {
    let f = Fixture::new().await;
    if !f.t.is_postgres() {
        eprintln!("skipped: needs PostgreSQL (DATABASE_URL)");
        return;
    }
    let runner = Arc::new(SlowRunner::default());
    let mut agents = f.agents.clone();
    agents.runner = runner.clone();
    agents.settings.worker_batch = 3;
    let mut runs = Vec::new();
    let mut users = Vec::new();
    for u in 0..3 {
        let user = f
            .subscribed_user(&format!("user{u}@example.com"), 20, 10)
            .await;
        let session = f.session(&user, 100).await;
        for n in 0..4 {
            let p = plan(vec![
                ("a", vec![tool("first", 1), think("between")]),
                ("b", vec![tool("second", 1), finish(json!("ok"))]),
            ]);
            let task = format!("task {u}-{n}");
            runs.push(start_task(&f, &agents, &user, &session, &task, Some(p)).await);
        }
        users.push(user);
    }
    let one = Arc::new(worker_with(&f, agents.clone(), "worker-1"));
    let two = Arc::new(worker_with(&f, agents.clone(), "worker-2"));
    // Each worker ticks on its own, so one claims while the other plays.
    let spin = |w: Arc<agents::AgentWorker>, db: sea_orm::DatabaseConnection| {
        tokio::spawn(async move {
            for _ in 0..500 {
                run_once(w.as_ref()).await.unwrap();
                let open = agent_execution::Entity::find()
                    .filter(agent_execution::Column::Status.ne("completed"))
                    .count(&db)
                    .await
                    .unwrap();
                if open == 0 {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    let (ta, tb) = (spin(one, f.t.db.clone()), spin(two, f.t.db.clone()));
    ta.await.unwrap();
    tb.await.unwrap();
    for r in &runs {
        let run = execution(&f, r.id).await;
        assert_eq!(run.status, "completed", "{}", run.id);
        assert_eq!(run.iterations, 4);
        let names: Vec<_> = tool_rows(&f, r.id)
            .await
            .into_iter()
            .map(|t| t.tool_name)
            .collect();
        assert_eq!(names, ["first", "second"], "no step played twice");
        assert_eq!(
            status_moves(&f, r.id).await,
            [
                "null->pending",
                "pending->planning",
                "planning->executing",
                "executing->completed"
            ]
        );
        let seqs: Vec<i64> = events(&f, r.id).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
        assert_eq!(reservation_status(&f, &run).await, "committed");
    }
    let calls = runner.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), runs.len() * 5, "a plan and four steps per run");
    let twice: Vec<_> = calls.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "no run driven by two workers: {twice:?}");
    for user in &users {
        assert_eq!(f.running_agents(user.user_id).await, 0);
        assert_eq!(
            executions_used(&f, user.user_id).await,
            4,
            "each settled once"
        );
    }
}

#[tokio::test]
async fn the_event_log_of_runs_finished_past_retention_is_deleted_and_nothing_else() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 3).await;
    let session = f.session(&alice, 10).await;
    let old = start(&f, &alice, &session, thoughts(2)).await;
    tick(&worker(&f)).await;
    let held = start(&f, &alice, &session, thoughts(1)).await;
    agents::controls::pause(&f.t.db, &f.agents, &alice, held.id, None)
        .await
        .unwrap();
    let held_events = events(&f, held.id).await.len();
    assert!(!events(&f, old.id).await.is_empty());

    // A short retention, so that the subscription's period is still current.
    let mut agents = f.agents.clone();
    agents.settings.events_retention = chrono::Duration::hours(1);
    f.clock.advance(chrono::Duration::hours(2));
    let recent = start(&f, &alice, &session, thoughts(1)).await;
    tick(&worker(&f)).await;
    assert_eq!(execution(&f, recent.id).await.status, "completed");
    let recent_events = events(&f, recent.id).await.len();

    let job = agents::events::RetentionJob::new(f.t.db.clone(), agents);
    run_once(&job).await.unwrap();
    assert!(events(&f, old.id).await.is_empty(), "finished long ago");
    let kept = execution(&f, old.id).await;
    assert_eq!(kept.status, "completed", "the run itself stays");
    assert_eq!(thinking(&kept).len(), 2, "and its steps");
    assert_eq!(
        events(&f, held.id).await.len(),
        held_events,
        "an unfinished run keeps its log, however old"
    );
    assert_eq!(events(&f, recent.id).await.len(), recent_events);

    use kernel::clock::Clock;
    // The same job later: it looks only at runs finished since its last
    // cutoff, and the recent run is among them now.
    f.clock.advance(chrono::Duration::hours(2));
    run_once(&job).await.unwrap();
    assert!(events(&f, recent.id).await.is_empty());
    assert_eq!(events(&f, held.id).await.len(), held_events);
    assert_eq!(
        agents::events::purge_finished(&f.t.db, None, f.clock.now())
            .await
            .unwrap(),
        0,
        "nothing left behind the watermark"
    );
}
