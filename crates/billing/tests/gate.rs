//! The usage gate and the period job: every rule on SQLite and, with
//! `DATABASE_URL` set, on PostgreSQL.

mod gate_common;

use billing::gate::{BudgetCheck, ReserveExecution, Source};
use billing::rollover::{PeriodJob, RolloverReport};
use chrono::Duration;
use gate_common::*;
use kernel::clock::Clock;
use kernel::error::{Code, Error};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

fn req() -> ReserveExecution {
    ReserveExecution::default()
}

#[tokio::test]
async fn concurrent_reservations_never_exceed_the_plan_limit() {
    let f = Fixture::new().await;
    let tier = f.tier(10, 1_000, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (db, billing, actor) = (f.t.db.clone(), f.billing.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            match billing.reserve_execution(&db, &actor, req()).await {
                Ok(r) => {
                    billing.commit_execution(&db, &actor, r.id).await.unwrap();
                    Ok(r.source)
                }
                Err(e) => Err(e.code()),
            }
        }));
    }
    let mut granted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(source) => {
                assert_eq!(source, Source::Plan);
                granted += 1;
            }
            Err(code) => assert_eq!(code, Code::LimitExceeded),
        }
    }
    assert_eq!(granted, 10);
    let s = f.subscription(ada.user_id).await;
    assert_eq!(s.used, 10);
    assert_eq!(s.running_agents, 0);
    assert_eq!(f.record(ada.user_id).await.executions_used, 10);
    assert_eq!(f.count_reservations(ada.user_id, "committed").await, 10);
}

#[tokio::test]
async fn packs_are_consumed_soonest_expiring_first_after_the_plan() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let now = f.clock.now();
    let late = f
        .pack(ada.user_id, Some(2), Some(now + Duration::days(20)))
        .await;
    let never = f.pack(ada.user_id, Some(1), None).await;
    let soon = f
        .pack(ada.user_id, Some(1), Some(now + Duration::days(2)))
        .await;

    let mut sources = Vec::new();
    for _ in 0..5 {
        let r = f
            .billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .unwrap();
        f.billing
            .commit_execution(&f.t.db, &ada, r.id)
            .await
            .unwrap();
        sources.push(r.source);
    }
    assert_eq!(
        sources,
        vec![
            Source::Plan,
            Source::Pack(soon),
            Source::Pack(late),
            Source::Pack(late),
            Source::Pack(never),
        ]
    );
    assert_eq!(f.pack_state(soon).await, (Some(0), "depleted".into()));
    let refused = f.billing.reserve_execution(&f.t.db, &ada, req()).await;
    assert_eq!(refused.unwrap_err().code(), Code::LimitExceeded);
    assert_eq!(f.record(ada.user_id).await.additional_executions_used, 4);
}

#[tokio::test]
async fn expired_packs_are_ignored() {
    let f = Fixture::new().await;
    let tier = f.tier(0, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let expired = f
        .pack(
            ada.user_id,
            Some(5),
            Some(f.clock.now() - Duration::hours(1)),
        )
        .await;
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    assert_eq!(f.pack_state(expired).await.0, Some(5));
    assert_eq!(
        f.subscription(ada.user_id).await.running_agents,
        0,
        "slot given back"
    );
}

#[tokio::test]
async fn overage_is_charged_in_the_usage_record_when_the_tier_allows_it() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, Some(150)).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let first = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    assert_eq!(first.source, Source::Plan);
    let mut overage = Vec::new();
    for _ in 0..2 {
        let r = f
            .billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .unwrap();
        assert_eq!(r.source, Source::Overage(150));
        overage.push(r);
    }
    let rec = f.record(ada.user_id).await;
    assert_eq!(
        (rec.overage_executions, rec.overage_charged_cents),
        (2, 300)
    );
    assert_eq!(rec.executions_used, 3);

    // A failed overage execution is not charged.
    assert!(
        f.billing
            .release_execution(&f.t.db, &ada, overage[0].id)
            .await
            .unwrap()
    );
    let rec = f.record(ada.user_id).await;
    assert_eq!(
        (rec.overage_executions, rec.overage_charged_cents),
        (1, 150)
    );
    assert_eq!(rec.executions_used, 2);
}

