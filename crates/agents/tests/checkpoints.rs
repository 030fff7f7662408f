//! Checkpoints: manual ones on request, and resuming one as a new attempt at
//! the saved position, through the usage gate, once per ended attempt.
//! Every rule on SQLite and, with `DATABASE_URL` set, on PostgreSQL.

mod approvals_common;
mod common;

use agents::checkpoints;
use agents::entity::agent_execution;
use agents::status::CheckpointReason;
use chrono::Duration;
use common::Fixture;
use kernel::clock::Clock;
use kernel::error::Code;
use kernel::page::window;
use sea_orm::{EntityTrait, PaginatorTrait, TransactionTrait};
use serde_json::json;
use std::sync::Arc;

async fn error_checkpoint(
    f: &Fixture,
    run: &agent_execution::Model,
) -> agents::entity::execution_checkpoint::Model {
    checkpoints::create(
        &f.t.db,
        &f.agents,
        run,
        CheckpointReason::Error,
        Some(json!({"error": "the mail server refused"})),
    )
    .await
    .unwrap()
}

async fn executions(f: &Fixture) -> u64 {
    agent_execution::Entity::find()
        .count(&f.t.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn resume_from_checkpoint_starts_a_new_attempt_at_the_saved_position() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let old = f.failed_run(&alice, 1, 1).await;
    let checkpoint = error_checkpoint(&f, &old).await;
    assert_eq!((checkpoint.phase_index, checkpoint.step_index), (1, 1));
    assert_eq!(checkpoint.phase_name.as_deref(), Some("report"));
    assert_eq!(f.running_agents(alice.user_id).await, 0);

    f.clock.advance(Duration::minutes(3));
    let attempt = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .unwrap();
    assert_ne!(attempt.id, old.id);
    assert_eq!(attempt.session_id, old.session_id);
    assert_eq!(attempt.task_description, old.task_description);
    assert_eq!(attempt.plan, old.plan);
    assert_eq!(
        (attempt.current_phase_index, attempt.step_index),
        (1, 1),
        "the saved position"
    );
    assert_eq!(attempt.attempt, 2);
    assert_eq!(attempt.resumed_from_checkpoint_id, Some(checkpoint.id));
    assert_eq!(attempt.status, "pending");
    assert!(attempt.reservation_id.is_some());
    assert_eq!(
        f.running_agents(alice.user_id).await,
        1,
        "reserved by the gate"
    );
    assert_eq!(f.control(attempt.id).await.control_state, "running");
    assert_eq!(f.checkpoint(checkpoint.id).await.resume_count, 1);
    assert_eq!(
        f.execution(old.id).await.status,
        "failed",
        "the old run stays ended"
    );
}

#[tokio::test]
async fn create_manual_saves_the_current_position_and_refuses_a_completed_run() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let run = f.run(&alice).await;
    f.set_run(run.id, "executing", 0, 2).await;
    let checkpoint = checkpoints::create_manual(&f.t.db, &f.agents, &alice, run.id)
        .await
        .unwrap();
    assert_eq!(checkpoint.checkpoint_reason, "manual");
    assert_eq!((checkpoint.phase_index, checkpoint.step_index), (0, 2));
    assert_eq!(checkpoint.completed_steps, json!([0, 1]));
    assert!(checkpoint.can_resume);
    assert_eq!(checkpoint.resume_count, 0);
    assert_eq!(
        checkpoint.expires_at,
        Some(f.clock.now() + f.agents.settings.checkpoint_ttl)
    );
    assert_eq!(f.events(run.id).await.last().unwrap().0, "checkpoint");

    f.set_run(run.id, "completed", 1, 2).await;
    let err = checkpoints::create_manual(&f.t.db, &f.agents, &alice, run.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    let all = window(None, None, None, None).unwrap();
    let page = checkpoints::list(&f.t.db, &alice, run.id, all)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn a_checkpoint_that_cannot_be_resumed_is_refused() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let old = f.failed_run(&alice, 0, 2).await;
    let checkpoint = error_checkpoint(&f, &old).await;
    f.exec(
        "UPDATE execution_checkpoints SET can_resume = ? WHERE id = ?",
        vec![false.into(), checkpoint.id.into()],
    )
    .await;
    let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(executions(&f).await, 1);
    assert_eq!(f.running_agents(alice.user_id).await, 0);
}

#[tokio::test]
async fn an_expired_checkpoint_is_refused() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let old = f.failed_run(&alice, 0, 2).await;
    let checkpoint = error_checkpoint(&f, &old).await;
    f.clock.advance(f.agents.settings.checkpoint_ttl);
    let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(f.checkpoint(checkpoint.id).await.resume_count, 0);
    assert_eq!(executions(&f).await, 1);
}

