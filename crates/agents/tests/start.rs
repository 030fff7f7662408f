//! Starting an execution: the usage gate decides, and the run is written
//! `pending` with its control row and first event.

mod common;

use agents::executions::{self, StartExecution};
use agents::plan::{Phase, Plan, PlanStep};
use common::Fixture;
use kernel::error::Code;
use serde_json::json;

fn one_step_plan() -> Plan {
    Plan {
        phases: vec![Phase {
            name: "only".into(),
            steps: vec![PlanStep::Finish {
                result: json!("ok"),
            }],
        }],
    }
}

#[tokio::test]
async fn a_start_reserves_an_execution_and_writes_the_run_pending() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let req = StartExecution::parse(session.id, "Do it".into(), Some(one_step_plan())).unwrap();
    let run = executions::start(&f.t.db, &f.agents, &alice, req)
        .await
        .unwrap();
    assert_eq!(run.status, "pending");
    assert!(run.reservation_id.is_some());
    assert_eq!(run.event_seq, 1, "the pending event was logged");
    assert_eq!(f.running_agents(alice.user_id).await, 1);
}

#[tokio::test]
async fn a_start_over_the_plan_limit_is_limit_exceeded_and_writes_nothing() {
    let f = Fixture::new().await;
    let bob = f.subscribed_user("bob@example.com", 10, 1).await;
    let session = f.session(&bob, 10).await;
    let start =
        || StartExecution::parse(session.id, "Do it".into(), Some(one_step_plan())).unwrap();
    executions::start(&f.t.db, &f.agents, &bob, start())
        .await
        .unwrap();
    let err = executions::start(&f.t.db, &f.agents, &bob, start())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded, "one concurrent agent");
}

#[tokio::test]
async fn another_users_session_is_not_found_and_the_local_runner_needs_a_plan() {
    let f = Fixture::new().await;
    let alice = f.subscribed_user("alice@example.com", 10, 2).await;
    let mallory = f.subscribed_user("mallory@example.com", 10, 2).await;
    let session = f.session(&alice, 10).await;
    let req = StartExecution::parse(session.id, "Do it".into(), Some(one_step_plan())).unwrap();
    let err = executions::start(&f.t.db, &f.agents, &mallory, req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let req = StartExecution::parse(session.id, "Do it".into(), None).unwrap();
    let err = executions::start(&f.t.db, &f.agents, &alice, req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::BadUserInput);
    assert_eq!(f.running_agents(alice.user_id).await, 0, "nothing reserved");
}