#[tokio::test]
async fn nothing_left_without_overage_is_limit_exceeded_and_takes_nothing() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    f.billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (1, 1));
    let rec = f.record(ada.user_id).await;
    assert_eq!((rec.overage_executions, rec.overage_charged_cents), (0, 0));
    assert_eq!(f.count_reservations(ada.user_id, "reserved").await, 1);
}

#[tokio::test]
async fn add_on_executions_extend_the_plan_limit() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    f.set_add_on_executions(ada.user_id, 2).await;
    for _ in 0..3 {
        let r = f
            .billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .unwrap();
        assert_eq!(r.source, Source::Plan);
    }
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
}

#[tokio::test]
async fn inactive_or_out_of_period_subscription_is_refused() {
    let f = Fixture::new().await;
    let tier = f.tier(10, 100, Some(100)).await;

    let nobody = f.user("nobody@x.com").await;
    let err = f
        .billing
        .reserve_execution(&f.t.db, &nobody, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);

    for status in ["cancelled", "paused", "past_due"] {
        let who = f.subscribed_user(&format!("{status}@x.com"), tier).await;
        f.set_status(who.user_id, status).await;
        let err = f
            .billing
            .reserve_execution(&f.t.db, &who, req())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::LimitExceeded, "{status}");
        assert_eq!(f.subscription(who.user_id).await.used, 0);
    }

    let ada = f.subscribed_user("ada@x.com", tier).await;
    let trial = f.subscribed_user("trial@x.com", tier).await;
    f.set_status(trial.user_id, "trial").await;
    assert!(
        f.billing
            .reserve_execution(&f.t.db, &trial, req())
            .await
            .is_ok()
    );
    f.clock.advance(Duration::days(32));
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded, "the period has ended");
    assert_eq!(f.count_reservations(ada.user_id, "reserved").await, 0);
}

#[tokio::test]
async fn release_gives_the_execution_back_exactly_once() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    assert!(
        f.billing
            .release_execution(&f.t.db, &ada, r.id)
            .await
            .unwrap()
    );
    assert!(
        !f.billing
            .release_execution(&f.t.db, &ada, r.id)
            .await
            .unwrap()
    );
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (0, 0));
    assert_eq!(f.record(ada.user_id).await.executions_used, 0);
    let err = f
        .billing
        .commit_execution(&f.t.db, &ada, r.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);

    // The one execution is usable again, and only once.
    let again = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    assert!(
        f.billing
            .commit_execution(&f.t.db, &ada, again.id)
            .await
            .unwrap()
    );
    assert!(
        !f.billing
            .commit_execution(&f.t.db, &ada, again.id)
            .await
            .unwrap()
    );
    let err = f
        .billing
        .release_execution(&f.t.db, &ada, again.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidTransition);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (1, 0));
}

#[tokio::test]
async fn concurrent_releases_of_one_reservation_give_back_once() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    f.billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (db, billing, actor) = (f.t.db.clone(), f.billing.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            billing.release_execution(&db, &actor, r.id).await.unwrap()
        }));
    }
    let mut released = 0;
    for t in tasks {
        released += usize::from(t.await.unwrap());
    }
    assert_eq!(released, 1);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (1, 1));
}

#[tokio::test]
async fn released_pack_execution_returns_to_its_pack() {
    let f = Fixture::new().await;
    let tier = f.tier(0, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let pack = f
        .pack(
            ada.user_id,
            Some(1),
            Some(f.clock.now() + Duration::days(5)),
        )
        .await;
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    assert_eq!(f.pack_state(pack).await, (Some(0), "depleted".into()));
    f.billing
        .release_execution(&f.t.db, &ada, r.id)
        .await
        .unwrap();
    assert_eq!(f.pack_state(pack).await, (Some(1), "active".into()));
    assert_eq!(f.record(ada.user_id).await.additional_executions_used, 0);
}

#[tokio::test]
async fn another_users_reservation_is_not_found() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let bob = f.subscribed_user("bob@x.com", tier).await;
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    for result in [
        f.billing.commit_execution(&f.t.db, &bob, r.id).await,
        f.billing.release_execution(&f.t.db, &bob, r.id).await,
        f.billing
            .release_execution(&f.t.db, &bob, Uuid::now_v7())
            .await,
    ] {
        assert_eq!(result.unwrap_err().code(), Code::NotFound);
    }
    assert_eq!(f.count_reservations(ada.user_id, "reserved").await, 1);
}

