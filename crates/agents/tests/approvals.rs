//! Approvals: the risk rules decide who answers, the owner or the expiry job
//! answers exactly once, and the run's control is released for the worker.
//! Every rule on SQLite and, with `DATABASE_URL` set, on PostgreSQL.

mod approvals_common;
mod common;

use agents::approvals::{self, MAX_REASON, RejectionReason};
use agents::expiry::{self, ApprovalExpiryJob, ExpiryReport};
use agents::status::ApprovalStatus;
use agents::{Agents, approvals::for_step};
use approvals_common::{harmless, moderate, risky};
use chrono::Duration;
use common::Fixture;
use kernel::clock::{Clock, ManualClock, SharedClock};
use kernel::error::{Code, Error};
use kernel::jobs::{Job, run_once};
use kernel::page::window;
use sea_orm::TransactionTrait;
use serde_json::json;
use std::sync::Arc;

fn reason(text: &str) -> Option<RejectionReason> {
    RejectionReason::parse(Some(text.into())).unwrap()
}

fn kinds(events: &[(String, serde_json::Value)]) -> Vec<&str> {
    events.iter().map(|(k, _)| k.as_str()).collect()
}

#[tokio::test]
async fn low_risk_is_approved_automatically_with_no_human() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, harmless()).await;
    assert_eq!(approval.status, "approved");
    assert_eq!(approval.risk_level, "low");
    assert_eq!(approval.approved_at, Some(f.clock.now()));
    assert_eq!(f.control(run.id).await.control_state, "running");
    let events = f.events(run.id).await;
    let (kind, payload) = events.last().unwrap();
    assert_eq!(kind, "approval_answered");
    assert_eq!(payload["automatic"], json!(true));
    let found = for_step(&f.t.db, run.id, 0, 1).await.unwrap().unwrap();
    assert_eq!(found.id, approval.id);
}

#[tokio::test]
async fn high_risk_waits_pending_for_a_human_until_the_default_ttl() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    assert_eq!(approval.status, "pending");
    assert_eq!(approval.risk_level, "high");
    assert_eq!(approval.risk_factors, json!(["sends to the outside"]));
    assert_eq!(approval.timeout_action, "reject");
    assert_eq!(approval.expires_at, f.clock.now() + Duration::minutes(5));
    assert_eq!(approval.approved_at, None);
    let (kind, payload) = f.events(run.id).await.pop().unwrap();
    assert_eq!(kind, "approval_needed");
    assert_eq!(payload["riskLevel"], json!("high"));
}

#[tokio::test]
async fn approve_moves_the_control_to_running_and_emits_events() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    f.clock.advance(Duration::minutes(1));
    let answered = approvals::approve(&f.t.db, &f.agents, &alice, approval.id)
        .await
        .unwrap();
    assert_eq!(answered.status, "approved");
    assert_eq!(answered.approved_at, Some(f.clock.now()));
    let control = f.control(run.id).await;
    assert_eq!(control.control_state, "running");
    assert_eq!(control.last_state_change, f.clock.now());
    assert!(
        control
            .state_reason
            .unwrap()
            .contains(&approval.id.to_string())
    );
    let events = f.events(run.id).await;
    let tail = &events[events.len() - 2..];
    assert_eq!(kinds(tail), ["approval_answered", "control_changed"]);
    assert_eq!(
        tail[0].1,
        json!({"approvalId": approval.id, "status": "approved"})
    );
    assert_eq!(tail[1].1["from"], json!("awaiting_approval"));
    assert_eq!(tail[1].1["to"], json!("running"));
    let found = for_step(&f.t.db, run.id, 0, 1).await.unwrap().unwrap();
    assert_eq!(found.status, "approved", "the worker reads the answer");
}