#[tokio::test]
async fn a_live_or_completed_run_cannot_be_resumed() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let run = f.run(&alice).await;
    let checkpoint = checkpoints::create_manual(&f.t.db, &f.agents, &alice, run.id)
        .await
        .unwrap();
    for status in ["pending", "planning", "executing", "completed"] {
        f.set_run(run.id, status, 0, 0).await;
        let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidTransition, "{status}");
    }
    assert_eq!(executions(&f).await, 1);
    f.set_run(run.id, "cancelled", 0, 0).await;
    checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .expect("a cancelled run can be resumed");
}

#[tokio::test]
async fn resuming_again_waits_for_the_resumed_attempt_to_end() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let old = f.failed_run(&alice, 0, 2).await;
    let checkpoint = error_checkpoint(&f, &old).await;
    let other = checkpoints::create(&f.t.db, &f.agents, &old, CheckpointReason::Manual, None)
        .await
        .unwrap();
    let first = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .unwrap();
    for id in [checkpoint.id, other.id] {
        let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, id)
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidTransition,
            "one live attempt per run, whichever of its checkpoints"
        );
    }
    f.end_run(&alice, &first, "failed", 0, 2).await;
    let second = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .unwrap();
    assert_eq!(second.attempt, 2, "counted from the checkpoint's run");
    assert_eq!(f.checkpoint(checkpoint.id).await.resume_count, 2);
    f.end_run(&alice, &second, "completed", 1, 2).await;
    let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition, "the work is done");
}

#[tokio::test]
async fn limit_exceeded_when_the_gate_refuses_and_nothing_is_written() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 1, 5).await;
    let old = f.failed_run(&alice, 0, 2).await;
    let checkpoint = error_checkpoint(&f, &old).await;
    // The period's one execution goes to another run.
    f.run(&alice).await;
    let before = executions(&f).await;
    let seq = f.execution(old.id).await.event_seq;
    let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, checkpoint.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    assert_eq!(executions(&f).await, before);
    assert_eq!(f.checkpoint(checkpoint.id).await.resume_count, 0);
    assert_eq!(f.execution(old.id).await.event_seq, seq);
    assert!(f.attempts_from(checkpoint.id).await.is_empty());
}

#[tokio::test]
async fn another_users_checkpoint_is_not_found() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let mallory = f.subscribed_user("mallory@example.com", 10, 5).await;
    let old = f.failed_run(&alice, 0, 2).await;
    let checkpoint = error_checkpoint(&f, &old).await;
    let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &mallory, checkpoint.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = checkpoints::create_manual(&f.t.db, &f.agents, &mallory, old.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let all = window(None, None, None, None).unwrap();
    let err = checkpoints::list(&f.t.db, &mallory, old.id, all)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(f.checkpoint(checkpoint.id).await.resume_count, 0);
    assert_eq!(f.running_agents(mallory.user_id).await, 0);
}

#[tokio::test]
async fn concurrent_resumes_of_one_checkpoint_start_one_attempt() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 100, 100).await;
    let old = f.failed_run(&alice, 1, 0).await;
    let checkpoint = error_checkpoint(&f, &old).await;
    let n = if f.t.is_postgres() { 12 } else { 4 };
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (db, agents, actor) = (f.t.db.clone(), f.agents.clone(), alice.clone());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let txn = db.begin().await.unwrap();
            match checkpoints::resume_from_checkpoint(&txn, &agents, &actor, checkpoint.id).await {
                Ok(attempt) => {
                    txn.commit().await.unwrap();
                    Ok(attempt.id)
                }
                Err(e) => Err(e.code()),
            }
        }));
    }
    let mut started = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(id) => started.push(id),
            Err(code) => assert_eq!(code, Code::InvalidTransition),
        }
    }
    assert_eq!(started.len(), 1, "one attempt starts");
    let attempts = f.attempts_from(checkpoint.id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].id, started[0]);
    assert_eq!(f.checkpoint(checkpoint.id).await.resume_count, 1);
    assert_eq!(
        f.running_agents(alice.user_id).await,
        1,
        "losers reserved nothing"
    );
}