#[tokio::test]
async fn concurrent_agents_are_capped_by_the_tier() {
    let f = Fixture::new().await;
    let tier = f.tier(100, 3, Some(10)).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (db, billing, actor) = (f.t.db.clone(), f.billing.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            billing.reserve_execution(&db, &actor, req()).await
        }));
    }
    let mut running = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => running.push(r),
            Err(e) => {
                assert_eq!(e.code(), Code::LimitExceeded);
                assert!(e.to_string().contains("agents"), "{e}");
            }
        }
    }
    assert_eq!(running.len(), 3);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (3, 3));
    assert_eq!(f.record(ada.user_id).await.peak_concurrent_agents, 3);

    // Ending one agent frees its slot.
    f.billing
        .commit_execution(&f.t.db, &ada, running[0].id)
        .await
        .unwrap();
    assert!(
        f.billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .is_ok()
    );
    assert!(
        f.billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .is_err()
    );
}

struct Refuse;

impl BudgetCheck for Refuse {
    async fn allows<C: ConnectionTrait>(&self, _: &C, _: Uuid, cost: i64) -> Result<(), Error> {
        if cost > 1_000 {
            Err(Error::LimitExceeded("the daily budget is exhausted".into()))
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn budget_seam_refusal_takes_nothing() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let costly = ReserveExecution::with_estimated_cost(5_000).unwrap();
    let err = f
        .billing
        .reserve_execution_with(&f.t.db, &ada, costly, &Refuse)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (0, 0));
    assert_eq!(f.count_reservations(ada.user_id, "reserved").await, 0);

    let cheap = ReserveExecution::with_estimated_cost(10).unwrap();
    assert!(
        f.billing
            .reserve_execution_with(&f.t.db, &ada, cheap, &Refuse)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn negative_estimated_cost_is_bad_input() {
    let err = ReserveExecution::with_estimated_cost(-1).unwrap_err();
    assert_eq!(err.code(), Code::BadUserInput);
}

#[tokio::test]
async fn rollover_archives_resets_advances_and_is_safe_to_run_twice() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, Some(200)).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    for _ in 0..6 {
        let r = f
            .billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .unwrap();
        f.billing
            .commit_execution(&f.t.db, &ada, r.id)
            .await
            .unwrap();
    }
    let before = f.subscription(ada.user_id).await;
    f.clock
        .advance(before.period_end - f.clock.now() + Duration::minutes(1));

    let report = f.billing.run_period_job(&f.t.db).await.unwrap();
    assert_eq!(report.rolled_over, 1);
    let after = f.subscription(ada.user_id).await;
    assert_eq!(after.period_start, before.period_end);
    assert!(after.period_end > f.clock.now());
    assert_eq!(after.used, 0);
    let old = f.record_at(ada.user_id, before.period_start).await;
    assert!(old.closed, "the ended period is archived");
    assert_eq!(
        (
            old.executions_used,
            old.overage_executions,
            old.overage_charged_cents
        ),
        (6, 1, 200)
    );
    let new = f.record_at(ada.user_id, after.period_start).await;
    assert!(!new.closed);
    assert_eq!(new.executions_used, 0);

    let again = f.billing.run_period_job(&f.t.db).await.unwrap();
    assert_eq!(again, RolloverReport::default());
    assert_eq!(f.subscription(ada.user_id).await, after);
    assert_eq!(f.record_at(ada.user_id, before.period_start).await, old);

    // The new period has the plan's full allowance again.
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    assert_eq!(r.source, Source::Plan);
}

#[tokio::test]
async fn rollover_running_twice_at_once_moves_the_period_once() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let before = f.subscription(ada.user_id).await;
    f.clock.advance(Duration::days(31) + Duration::hours(1));
    let (a, b) = tokio::join!(
        f.billing.run_period_job(&f.t.db),
        f.billing.run_period_job(&f.t.db)
    );
    assert_eq!(a.unwrap().rolled_over + b.unwrap().rolled_over, 1);
    let after = f.subscription(ada.user_id).await;
    assert_eq!(after.period_start, before.period_end);
}

#[tokio::test]
async fn rollover_expires_packs_past_their_expiry() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let now = f.clock.now();
    let short = f
        .pack(ada.user_id, Some(3), Some(now + Duration::days(1)))
        .await;
    let long = f
        .pack(ada.user_id, Some(3), Some(now + Duration::days(90)))
        .await;
    f.clock.advance(Duration::days(2));
    let report = f.billing.run_period_job(&f.t.db).await.unwrap();
    assert_eq!(report.packs_expired, 1);
    assert_eq!(f.pack_state(short).await, (Some(3), "expired".into()));
    assert_eq!(f.pack_state(long).await, (Some(3), "active".into()));
}