#[tokio::test]
async fn reject_records_the_reason_and_releases_the_run() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    let answered = approvals::reject(
        &f.t.db,
        &f.agents,
        &alice,
        approval.id,
        reason("  wrong recipient  "),
    )
    .await
    .unwrap();
    assert_eq!(answered.status, "rejected");
    assert_eq!(
        answered.rejection_reason.as_deref(),
        Some("wrong recipient")
    );
    assert_eq!(answered.rejected_at, Some(f.clock.now()));
    assert_eq!(answered.approved_at, None);
    assert_eq!(f.control(run.id).await.control_state, "running");
    let events = f.events(run.id).await;
    assert_eq!(
        kinds(&events[events.len() - 2..]),
        ["approval_answered", "control_changed"]
    );
}

#[tokio::test]
async fn a_rejection_reason_is_trimmed_blank_is_none_and_too_long_is_bad_user_input() {
    assert_eq!(RejectionReason::parse(Some("   ".into())).unwrap(), None);
    assert_eq!(RejectionReason::parse(None).unwrap(), None);
    assert_eq!(
        reason(" no ").map(|r| r.as_str().to_owned()),
        Some("no".into())
    );
    let long = "x".repeat(MAX_REASON + 1);
    let err = RejectionReason::parse(Some(long)).unwrap_err();
    assert!(matches!(err, Error::BadInput { ref field, .. } if field == "reason"));
    assert!(RejectionReason::parse(Some("x".repeat(MAX_REASON))).is_ok());
}

#[tokio::test]
async fn approve_after_expiry_is_invalid_transition_before_the_job_ran() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(Some("approve"))).await;
    f.clock.advance(Duration::minutes(5));
    let err = approvals::approve(&f.t.db, &f.agents, &alice, approval.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    let err = approvals::reject(&f.t.db, &f.agents, &alice, approval.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(f.approval(approval.id).await.status, "pending");
    assert_eq!(f.control(run.id).await.control_state, "awaiting_approval");
}

#[tokio::test]
async fn approve_after_expiry_is_invalid_transition_after_the_job_ran() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (_, approval) = f.waiting(&alice, risky(None)).await;
    f.clock.advance(Duration::minutes(6));
    expiry::expire_due(&f.t.db, &f.agents).await.unwrap();
    let err = approvals::approve(&f.t.db, &f.agents, &alice, approval.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(f.approval(approval.id).await.status, "expired");
}

#[tokio::test]
async fn an_approval_is_answered_once() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    approvals::approve(&f.t.db, &f.agents, &alice, approval.id)
        .await
        .unwrap();
    let seq = f.execution(run.id).await.event_seq;
    for err in [
        approvals::approve(&f.t.db, &f.agents, &alice, approval.id)
            .await
            .unwrap_err(),
        approvals::reject(&f.t.db, &f.agents, &alice, approval.id, reason("late"))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::InvalidTransition);
    }
    let after = f.approval(approval.id).await;
    assert_eq!(
        (after.status.as_str(), after.rejection_reason),
        ("approved", None)
    );
    assert_eq!(f.execution(run.id).await.event_seq, seq, "no event logged");
}

#[tokio::test]
async fn answering_a_cancelled_or_finished_run_is_invalid_transition() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (cancelled, first) = f.waiting(&alice, risky(None)).await;
    f.set_control(cancelled.id, "cancelled", Some("owner cancelled".into()))
        .await;
    let err = approvals::approve(&f.t.db, &f.agents, &alice, first.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);

    let (finished, second) = f.waiting(&alice, risky(None)).await;
    f.set_run(finished.id, "failed", 0, 1).await;
    let err = approvals::reject(&f.t.db, &f.agents, &alice, second.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(f.approval(first.id).await.status, "pending");
    assert_eq!(f.approval(second.id).await.status, "pending");
    assert_eq!(f.control(cancelled.id).await.control_state, "cancelled");
}

#[tokio::test]
async fn a_run_paused_while_it_waited_stays_paused_when_answered() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    f.set_control(run.id, "paused", Some("owner paused".into()))
        .await;
    approvals::approve(&f.t.db, &f.agents, &alice, approval.id)
        .await
        .unwrap();
    let control = f.control(run.id).await;
    assert_eq!(control.control_state, "paused");
    assert_eq!(control.state_reason.as_deref(), Some("owner paused"));
    let events = f.events(run.id).await;
    assert_eq!(events.last().unwrap().0, "approval_answered");
}

