//! Reservations per second under contention: `TASKS` tasks each reserve and
//! commit `PER_TASK` executions against one subscription with a limit large
//! enough never to refuse, so every task fights over the same rows.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/h4_gate \
//!   cargo run --release -p billing --example reserve_bench -- 32 100 tx
//! ```
//!
//! The third argument `tx` runs each reserve and each commit in its own
//! transaction (as the GraphQL mutations do: one WAL flush per call);
//! without it every statement commits on its own.
//!
//! Without `DATABASE_URL` it runs on in-memory SQLite (one connection).

#[path = "../tests/gate_common/mod.rs"]
mod gate_common;

use billing::gate::ReserveExecution;
use gate_common::Fixture;
use sea_orm::TransactionTrait;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let per_task: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let in_tx = args.next().is_some_and(|a| a == "tx");
    let f = Fixture::new().await;
    let limit = i32::try_from(tasks * per_task).unwrap_or(i32::MAX);
    let concurrent = i32::try_from(tasks).unwrap_or(i32::MAX);
    let tier = f.tier(limit, concurrent, None).await;
    let user = f.subscribed_user("bench@x.com", tier).await;

    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (db, billing, actor) = (f.t.db.clone(), f.billing.clone(), user.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                if in_tx {
                    let txn = db.begin().await.expect("begin");
                    let r = billing
                        .reserve_execution(&txn, &actor, ReserveExecution::default())
                        .await
                        .expect("the limit is never reached");
                    txn.commit().await.expect("commit reserve");
                    let txn = db.begin().await.expect("begin");
                    billing
                        .commit_execution(&txn, &actor, r.id)
                        .await
                        .expect("commit");
                    txn.commit().await.expect("commit settle");
                } else {
                    let r = billing
                        .reserve_execution(&db, &actor, ReserveExecution::default())
                        .await
                        .expect("the limit is never reached");
                    billing
                        .commit_execution(&db, &actor, r.id)
                        .await
                        .expect("commit");
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let elapsed = started.elapsed();
    let total = tasks * per_task;
    let used = f.subscription(user.user_id).await.used;
    assert_eq!(used, total as i64, "every reservation counted exactly once");
    println!(
        "backend={} tx={in_tx} tasks={tasks} reservations={total} elapsed={:.2}s rate={:.0} reserve+commit/s",
        if f.t.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}