#[tokio::test]
async fn rollover_releases_reservations_a_crashed_worker_left() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    f.clock.advance(Duration::hours(2));
    let report = f.billing.run_period_job(&f.t.db).await.unwrap();
    assert_eq!(report.released, 1);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (0, 0));
    assert!(
        !f.billing
            .release_execution(&f.t.db, &ada, r.id)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_extended_reservation_outlives_its_first_expiry_and_is_released_after_the_new_one() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    assert_eq!(r.expires_at, f.clock.now() + Duration::hours(1));
    f.clock.advance(Duration::minutes(50));
    assert!(
        f.billing
            .extend_reservation(&f.t.db, r.id, f.clock.now())
            .await
            .unwrap()
    );

    // Past the first expiry, before the new one (50 min + 1 h): still held.
    f.clock.advance(Duration::minutes(20));
    let report = f.billing.run_period_job(&f.t.db).await.unwrap();
    assert_eq!(report.released, 0);
    assert_eq!(f.count_reservations(ada.user_id, "reserved").await, 1);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (1, 1));

    // Past the new expiry without another extension: abandoned, released.
    f.clock.advance(Duration::minutes(41));
    let report = f.billing.run_period_job(&f.t.db).await.unwrap();
    assert_eq!(report.released, 1);
    assert_eq!(f.count_reservations(ada.user_id, "released").await, 1);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (0, 0));
    assert!(
        !f.billing
            .extend_reservation(&f.t.db, r.id, f.clock.now())
            .await
            .unwrap(),
        "a settled reservation is not extended"
    );
}

#[tokio::test]
async fn rollover_ends_a_subscription_set_to_cancel_at_period_end() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    f.set_cancel_at_period_end(ada.user_id).await;
    f.clock.advance(Duration::days(32));
    let report = f.billing.run_period_job(&f.t.db).await.unwrap();
    assert_eq!(report.cancelled, 1);
    assert_eq!(f.subscription(ada.user_id).await.status, "cancelled");
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
}

#[tokio::test]
async fn period_job_runs_through_kernel_jobs() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let before = f.subscription(ada.user_id).await;
    f.clock.advance(Duration::days(32));
    let job = PeriodJob {
        billing: f.billing.clone(),
        db: f.t.db.clone(),
    };
    kernel::jobs::run_once(&job).await.unwrap();
    assert!(f.subscription(ada.user_id).await.period_start > before.period_start);
}