#[tokio::test]
async fn another_users_approval_is_not_found() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let mallory = f.subscribed_user("mallory@example.com", 10, 5).await;
    let (_, approval) = f.waiting(&alice, risky(None)).await;
    let err = approvals::approve(&f.t.db, &f.agents, &mallory, approval.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = approvals::reject(&f.t.db, &f.agents, &mallory, approval.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        approvals::find(&f.t.db, &mallory, approval.id)
            .await
            .unwrap()
            .is_none()
    );
    let all = window(None, None, None, None).unwrap();
    let page = approvals::list(&f.t.db, &mallory, None, all).await.unwrap();
    assert!(page.items.is_empty());
    assert_eq!(f.approval(approval.id).await.status, "pending");
}

#[tokio::test]
async fn the_expiry_job_applies_reject_and_approve_timeout_actions() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (rejecting_run, rejecting) = f.waiting(&alice, risky(None)).await;
    let (approving_run, approving) = f.waiting(&alice, moderate(Some("approve"))).await;
    f.clock.advance(Duration::minutes(5) - Duration::seconds(1));
    let report = expiry::expire_due(&f.t.db, &f.agents).await.unwrap();
    assert_eq!(report, ExpiryReport::default(), "nothing is due yet");

    f.clock.advance(Duration::seconds(1));
    let job = ApprovalExpiryJob {
        db: f.t.db.clone(),
        agents: f.agents.clone(),
    };
    assert_eq!(job.name(), "agents.approval_expiry");
    run_once(&job).await.unwrap();

    let rejected = f.approval(rejecting.id).await;
    assert_eq!(rejected.status, "expired");
    assert_eq!((rejected.approved_at, rejected.rejected_at), (None, None));
    let approved = f.approval(approving.id).await;
    assert_eq!(approved.status, "approved");
    assert_eq!(approved.approved_at, Some(f.clock.now()));
    for run in [&rejecting_run, &approving_run] {
        assert_eq!(f.control(run.id).await.control_state, "running");
        let events = f.events(run.id).await;
        let tail = &events[events.len() - 2..];
        assert_eq!(kinds(tail), ["approval_answered", "control_changed"]);
        assert_eq!(tail[0].1["timeout"], json!(true));
    }
    assert_eq!(
        for_step(&f.t.db, rejecting_run.id, 0, 1)
            .await
            .unwrap()
            .unwrap()
            .status,
        "expired",
        "the worker fails this run with \"approval expired\""
    );
}

#[tokio::test]
async fn the_expiry_job_run_twice_changes_nothing_the_second_time() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    f.clock.advance(Duration::minutes(10));
    let first = expiry::expire_due(&f.t.db, &f.agents).await.unwrap();
    assert_eq!(
        first,
        ExpiryReport {
            expired: 1,
            approved: 0
        }
    );
    let settled = f.approval(approval.id).await;
    let seq = f.execution(run.id).await.event_seq;
    f.clock.advance(Duration::minutes(1));
    let second = expiry::expire_due(&f.t.db, &f.agents).await.unwrap();
    assert_eq!(second, ExpiryReport::default());
    assert_eq!(f.approval(approval.id).await, settled);
    assert_eq!(f.execution(run.id).await.event_seq, seq);
    let err = expiry::expire(&f.t.db, &f.agents, approval.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
}

