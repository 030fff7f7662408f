//! Steps per second through the agent worker: `RUNS` executions of `STEPS`
//! local-plan steps (thoughts and tool calls, then finish), played by
//! `WORKERS` workers with distinct ids racing for the same runs, as several
//! server instances would. The runs belong to `USERS` users (default 1),
//! each with one session, round-robin: with one user every step contends on
//! that session's and subscription's rows, the worst case; with many, the
//! steps of different users touch different rows.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/agents_bench \
//!   cargo run --release -p agents --example worker_bench -- 200 10 2 20
//! ```
//!
//! Without `DATABASE_URL` it runs on in-memory SQLite (one connection).

#[path = "../tests/common/mod.rs"]
mod common;

use agents::AgentWorker;
use agents::executions::{self, StartExecution};
use agents::plan::{Phase, Plan, PlanStep};
use common::Fixture;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use std::time::Instant;

fn plan(steps: usize) -> Plan {
    let mut list: Vec<PlanStep> = (0..steps.saturating_sub(1))
        .map(|i| {
            if i % 2 == 0 {
                PlanStep::Think {
                    text: format!("thought {i}"),
                    tokens: None,
                }
            } else {
                PlanStep::Tool {
                    name: "search".into(),
                    params: json!({ "q": i }),
                    result: json!({ "hits": i }),
                    error: None,
                    duration_ms: 1,
                }
            }
        })
        .collect();
    list.push(PlanStep::Finish {
        result: json!("done"),
    });
    Plan {
        phases: vec![Phase {
            name: "work".into(),
            steps: list,
        }],
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let steps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let users: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
        .clamp(1, runs.max(1));
    let f = Fixture::new().await;
    let n = i32::try_from(runs).expect("runs fit an i32");
    let cap = i32::try_from(runs * steps + 1).expect("iterations fit an i32");
    let mut owners = Vec::with_capacity(users);
    for u in 0..users {
        let user = f
            .subscribed_user(&format!("bench{u}@example.com"), n, n)
            .await;
        let session = f.session(&user, cap.min(10_000)).await;
        owners.push((user, session));
    }
    for r in 0..runs {
        let (user, session) = &owners[r % users];
        let req = StartExecution::parse(session.id, "bench".into(), Some(plan(steps))).unwrap();
        executions::start(&f.t.db, &f.agents, user, req)
            .await
            .expect("the gate admits every run");
    }

    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let worker = AgentWorker::new(f.t.db.clone(), f.agents.clone(), format!("bench-{w}"));
        let db = f.t.db.clone();
        handles.push(tokio::spawn(async move {
            loop {
                kernel::jobs::run_once(&worker).await.expect("a tick");
                let left = agents::entity::agent_execution::Entity::find()
                    .filter(agents::entity::agent_execution::Column::Status.ne("completed"))
                    .count(&db)
                    .await
                    .expect("count");
                if left == 0 {
                    break;
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("worker task");
    }
    let secs = started.elapsed().as_secs_f64();
    let total_steps = (runs * steps) as f64;
    println!(
        "{} runs x {} steps of {} users, {} workers on {}: {:.2} s, {:.0} steps/s, {:.1} runs/s",
        runs,
        steps,
        users,
        workers,
        if f.t.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        secs,
        total_steps / secs,
        runs as f64 / secs
    );
}