#[tokio::test]
async fn usage_reports_the_callers_current_period() {
    let f = Fixture::new().await;
    let tier = f.tier(2, 100, Some(75)).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    f.pack(
        ada.user_id,
        Some(1),
        Some(f.clock.now() + Duration::days(3)),
    )
    .await;
    for _ in 0..4 {
        f.billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .unwrap();
    }
    let data = f
        .graphql(
            &ada,
            "{ usage { planLimit planUsed addOnExecutions packExecutionsRemaining executionsUsed \
             overageExecutions overageChargedCents runningAgents maxConcurrentAgents } }",
        )
        .await;
    assert_eq!(
        data["usage"],
        serde_json::json!({
            "planLimit": 2, "planUsed": 2, "addOnExecutions": 0, "packExecutionsRemaining": 0,
            "executionsUsed": 4, "overageExecutions": 1, "overageChargedCents": 75,
            "runningAgents": 4, "maxConcurrentAgents": 100
        })
    );
    let bob = f.user("bob@x.com").await;
    assert_eq!(
        f.graphql(&bob, "{ usage { planLimit } }").await["usage"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn reserve_and_release_mutations_settle_through_the_api() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let data = f
        .graphql(
            &ada,
            "mutation { reserveExecution { id source overageCents } }",
        )
        .await;
    assert_eq!(data["reserveExecution"]["source"], "PLAN");
    let id = data["reserveExecution"]["id"].as_str().unwrap().to_owned();
    let errors = f
        .graphql_errors(&ada, "mutation { reserveExecution { id } }")
        .await;
    assert_eq!(errors, vec!["LIMIT_EXCEEDED".to_owned()]);
    let q = format!("mutation {{ releaseExecution(id: \"{id}\") }}");
    assert_eq!(f.graphql(&ada, &q).await["releaseExecution"], true);
    assert_eq!(f.graphql(&ada, &q).await["releaseExecution"], false);
    assert_eq!(f.subscription(ada.user_id).await.used, 0);
}

#[tokio::test]
async fn gate_migration_rolls_back_cleanly_and_reapplies() {
    use migration::MigratorTrait;
    let f = Fixture::new().await;
    let db = &f.t.db;
    let backend = db.get_database_backend();
    let probe = |sql: &'static str| kernel::db::raw(backend, sql, vec![]);
    // Roll back the gate's migration and every later one, whatever comes after it.
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let gate = names
        .iter()
        .position(|n| n == "m20261128_000012_usage_gate")
        .expect("the gate migration is registered");
    let steps = u32::try_from(names.len() - gate).unwrap();
    migration::Migrator::down(db, Some(steps)).await.unwrap();
    assert!(
        db.query_all_raw(probe("SELECT id FROM usage_reservations"))
            .await
            .is_err()
    );
    assert!(
        db.query_all_raw(probe("SELECT running_agents FROM user_subscriptions"))
            .await
            .is_err()
    );
    assert!(
        db.query_all_raw(probe("SELECT closed_at FROM subscription_usage_records"))
            .await
            .is_err()
    );
    assert!(
        db.query_all_raw(probe("SELECT id FROM user_subscriptions"))
            .await
            .is_ok()
    );
    migration::Migrator::up(db, None).await.unwrap();
    let tier = f.tier(1, 1, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    assert!(f.billing.reserve_execution(db, &ada, req()).await.is_ok());
}

#[tokio::test]
async fn concurrent_reservations_never_overdraw_packs() {
    let f = Fixture::new().await;
    let tier = f.tier(0, 1_000, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let now = f.clock.now();
    let a = f
        .pack(ada.user_id, Some(3), Some(now + Duration::days(1)))
        .await;
    let b = f
        .pack(ada.user_id, Some(4), Some(now + Duration::days(9)))
        .await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (db, billing, actor) = (f.t.db.clone(), f.billing.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            billing.reserve_execution(&db, &actor, req()).await
        }));
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                assert!(matches!(r.source, Source::Pack(_)));
                granted += 1;
            }
            Err(e) => assert_eq!(e.code(), Code::LimitExceeded),
        }
    }
    assert_eq!(granted, 7);
    assert_eq!(f.pack_state(a).await, (Some(0), "depleted".into()));
    assert_eq!(f.pack_state(b).await, (Some(0), "depleted".into()));
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (0, 7));
    assert_eq!(f.record(ada.user_id).await.additional_executions_used, 7);
}

#[tokio::test]
async fn a_subscription_from_subscribe_and_a_bought_pack_feed_the_gate() {
    use billing::quote::Frequency;
    use billing::subscriptions::Subscribe;
    let f = Fixture::new().await;
    let ada = f.user("ada@x.com").await;
    let starter = migration::m20261128_000008_billing_plans::STARTER_ID;
    let sub = Subscribe {
        tier_id: starter,
        frequency: Frequency::Monthly,
        trial: false,
    };
    f.billing.subscribe(&f.t.db, &ada, sub).await.unwrap();
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    assert_eq!(r.source, Source::Plan);
    f.billing
        .commit_execution(&f.t.db, &ada, r.id)
        .await
        .unwrap();

    let boost = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000011);
    let pack = f
        .billing
        .buy_execution_pack(&f.t.db, &ada, boost)
        .await
        .unwrap();
    f.exec(
        "UPDATE user_subscriptions SET executions_used_this_period = 200 WHERE user_id = ?",
        vec![ada.user_id.into()],
    )
    .await;
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap();
    assert_eq!(r.source, Source::Pack(pack.id));
    let usage = f.billing.usage(&f.t.db, &ada).await.unwrap().unwrap();
    assert_eq!(
        (usage.plan_limit, usage.pack_executions_remaining),
        (200, Some(49))
    );
    assert_eq!(usage.executions_used, 2);
}