#[tokio::test]
async fn a_due_approval_of_an_ended_run_expires_whatever_its_timeout_action() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(Some("approve"))).await;
    f.set_control(run.id, "cancelled", None).await;
    f.set_run(run.id, "cancelled", 0, 1).await;
    // A run failed while its control still held it for the approval.
    let (failed, held) = f.waiting(&alice, risky(Some("approve"))).await;
    f.set_run(failed.id, "failed", 0, 1).await;
    f.clock.advance(Duration::minutes(5));
    let report = expiry::expire_due(&f.t.db, &f.agents).await.unwrap();
    assert_eq!(
        report,
        ExpiryReport {
            expired: 2,
            approved: 0
        }
    );
    assert_eq!(f.approval(approval.id).await.status, "expired");
    assert_eq!(f.approval(held.id).await.status, "expired");
    assert_eq!(f.control(run.id).await.control_state, "cancelled");
    assert_eq!(
        f.control(failed.id).await.control_state,
        "awaiting_approval",
        "an ended run's control is not released"
    );
    assert_eq!(
        f.events(failed.id).await.last().unwrap().0,
        "approval_answered"
    );
}

/// Another server whose clock is past the approval's expiry: its expiry job
/// races owners answering on this one.
fn late_agents(f: &Fixture) -> Agents {
    let late = ManualClock::new();
    late.advance(f.clock.now() - late.now() + Duration::minutes(5));
    let clock: SharedClock = late;
    Agents {
        clock,
        ..f.agents.clone()
    }
}

#[tokio::test]
async fn concurrent_approve_reject_and_expire_settle_an_approval_exactly_once() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    let late = late_agents(&f);
    let n = if f.t.is_postgres() { 24 } else { 6 };
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let db = f.t.db.clone();
        let (early, late, actor) = (f.agents.clone(), late.clone(), alice.clone());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let txn = db.begin().await.unwrap();
            let outcome = match i % 3 {
                0 => approvals::approve(&txn, &early, &actor, approval.id).await,
                1 => approvals::reject(&txn, &early, &actor, approval.id, None).await,
                _ => expiry::expire(&txn, &late, approval.id).await,
            };
            match outcome {
                Ok(a) => {
                    txn.commit().await.unwrap();
                    Ok(a.status)
                }
                Err(e) => Err(e.code()),
            }
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(status) => winners.push(status),
            Err(code) => assert_eq!(code, Code::InvalidTransition),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one answer wins: {winners:?}");
    assert_eq!(f.approval(approval.id).await.status, winners[0]);
    let events = f.events(run.id).await;
    let answered = events
        .iter()
        .filter(|(k, _)| k == "approval_answered")
        .count();
    let released = events
        .iter()
        .filter(|(k, _)| k == "control_changed")
        .count();
    assert_eq!((answered, released), (1, 1));
    assert_eq!(f.control(run.id).await.control_state, "running");
}

#[tokio::test]
async fn the_expiry_job_waits_for_an_uncommitted_answer_and_then_leaves_it() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (run, approval) = f.waiting(&alice, risky(None)).await;
    let answer = f.t.db.begin().await.unwrap();
    approvals::approve(&answer, &f.agents, &alice, approval.id)
        .await
        .unwrap();
    // The job of another instance, whose clock says the approval is due,
    // starts while the answer is not committed yet.
    let job = {
        let (db, late) = (f.t.db.clone(), late_agents(&f));
        tokio::spawn(async move { expiry::expire_due(&db, &late).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!job.is_finished(), "the job waits for the answer's lock");
    answer.commit().await.unwrap();
    let report = job.await.unwrap().unwrap();
    assert_eq!(report, ExpiryReport::default());
    assert_eq!(f.approval(approval.id).await.status, "approved");
    let answered = f
        .events(run.id)
        .await
        .iter()
        .filter(|(k, _)| k == "approval_answered")
        .count();
    assert_eq!(answered, 1);
}

#[tokio::test]
async fn the_callers_approvals_are_listed_newest_first_and_filtered_by_status() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (_, old) = f.waiting(&alice, risky(None)).await;
    let (_, auto) = f.waiting(&alice, harmless()).await;
    let (_, new) = f.waiting(&alice, risky(None)).await;
    let all = window(None, None, None, None).unwrap();
    let page = approvals::list(&f.t.db, &alice, None, all).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [new.id, auto.id, old.id]);
    let pending = approvals::list(&f.t.db, &alice, Some(ApprovalStatus::Pending), all)
        .await
        .unwrap();
    let ids: Vec<_> = pending.items.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [new.id, old.id]);
}