#[tokio::test]
async fn checkpoints_through_graphql() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let mallory = f.subscribed_user("mallory@example.com", 10, 5).await;
    let run = f.run(&alice).await;
    f.set_run(run.id, "executing", 1, 0).await;

    let create = "mutation($id: ID!) { createCheckpoint(executionId: $id) { id reason phaseIndex \
                  phaseName stepIndex canResume resumeCount } }";
    let (_, code, _) = f.gql(&mallory, create, json!({"id": run.id})).await;
    assert_eq!(code.as_deref(), Some("NOT_FOUND"));
    let (data, code, _) = f.gql(&alice, create, json!({"id": run.id})).await;
    assert_eq!(code, None);
    let created = &data["createCheckpoint"];
    assert_eq!(created["reason"], json!("MANUAL"));
    assert_eq!(created["phaseName"], json!("report"));
    let checkpoint_id = created["id"].as_str().unwrap().to_owned();

    let list = "query($id: ID!) { executionCheckpoints(executionId: $id, first: 5) { \
                nodes { id reason } pageInfo { hasNextPage } } }";
    let (data, _, _) = f.gql(&alice, list, json!({"id": run.id})).await;
    assert_eq!(
        data["executionCheckpoints"]["nodes"],
        json!([{"id": checkpoint_id, "reason": "MANUAL"}])
    );
    let (_, code, _) = f.gql(&mallory, list, json!({"id": run.id})).await;
    assert_eq!(code.as_deref(), Some("NOT_FOUND"));

    let resume = "mutation($id: ID!) { resumeFromCheckpoint(checkpointId: $id) { id status \
                  attempt currentPhaseIndex stepIndex resumedFromCheckpointId } }";
    let (_, code, _) = f.gql(&alice, resume, json!({"id": checkpoint_id})).await;
    assert_eq!(
        code.as_deref(),
        Some("INVALID_TRANSITION"),
        "the run is still live"
    );
    f.end_run(&alice, &run, "failed", 1, 0).await;
    let (data, code, _) = f.gql(&alice, resume, json!({"id": checkpoint_id})).await;
    assert_eq!(code, None);
    assert_eq!(
        data["resumeFromCheckpoint"]["resumedFromCheckpointId"],
        json!(checkpoint_id)
    );
    assert_eq!(data["resumeFromCheckpoint"]["attempt"], json!(2));
    assert_eq!(data["resumeFromCheckpoint"]["status"], json!("PENDING"));
    assert_eq!(data["resumeFromCheckpoint"]["currentPhaseIndex"], json!(1));
}

#[tokio::test]
async fn no_two_attempts_of_one_lineage_are_live_through_a_chain_of_checkpoints() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    // A fails with cA; resuming cA starts B; B fails with cB.
    let a = f.failed_run(&alice, 0, 1).await;
    let c_a = error_checkpoint(&f, &a).await;
    let b = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, c_a.id)
        .await
        .unwrap();
    let b = f.end_run(&alice, &b, "failed", 0, 2).await;
    let c_b = error_checkpoint(&f, &b).await;
    // Resuming cA again is allowed (B ended) and starts B2.
    let b2 = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, c_a.id)
        .await
        .unwrap();
    assert_eq!(b2.status, "pending");
    assert_eq!(a.root_execution_id, a.id, "a fresh run is its own root");
    assert_eq!((b.root_execution_id, b2.root_execution_id), (a.id, a.id));
    let before = executions(&f).await;
    let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, c_b.id)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidTransition,
        "B2 replays A's task: no other attempt of A's lineage may start"
    );
    assert_eq!(executions(&f).await, before);
    assert_eq!(f.checkpoint(c_b.id).await.resume_count, 0);
    assert_eq!(
        f.running_agents(alice.user_id).await,
        1,
        "only B2's reservation"
    );

    f.end_run(&alice, &b2, "failed", 0, 1).await;
    let c = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, c_b.id)
        .await
        .expect("no attempt of the lineage is live any more");
    assert_eq!(c.attempt, 3, "B's attempt + 1");
    assert_eq!(
        c.root_execution_id, a.id,
        "the root is inherited down the chain"
    );
    assert_eq!((c.current_phase_index, c.step_index), (0, 2));
    assert_eq!(f.checkpoint(c_b.id).await.resume_count, 1);
    let err = checkpoints::resume_from_checkpoint(&f.t.db, &f.agents, &alice, c_a.id)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidTransition,
        "C is live: resuming the root's checkpoint waits for it too"
    );
}