#[tokio::test]
async fn rollover_bills_the_next_period_and_the_ended_periods_overage() {
    let f = Fixture::new().await;
    let tier = f.tier(1, 100, Some(250)).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    for _ in 0..3 {
        let r = f
            .billing
            .reserve_execution(&f.t.db, &ada, req())
            .await
            .unwrap();
        f.billing
            .commit_execution(&f.t.db, &ada, r.id)
            .await
            .unwrap();
    }
    f.clock.advance(Duration::days(32));
    f.billing.run_period_job(&f.t.db).await.unwrap();
    let s = f.subscription(ada.user_id).await;
    assert_eq!(s.status, "active");
    let invoice = f.renewal(ada.user_id, s.period_start).await;
    // The fixture tier costs 10 000 cents a month; two overage executions at 250.
    assert_eq!(invoice["periodCents"], 10_000);
    assert_eq!(invoice["overageCents"], 500);
    assert_eq!(invoice["amountCents"], 10_500);
    assert!(
        invoice["paymentId"]
            .as_str()
            .unwrap()
            .starts_with("local_pay_")
    );
}

struct Declining;

#[async_trait::async_trait]
impl billing::PaymentGateway for Declining {
    async fn charge(
        &self,
        _: &billing::Charge,
    ) -> Result<billing::Payment, billing::gateway::GatewayError> {
        Err(billing::gateway::GatewayError::Declined(
            "card declined".into(),
        ))
    }
}

#[tokio::test]
async fn a_declined_renewal_leaves_the_subscription_past_due_and_the_gate_refuses() {
    let f = Fixture::new().await;
    let tier = f.tier(5, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let clock: kernel::clock::SharedClock = f.clock.clone();
    let declining =
        billing::Billing::new(Default::default(), clock, std::sync::Arc::new(Declining));
    f.clock.advance(Duration::days(32));
    declining.run_period_job(&f.t.db).await.unwrap();
    let s = f.subscription(ada.user_id).await;
    assert_eq!(s.status, "past_due");
    assert_eq!(
        f.renewal(ada.user_id, s.period_start).await["status"],
        "past_due"
    );
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
}

/// The platform gate consults the caller's cost budgets: an auto-stop budget
/// that is spent refuses new work, and so does an estimate that would cross it.
#[tokio::test]
async fn an_exhausted_auto_stop_budget_makes_the_gate_refuse_new_work() {
    use billing::budgets::{NewBudget, Percent, Window, parse_limit};
    use billing::costs::{Provider, TokenUsage};
    use sea_orm::TransactionTrait;

    let f = Fixture::new().await;
    let tier = f.tier(50, 100, None).await;
    let ada = f.subscribed_user("ada@x.com", tier).await;
    let budget = NewBudget {
        window: Window::Daily,
        limit: parse_limit("limit", "0.30").unwrap(),
        alert_threshold: Percent::parse("alertThreshold", 80).unwrap(),
        auto_stop_on_limit: true,
    };
    f.billing
        .create_budget(&f.t.db, &ada, budget)
        .await
        .unwrap();

    // $0.20 of a $0.30 budget spent: a $0.05 estimate passes, a $0.15 one would cross it.
    let spend = |tokens: i64| {
        let usage = TokenUsage::parse(
            Provider::Anthropic,
            "claude-sonnet-4".into(),
            tokens,
            0,
            0,
            0,
            None,
            None,
            None,
            None,
            None,
        )
        .unwrap();
        let (db, billing, ada) = (f.t.db.clone(), f.billing.clone(), ada.clone());
        async move {
            let txn = db.begin().await.unwrap();
            billing.record_token_usage(&txn, &ada, usage).await.unwrap();
            txn.commit().await.unwrap();
        }
    };
    spend(200_000 / 3).await;
    let cheap = ReserveExecution::with_estimated_cost(50_000_000).unwrap();
    let r = f
        .billing
        .reserve_execution(&f.t.db, &ada, cheap)
        .await
        .unwrap();
    f.billing
        .release_execution(&f.t.db, &ada, r.id)
        .await
        .unwrap();
    let costly = ReserveExecution::with_estimated_cost(150_000_000).unwrap();
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, costly)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);

    // Spent to the limit: even work estimated at nothing is refused, and nothing is taken.
    spend(100_000 - 200_000 / 3).await;
    let free = ReserveExecution::with_estimated_cost(0).unwrap();
    let err = f
        .billing
        .reserve_execution(&f.t.db, &ada, free)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    let s = f.subscription(ada.user_id).await;
    assert_eq!((s.used, s.running_agents), (0, 0));
}