#[tokio::test]
async fn approvals_through_graphql() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let mallory = f.subscribed_user("mallory@example.com", 10, 5).await;
    let (run, first) = f.waiting(&alice, risky(None)).await;
    let (_, second) = f.waiting(&alice, risky(None)).await;

    let list = "query($s: ApprovalStatus) { actionApprovals(status: $s, first: 10) { \
                nodes { id status riskLevel riskFactors timeoutAction } pageInfo { hasNextPage } } }";
    let (data, code, _) = f.gql(&alice, list, json!({"s": "PENDING"})).await;
    assert_eq!(code, None);
    let nodes = data["actionApprovals"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["id"], json!(second.id.to_string()));
    assert_eq!(nodes[0]["riskLevel"], json!("HIGH"));
    assert_eq!(nodes[0]["timeoutAction"], json!("REJECT"));

    let approve = "mutation($id: ID!) { approveAction(id: $id) { id status approvedAt } }";
    let (_, code, _) = f.gql(&mallory, approve, json!({"id": first.id})).await;
    assert_eq!(code.as_deref(), Some("NOT_FOUND"));
    let (data, code, _) = f.gql(&alice, approve, json!({"id": first.id})).await;
    assert_eq!(code, None);
    assert_eq!(data["approveAction"]["status"], json!("APPROVED"));
    assert_eq!(f.control(run.id).await.control_state, "running");
    let (_, code, _) = f.gql(&alice, approve, json!({"id": first.id})).await;
    assert_eq!(code.as_deref(), Some("INVALID_TRANSITION"));

    let reject = "mutation($input: RejectActionInput!) { rejectAction(input: $input) { \
                  status rejectionReason } }";
    let long = "x".repeat(MAX_REASON + 1);
    let (_, code, field) = f
        .gql(
            &alice,
            reject,
            json!({"input": {"id": second.id, "reason": long}}),
        )
        .await;
    assert_eq!(
        (code.as_deref(), field.as_deref()),
        (Some("BAD_USER_INPUT"), Some("reason"))
    );
    assert_eq!(f.approval(second.id).await.status, "pending");
    let (data, code, _) = f
        .gql(
            &alice,
            reject,
            json!({"input": {"id": second.id, "reason": "no"}}),
        )
        .await;
    assert_eq!(code, None);
    assert_eq!(
        data["rejectAction"],
        json!({"status": "REJECTED", "rejectionReason": "no"})
    );

    let one = "query($id: ID!) { actionApproval(id: $id) { id status } }";
    let (data, _, _) = f.gql(&mallory, one, json!({"id": first.id})).await;
    assert_eq!(data["actionApproval"], json!(null));
    let (data, _, _) = f.gql(&alice, one, json!({"id": first.id})).await;
    assert_eq!(data["actionApproval"]["status"], json!("APPROVED"));
    let (_, code, field) = f.gql(&alice, one, json!({"id": "nope"})).await;
    assert_eq!(
        (code.as_deref(), field.as_deref()),
        (Some("BAD_USER_INPUT"), Some("id"))
    );
}

#[tokio::test]
async fn silence_never_approves_a_high_or_critical_action() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 5).await;
    let (_, high) = f.waiting(&alice, risky(Some("approve"))).await;
    assert_eq!(high.risk_level, "high");
    assert_eq!(
        high.timeout_action, "reject",
        "only a human approves a high risk"
    );
    let (_, medium) = f.waiting(&alice, moderate(Some("approve"))).await;
    assert_eq!(medium.risk_level, "medium");
    assert_eq!(medium.timeout_action, "approve");
    f.clock.advance(Duration::minutes(5));
    let report = expiry::expire_due(&f.t.db, &f.agents).await.unwrap();
    assert_eq!(
        report,
        ExpiryReport {
            expired: 1,
            approved: 1
        }
    );
    assert_eq!(f.approval(high.id).await.status, "expired");
}
