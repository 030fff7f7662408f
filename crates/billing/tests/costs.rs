//! Cost tracking and budgets: exact prices, price versions, daily summaries on
//! UTC days, once-per-window alerts, the auto-stop pre-flight check and the
//! month-end forecast. Every test runs on SQLite, and on PostgreSQL when
//! `DATABASE_URL` is set.

mod costs_common;

use billing::budgets::{
    BudgetChange, LIMIT_EVENT, NewBudget, Percent, THRESHOLD_EVENT, Window, parse_limit, project,
};
use billing::cost_entity::{
    api_token_usage, billing_event, browserbase_cost, budget_alert, daily_cost_summary,
    gemini_token_usage, storage_cost,
};
use billing::costs::{BrowserSession, Provider, StorageOperation, TokenUsage};
use billing::nanos::Nanos;
use billing::prices::NewModelPrice;
use chrono::{Duration, NaiveDate};
use core_auth::admin::AdminCap;
use costs_common::*;
use kernel::actor::Actor;
use kernel::error::Code;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("valid day")
}

async fn summaries(w: &World, actor: &Actor) -> Vec<daily_cost_summary::Model> {
    daily_cost_summary::Entity::find()
        .filter(daily_cost_summary::Column::UserId.eq(actor.user_id))
        .order_by_asc(daily_cost_summary::Column::Day)
        .all(w.conn())
        .await
        .expect("summaries")
}

async fn budget(w: &World, actor: &Actor, window: Window, limit: &str, threshold: i32, stop: bool) {
    let req = NewBudget {
        window,
        limit: parse_limit("limit", limit).expect("valid limit"),
        alert_threshold: Percent::parse("alertThreshold", threshold).expect("valid percent"),
        auto_stop_on_limit: stop,
    };
    w.billing
        .create_budget(w.conn(), actor, req)
        .await
        .expect("budget created");
}

async fn events(w: &World, kind: &str) -> Vec<billing_event::Model> {
    billing_event::Entity::find()
        .filter(billing_event::Column::Kind.eq(kind))
        .order_by_asc(billing_event::Column::Id)
        .all(w.conn())
        .await
        .expect("events")
}

#[tokio::test]
async fn token_cost_is_exact_per_component_for_a_known_vector() {
    let w = world_at(at("2026-11-10T12:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    // claude-sonnet-4: $3/M input, $15/M output, $3.75/M cache write, $0.30/M cache read.
    let usage = anthropic("Claude-Sonnet-4", 1_234_567, 1_000, 10_000, 100_000);
    let txn = w.conn().begin().await.unwrap();
    let r = w
        .billing
        .record_token_usage(&txn, &alice, usage)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let row = api_token_usage::Entity::find_by_id(r.id)
        .one(w.conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.input_cost_nanos, 3_703_701_000); // $3.703701 exactly
    assert_eq!(row.output_cost_nanos, 15_000_000); // $0.015
    assert_eq!(row.cache_cost_nanos, 37_500_000 + 30_000_000); // $0.0375 + $0.03
    assert_eq!(row.total_cost_nanos, 3_786_201_000);
    assert_eq!(r.cost.to_usd(), "3.786201000");
    assert_eq!(row.model, "claude-sonnet-4");
    assert_eq!(row.total_tokens, 1_234_567 + 1_000 + 10_000 + 100_000);
}

#[tokio::test]
async fn gemini_calls_are_priced_from_their_own_rows_and_table() {
    let w = world_at(at("2026-11-10T12:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    let usage = TokenUsage::parse(
        Provider::Google,
        "gemini-2.5-flash".into(),
        2_000_000,
        400_000,
        0,
        0,
        None,
        None,
        None,
        Some("STOP".into()),
        None,
    )
    .unwrap();
    let txn = w.conn().begin().await.unwrap();
    let r = w
        .billing
        .record_token_usage(&txn, &alice, usage)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    // $0.30/M x 2M + $2.50/M x 0.4M = $0.60 + $1.00
    assert_eq!(r.cost, Nanos(1_600_000_000));
    assert_eq!(w.count::<gemini_token_usage::Entity>().await, 1);
    assert_eq!(w.count::<api_token_usage::Entity>().await, 0);
    let s = &summaries(&w, &alice).await[0];
    assert_eq!(
        (s.total_gemini_calls, s.gemini_cost_nanos),
        (1, 1_600_000_000)
    );
    let cached = TokenUsage::parse(
        Provider::Google,
        "gemini-2.5-flash".into(),
        1,
        1,
        5,
        0,
        None,
        None,
        None,
        None,
        None,
    );
    assert_eq!(cached.unwrap_err().code(), Code::BadUserInput);
}

#[tokio::test]
async fn the_price_version_in_force_at_the_usage_time_is_used() {
    let w = world_at(at("2026-11-10T12:00:00Z")).await;
    let admin = w.admin("admin@example.com").await;
    let alice = w.user("alice@example.com").await;
    let cap = AdminCap::check(&admin).unwrap();
    let new_price = NewModelPrice::parse(
        Provider::Anthropic,
        "claude-sonnet-4".into(),
        "6",
        "30",
        None,
        None,
        at("2026-11-11T00:00:00Z"),
    )
    .unwrap();
    let v2 = w
        .billing
        .create_model_price(w.conn(), &cap, new_price.clone())
        .await
        .unwrap();
    let before = w
        .tokens(&alice, "claude-sonnet-4", 1_000_000, 0)
        .await
        .unwrap();
    assert_eq!(before.cost, Nanos(3_000_000_000));
    w.set_time(at("2026-11-11T00:00:00Z"));
    let after = w
        .tokens(&alice, "claude-sonnet-4", 1_000_000, 0)
        .await
        .unwrap();
    assert_eq!(after.cost, Nanos(6_000_000_000));
    let row = api_token_usage::Entity::find_by_id(after.id)
        .one(w.conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.price_id, v2.id);
    let dup = w
        .billing
        .create_model_price(w.conn(), &cap, new_price.clone())
        .await;
    assert_eq!(dup.unwrap_err().code(), Code::Conflict);
    // A version may not start in the past: recorded costs keep their price.
    let past = NewModelPrice {
        effective_from: at("2026-11-01T00:00:00Z"),
        ..new_price
    };
    let err = w.billing.create_model_price(w.conn(), &cap, past).await;
    assert_eq!(err.unwrap_err().code(), Code::BadUserInput);
}

#[tokio::test]
async fn an_unknown_model_is_refused_and_nothing_is_written() {
    let w = world_at(at("2026-11-10T12:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Daily, "0.01", 50, false).await;
    let err = w
        .tokens(&alice, "gpt-imaginary", 1_000, 1_000)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::BadUserInput);
    assert!(matches!(err, kernel::Error::BadInput { ref field, .. } if field == "model"));
    assert_eq!(w.count::<api_token_usage::Entity>().await, 0);
    assert_eq!(w.count::<daily_cost_summary::Entity>().await, 0);
    assert_eq!(w.count::<billing_event::Entity>().await, 0);
    // A model priced only in the future is unknown now.
    let admin = w.admin("admin@example.com").await;
    let later = NewModelPrice::parse(
        Provider::Anthropic,
        "claude-next".into(),
        "1",
        "1",
        None,
        None,
        at("2027-01-01T00:00:00Z"),
    )
    .unwrap();
    w.billing
        .create_model_price(w.conn(), &AdminCap::check(&admin).unwrap(), later)
        .await
        .unwrap();
    let err = w.tokens(&alice, "claude-next", 1, 1).await.unwrap_err();
    assert_eq!(err.code(), Code::BadUserInput);
}

#[tokio::test]
async fn only_admins_hold_the_capability_to_manage_prices() {
    let w = world_at(at("2026-11-10T12:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    assert_eq!(AdminCap::check(&alice).unwrap_err().code(), Code::Forbidden);
}

#[tokio::test]
async fn the_daily_summary_equals_the_sum_of_the_cost_rows() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    let bob = w.user("bob@example.com").await;
    w.tokens(&alice, "claude-sonnet-4", 1_234_567, 2_000)
        .await
        .unwrap();
    w.tokens(&alice, "claude-opus-4", 10_000, 500)
        .await
        .unwrap();
    w.tokens(&bob, "claude-opus-4", 1, 1).await.unwrap();
    let txn = w.conn().begin().await.unwrap();
    let session = BrowserSession {
        session_id: "bb_1".into(),
        project_id: None,
        execution_id: None,
        duration_ms: 90_000,
        has_recording: true,
        screenshot_count: 3,
        status: "completed".into(),
        started_at: at("2026-11-10T07:58:30Z"),
        completed_at: Some(at("2026-11-10T08:00:00Z")),
        debug_url: None,
        recording_url: None,
    }
    .validate()
    .unwrap();
    let b = w
        .billing
        .record_browser_cost(&txn, &alice, session.clone())
        .await
        .unwrap();
    // 1.5 min x $0.01 + 1.5 min x $0.002 + 3 x $0.001
    assert_eq!(b.cost, Nanos(15_000_000 + 3_000_000 + 3_000_000));
    let op = StorageOperation {
        provider: "s3".into(),
        bucket: "artifacts".into(),
        operation_type: "upload".into(),
        object_key: Some("a/b.png".into()),
        size_bytes: 2_500_000_000,
        content_type: Some("image/png".into()),
        status: "success".into(),
        operation_id: None,
        execution_id: None,
    }
    .validate()
    .unwrap();
    let s = w
        .billing
        .record_storage_cost(&txn, &alice, op)
        .await
        .unwrap();
    // 2.5 GB x $0.023 + one request at $0.000005
    assert_eq!(s.cost, Nanos(57_500_000 + 5_000));
    txn.commit().await.unwrap();
    // A session is recorded once.
    let txn = w.conn().begin().await.unwrap();
    let again = w.billing.record_browser_cost(&txn, &alice, session).await;
    assert_eq!(again.unwrap_err().code(), Code::Conflict);
    drop(txn);

    let api: i64 = api_token_usage::Entity::find()
        .filter(api_token_usage::Column::UserId.eq(alice.user_id))
        .all(w.conn())
        .await
        .unwrap()
        .iter()
        .map(|r| r.total_cost_nanos)
        .sum();
    let browser: i64 = browserbase_cost::Entity::find()
        .all(w.conn())
        .await
        .unwrap()
        .iter()
        .map(|r| r.total_cost_nanos)
        .sum();
    let storage: i64 = storage_cost::Entity::find()
        .all(w.conn())
        .await
        .unwrap()
        .iter()
        .map(|r| r.total_cost_nanos)
        .sum();
    let rows = summaries(&w, &alice).await;
    assert_eq!(rows.len(), 1);
    let s = &rows[0];
    assert_eq!(s.day, day("2026-11-10"));
    assert_eq!(s.total_api_calls, 2);
    assert_eq!(s.total_input_tokens, 1_234_567 + 10_000);
    assert_eq!(s.api_cost_nanos, api);
    assert_eq!(s.browserbase_cost_nanos, browser);
    assert_eq!((s.total_sessions, s.total_session_ms), (1, 90_000));
    assert_eq!(s.storage_cost_nanos, storage);
    assert_eq!(
        (s.total_storage_operations, s.total_storage_bytes),
        (1, 2_500_000_000)
    );
    assert_eq!(s.total_cost_nanos, api + browser + storage);
    assert_eq!(summaries(&w, &bob).await[0].total_api_calls, 1);
}

#[tokio::test]
async fn concurrent_recordings_add_up_exactly_in_the_daily_summary() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let (db, billing, actor) = (w.conn().clone(), w.billing.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            let usage = anthropic("claude-sonnet-4", 1_000 + i, 10, 0, 0);
            let r = billing
                .record_token_usage(&txn, &actor, usage)
                .await
                .unwrap();
            txn.commit().await.unwrap();
            r.cost.0
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let rows: Vec<_> = api_token_usage::Entity::find().all(w.conn()).await.unwrap();
    assert_eq!(rows.len(), 40);
    assert_eq!(rows.iter().map(|r| r.total_cost_nanos).sum::<i64>(), total);
    let s = &summaries(&w, &alice).await[0];
    assert_eq!(s.total_api_calls, 40);
    assert_eq!(
        s.total_input_tokens,
        (0..40).map(|i| 1_000 + i).sum::<i64>()
    );
    assert_eq!(s.total_cost_nanos, total);
}

#[tokio::test]
async fn costs_land_on_the_utc_day_they_happen() {
    let w = world_at(at("2026-11-10T23:59:59.999999Z")).await;
    let alice = w.user("alice@example.com").await;
    w.spend_cents(&alice, 3).await;
    w.clock.advance(Duration::microseconds(1));
    w.spend_cents(&alice, 6).await;
    let rows = summaries(&w, &alice).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].day, rows[0].total_cost_nanos),
        (day("2026-11-10"), 30_000_000)
    );
    assert_eq!(
        (rows[1].day, rows[1].total_cost_nanos),
        (day("2026-11-11"), 60_000_000)
    );
    let read = w
        .billing
        .cost_summaries(w.conn(), &alice, day("2026-11-11"), day("2026-11-11"))
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
}

#[tokio::test]
async fn summary_ranges_are_bounded_and_ordered() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    let backwards = w
        .billing
        .cost_summaries(w.conn(), &alice, day("2026-11-10"), day("2026-11-09"))
        .await;
    assert_eq!(backwards.unwrap_err().code(), Code::BadUserInput);
    let too_long = w
        .billing
        .cost_summaries(w.conn(), &alice, day("2025-01-01"), day("2026-01-02"))
        .await;
    assert_eq!(too_long.unwrap_err().code(), Code::BadUserInput);
    let year = w
        .billing
        .cost_summaries(w.conn(), &alice, day("2025-01-01"), day("2026-01-01"))
        .await;
    assert!(year.is_ok());
}

#[tokio::test]
async fn windows_follow_utc_boundaries_and_weeks_start_monday() {
    // 2026-11-11 is a Wednesday.
    let wed = day("2026-11-11");
    assert_eq!(Window::Daily.bounds(wed), (wed, day("2026-11-12")));
    assert_eq!(
        Window::Weekly.bounds(wed),
        (day("2026-11-09"), day("2026-11-16"))
    );
    assert_eq!(
        Window::Weekly.bounds(day("2026-11-15")).0,
        day("2026-11-09")
    );
    assert_eq!(
        Window::Weekly.bounds(day("2026-11-16")).0,
        day("2026-11-16")
    );
    assert_eq!(
        Window::Monthly.bounds(wed),
        (day("2026-11-01"), day("2026-12-01"))
    );
    assert_eq!(
        Window::Monthly.bounds(day("2026-12-31")),
        (day("2026-12-01"), day("2027-01-01"))
    );
}

#[tokio::test]
async fn threshold_and_limit_each_alert_once_per_window() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Daily, "0.30", 80, false).await;
    w.spend_cents(&alice, 21).await; // 70 %
    assert_eq!(w.count::<billing_event::Entity>().await, 0);
    w.spend_cents(&alice, 3).await; // 80 %
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 1);
    w.spend_cents(&alice, 3).await; // 90 %
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 1);
    assert_eq!(events(&w, LIMIT_EVENT).await.len(), 0);
    w.spend_cents(&alice, 3).await; // 100 %
    w.spend_cents(&alice, 30).await; // 200 %
    let limit = events(&w, LIMIT_EVENT).await;
    assert_eq!(limit.len(), 1);
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 1);
    assert_eq!(limit[0].user_id, alice.user_id);
    assert_eq!(limit[0].payload["spendUsd"], "0.300000000");
    assert_eq!(limit[0].payload["windowStart"], "2026-11-10");
    assert!(limit[0].delivered_at.is_none());
    assert_eq!(w.count::<budget_alert::Entity>().await, 2);
}

#[tokio::test]
async fn alert_events_wait_in_the_outbox_and_are_delivered_once() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Daily, "0.30", 100, false).await;
    w.spend_cents(&alice, 30).await;
    // At a threshold of 100 % the early alert and the limit alert are one.
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 0);
    let pending = billing::events::pending(w.conn(), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, LIMIT_EVENT);
    let now = at("2026-11-10T08:01:00Z");
    assert!(
        billing::events::mark_delivered(w.conn(), pending[0].id, now)
            .await
            .unwrap()
    );
    assert!(
        !billing::events::mark_delivered(w.conn(), pending[0].id, now)
            .await
            .unwrap()
    );
    assert!(
        billing::events::pending(w.conn(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_rolled_back_recording_leaves_no_cost_summary_or_alert() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Daily, "0.01", 50, false).await;
    let txn = w.conn().begin().await.unwrap();
    let usage = anthropic("claude-sonnet-4", 1_000_000, 0, 0, 0);
    w.billing
        .record_token_usage(&txn, &alice, usage)
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(w.count::<api_token_usage::Entity>().await, 0);
    assert_eq!(w.count::<daily_cost_summary::Entity>().await, 0);
    assert_eq!(w.count::<budget_alert::Entity>().await, 0);
    assert_eq!(w.count::<billing_event::Entity>().await, 0);
}

#[tokio::test]
async fn changing_a_budgets_limit_lets_the_current_window_alert_again() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Daily, "0.30", 80, false).await;
    w.spend_cents(&alice, 30).await;
    assert_eq!(events(&w, LIMIT_EVENT).await.len(), 1);
    let id = w.billing.budgets(w.conn(), &alice).await.unwrap()[0]
        .budget
        .id;
    let paused = BudgetChange {
        is_active: Some(false),
        ..Default::default()
    };
    w.billing
        .update_budget(w.conn(), &alice, id, paused)
        .await
        .unwrap();
    let resumed = BudgetChange {
        is_active: Some(true),
        ..Default::default()
    };
    w.billing
        .update_budget(w.conn(), &alice, id, resumed)
        .await
        .unwrap();
    w.spend_cents(&alice, 3).await;
    assert_eq!(events(&w, LIMIT_EVENT).await.len(), 1);
    let raised = BudgetChange {
        limit: Some(Nanos(600_000_000)),
        ..Default::default()
    };
    w.billing
        .update_budget(w.conn(), &alice, id, raised)
        .await
        .unwrap();
    w.spend_cents(&alice, 30).await; // 63 cents of 60
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 2);
    assert_eq!(events(&w, LIMIT_EVENT).await.len(), 2);
}

#[tokio::test]
async fn a_new_window_alerts_again() {
    let w = world_at(at("2026-11-15T20:00:00Z")).await; // a Sunday
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Weekly, "0.30", 50, false).await;
    w.spend_cents(&alice, 30).await;
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 1);
    assert_eq!(events(&w, LIMIT_EVENT).await.len(), 1);
    w.set_time(at("2026-11-16T00:00:01Z")); // Monday: a new week
    w.spend_cents(&alice, 12).await; // 40 % of the new week
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 1);
    w.spend_cents(&alice, 3).await; // 50 %
    let threshold = events(&w, THRESHOLD_EVENT).await;
    assert_eq!(threshold.len(), 2);
    assert_eq!(threshold[1].payload["windowStart"], "2026-11-16");
}

#[tokio::test]
async fn concurrent_recordings_raise_each_alert_once() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Monthly, "0.30", 50, true).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (db, billing, actor) = (w.conn().clone(), w.billing.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            // 3 cents each: 30 recordings reach 300 % of the limit.
            let usage = anthropic("claude-sonnet-4", 10_000, 0, 0, 0);
            billing
                .record_token_usage(&txn, &actor, usage)
                .await
                .unwrap();
            txn.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(summaries(&w, &alice).await[0].total_cost_nanos, 900_000_000);
    assert_eq!(events(&w, THRESHOLD_EVENT).await.len(), 1);
    assert_eq!(events(&w, LIMIT_EVENT).await.len(), 1);
}

#[tokio::test]
async fn an_auto_stop_budget_at_its_limit_refuses_new_work() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    let bob = w.user("bob@example.com").await;
    budget(&w, &alice, Window::Daily, "0.30", 80, true).await;
    budget(&w, &bob, Window::Daily, "0.30", 80, false).await;
    w.spend_cents(&alice, 27).await;
    w.spend_cents(&bob, 60).await;
    assert!(
        w.billing
            .budget_allows(w.conn(), alice.user_id, Nanos(0))
            .await
            .is_ok()
    );
    // Without auto-stop, a budget only alerts.
    assert!(
        w.billing
            .budget_allows(w.conn(), bob.user_id, Nanos(0))
            .await
            .is_ok()
    );
    w.spend_cents(&alice, 3).await; // exactly 100 %
    let err = w
        .billing
        .budget_allows(w.conn(), alice.user_id, Nanos(0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    // The next window starts afresh.
    w.set_time(at("2026-11-11T00:00:00Z"));
    assert!(
        w.billing
            .budget_allows(w.conn(), alice.user_id, Nanos(0))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_preflight_estimate_that_would_cross_an_auto_stop_budget_is_refused() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    budget(&w, &alice, Window::Monthly, "1.00", 80, true).await;
    w.spend_cents(&alice, 90).await;
    let ten_cents = Nanos(100_000_000);
    assert!(
        w.billing
            .budget_allows(w.conn(), alice.user_id, ten_cents)
            .await
            .is_ok()
    );
    let err = w
        .billing
        .budget_allows(w.conn(), alice.user_id, Nanos(ten_cents.0 + 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::LimitExceeded);
    // A paused budget does not stop work.
    let id = w.billing.budgets(w.conn(), &alice).await.unwrap()[0]
        .budget
        .id;
    let change = BudgetChange {
        is_active: Some(false),
        ..Default::default()
    };
    w.billing
        .update_budget(w.conn(), &alice, id, change)
        .await
        .unwrap();
    assert!(
        w.billing
            .budget_allows(w.conn(), alice.user_id, Nanos(1_000_000_000))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn budgets_are_validated_unique_per_window_and_private() {
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    let bob = w.user("bob@example.com").await;
    assert_eq!(
        parse_limit("limit", "0").unwrap_err().code(),
        Code::BadUserInput
    );
    assert_eq!(
        parse_limit("limit", "-1").unwrap_err().code(),
        Code::BadUserInput
    );
    assert_eq!(
        Percent::parse("alertThreshold", 0).unwrap_err().code(),
        Code::BadUserInput
    );
    assert_eq!(
        Percent::parse("alertThreshold", 101).unwrap_err().code(),
        Code::BadUserInput
    );
    budget(&w, &alice, Window::Daily, "5", 80, false).await;
    let dup = NewBudget {
        window: Window::Daily,
        limit: Nanos(1),
        alert_threshold: Percent::parse("t", 50).unwrap(),
        auto_stop_on_limit: false,
    };
    let err = w
        .billing
        .create_budget(w.conn(), &alice, dup)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
    let id = w.billing.budgets(w.conn(), &alice).await.unwrap()[0]
        .budget
        .id;
    let change = BudgetChange {
        limit: Some(Nanos(1)),
        ..Default::default()
    };
    let err = w
        .billing
        .update_budget(w.conn(), &bob, id, change)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = w
        .billing
        .delete_budget(w.conn(), &bob, id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(w.billing.budgets(w.conn(), &bob).await.unwrap().is_empty());
    w.billing.delete_budget(w.conn(), &alice, id).await.unwrap();
    assert!(
        w.billing
            .budgets(w.conn(), &alice)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_forecast_projects_month_to_date_spend_over_the_whole_month() {
    let w = world_at(at("2026-10-31T12:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    w.spend_cents(&alice, 300).await; // October: not this month
    w.set_time(at("2026-11-01T01:00:00Z"));
    w.spend_cents(&alice, 99).await;
    w.set_time(at("2026-11-10T23:00:00Z"));
    w.spend_cents(&alice, 201).await;
    let f = w.billing.cost_forecast(w.conn(), &alice).await.unwrap();
    assert_eq!(f.month_start, day("2026-11-01"));
    assert_eq!(f.month_to_date, Nanos(3_000_000_000));
    assert_eq!((f.days_elapsed, f.days_in_month), (10, 30));
    assert_eq!(f.projected, Nanos(9_000_000_000)); // $3 x 30 / 10
    // Integer arithmetic: multiplied first, rounded down.
    assert_eq!(project(100, 3, 31), 1_033);
    assert_eq!(project(0, 1, 28), 0);
}

#[tokio::test]
async fn the_costs_migration_rolls_back_and_reapplies() {
    use migration::{Migrator, MigratorTrait};
    let w = world_at(at("2026-11-10T08:00:00Z")).await;
    let alice = w.user("alice@example.com").await;
    w.spend_cents(&alice, 3).await;
    // Roll back through this migration, whatever later ones exist.
    let applied = Migrator::get_applied_migrations(w.conn())
        .await
        .unwrap()
        .len();
    let through_costs = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261128_000010_costs")
        .unwrap()
        + 1;
    Migrator::down(w.conn(), Some((applied - through_costs + 1) as u32))
        .await
        .unwrap();
    assert!(api_token_usage::Entity::find().all(w.conn()).await.is_err());
    Migrator::up(w.conn(), None).await.unwrap();
    assert_eq!(w.count::<api_token_usage::Entity>().await, 0);
    w.spend_cents(&alice, 3).await;
}

mod graphql {
    use super::*;
    use async_graphql::{EmptySubscription, Request, Schema, Variables};
    use billing::cost_entity::{cost_budget, model_price};
    use billing::graphql::{CostMutation, CostQuery};
    use serde_json::{Value, json};

    type CostSchema = Schema<CostQuery, CostMutation, EmptySubscription>;

    fn schema(w: &World) -> CostSchema {
        Schema::build(CostQuery, CostMutation, EmptySubscription)
            .data(w.conn().clone())
            .data(w.billing.clone())
            .finish()
    }

    async fn run(
        s: &CostSchema,
        actor: &Actor,
        query: &str,
        vars: Value,
    ) -> (Value, Option<String>, Option<String>) {
        let res = s
            .execute(
                Request::new(query)
                    .variables(Variables::from_json(vars))
                    .data(actor.clone()),
            )
            .await;
        let err = res.errors.first().and_then(|e| e.extensions.as_ref());
        let code = err
            .and_then(|x| x.get("code"))
            .map(|v| v.to_string().trim_matches('"').to_owned());
        let field = err
            .and_then(|x| x.get("field"))
            .map(|v| v.to_string().trim_matches('"').to_owned());
        (res.data.into_json().unwrap(), code, field)
    }

    const RECORD: &str =
        "mutation($i: RecordTokenUsageInput!) { recordTokenUsage(input: $i) { id costUsd } }";

    #[tokio::test]
    async fn graphql_records_a_call_priced_on_the_server_and_reports_it_exactly() {
        let w = world_at(at("2026-11-10T12:00:00Z")).await;
        let alice = w.user("alice@example.com").await;
        let s = schema(&w);
        let (data, code, _) = run(
            &s,
            &alice,
            "mutation { createBudget(input: {window: DAILY, limitUsd: \"4\", alertThreshold: 90, autoStopOnLimit: true}) { id limitUsd spendUsd windowStart } }",
            json!({}),
        )
        .await;
        assert_eq!(code, None);
        assert_eq!(data["createBudget"]["limitUsd"], "4.000000000");
        assert_eq!(data["createBudget"]["windowStart"], "2026-11-10");
        let (data, code, _) = run(
            &s,
            &alice,
            RECORD,
            json!({"i": {"provider": "ANTHROPIC", "model": "claude-sonnet-4", "inputTokens": 1234567, "outputTokens": 0}}),
        )
        .await;
        assert_eq!(code, None);
        assert_eq!(data["recordTokenUsage"]["costUsd"], "3.703701000");
        let (data, _, _) = run(
            &s,
            &alice,
            "{ costSummaries(from: \"2026-11-01\", to: \"2026-11-30\") { day apiCalls totalCostUsd } budgets { spendUsd window } costForecast { monthToDateUsd daysElapsed daysInMonth projectedUsd } }",
            json!({}),
        )
        .await;
        assert_eq!(
            data["costSummaries"],
            json!([{"day": "2026-11-10", "apiCalls": 1, "totalCostUsd": "3.703701000"}])
        );
        assert_eq!(
            data["budgets"],
            json!([{"spendUsd": "3.703701000", "window": "DAILY"}])
        );
        assert_eq!(data["costForecast"]["projectedUsd"], "11.111103000"); // 3.703701 x 30 / 10
        assert_eq!(w.count::<billing_event::Entity>().await, 1); // 92.6 % of $4
    }

    #[tokio::test]
    async fn graphql_refusals_carry_their_codes_and_write_nothing() {
        let w = world_at(at("2026-11-10T12:00:00Z")).await;
        let alice = w.user("alice@example.com").await;
        let bob = w.user("bob@example.com").await;
        let s = schema(&w);
        let (_, code, field) = run(
            &s,
            &alice,
            "mutation { createBudget(input: {window: DAILY, limitUsd: \"4\", alertThreshold: 0}) { id } }",
            json!({}),
        )
        .await;
        assert_eq!(
            (code.as_deref(), field.as_deref()),
            (Some("BAD_USER_INPUT"), Some("alertThreshold"))
        );
        let (_, code, field) = run(
            &s,
            &alice,
            "mutation { createBudget(input: {window: DAILY, limitUsd: \"0\"}) { id } }",
            json!({}),
        )
        .await;
        assert_eq!(
            (code.as_deref(), field.as_deref()),
            (Some("BAD_USER_INPUT"), Some("limitUsd"))
        );
        assert_eq!(w.count::<cost_budget::Entity>().await, 0);

        let (_, code, field) = run(
            &s,
            &alice,
            RECORD,
            json!({"i": {"provider": "GOOGLE", "model": "gemini-0-imaginary", "inputTokens": 5, "outputTokens": 5}}),
        )
        .await;
        assert_eq!(
            (code.as_deref(), field.as_deref()),
            (Some("BAD_USER_INPUT"), Some("model"))
        );
        assert_eq!(w.count::<gemini_token_usage::Entity>().await, 0);
        assert_eq!(w.count::<daily_cost_summary::Entity>().await, 0);

        let prices = w.count::<model_price::Entity>().await;
        let create_price = "mutation { createModelPrice(input: {provider: ANTHROPIC, model: \"claude-x\", inputPerMillionUsd: \"1\", outputPerMillionUsd: \"2\"}) { id inputPerMillionUsd } }";
        let (_, code, _) = run(&s, &alice, create_price, json!({})).await;
        assert_eq!(code.as_deref(), Some("FORBIDDEN"));
        assert_eq!(w.count::<model_price::Entity>().await, prices);
        let admin = w.admin("admin@example.com").await;
        let (data, code, _) = run(&s, &admin, create_price, json!({})).await;
        assert_eq!(code, None);
        assert_eq!(
            data["createModelPrice"]["inputPerMillionUsd"],
            "1.000000000"
        );

        let (data, _, _) = run(
            &s,
            &alice,
            "mutation { createBudget(input: {window: WEEKLY, limitUsd: \"4\"}) { id } }",
            json!({}),
        )
        .await;
        let id = data["createBudget"]["id"].as_str().unwrap().to_owned();
        let (_, code, _) = run(
            &s,
            &bob,
            "mutation($id: ID!) { updateBudget(id: $id, input: {limitUsd: \"100\"}) { id } }",
            json!({"id": id}),
        )
        .await;
        assert_eq!(code.as_deref(), Some("NOT_FOUND"));
        let (_, code, _) = run(
            &s,
            &bob,
            "mutation($id: ID!) { deleteBudget(id: $id) }",
            json!({"id": id}),
        )
        .await;
        assert_eq!(code.as_deref(), Some("NOT_FOUND"));
        let (data, code, _) = run(
            &s,
            &alice,
            "mutation($id: ID!) { updateBudget(id: $id, input: {alertThreshold: 50}) { alertThreshold limitUsd } }",
            json!({"id": id}),
        )
        .await;
        assert_eq!(code, None);
        assert_eq!(
            data["updateBudget"],
            json!({"alertThreshold": 50, "limitUsd": "4.000000000"})
        );
    }

    #[tokio::test]
    async fn graphql_read_only_keys_read_costs_but_cannot_record_them() {
        use core_auth::api_keys::CreateApiKey;
        use kernel::actor::Permission;
        let w = world_at(at("2026-11-10T12:00:00Z")).await;
        let alice = w.user("alice@example.com").await;
        let req =
            CreateApiKey::parse(&w.auth, "ro".into(), None, Some(vec![Permission::Read])).unwrap();
        let (_, secret) = w.auth.create_api_key(w.conn(), &alice, req).await.unwrap();
        let key = w.auth.authenticate(w.conn(), &secret).await.unwrap();
        let s = schema(&w);
        let (_, code, _) = run(
            &s,
            &key,
            RECORD,
            json!({"i": {"provider": "ANTHROPIC", "model": "claude-sonnet-4", "inputTokens": 1, "outputTokens": 1}}),
        )
        .await;
        assert_eq!(code.as_deref(), Some("FORBIDDEN"));
        assert_eq!(w.count::<api_token_usage::Entity>().await, 0);
        let (data, code, _) = run(
            &s,
            &key,
            "{ budgets { id } costForecast { projectedUsd } }",
            json!({}),
        )
        .await;
        assert_eq!(code, None);
        assert_eq!(data["costForecast"]["projectedUsd"], "0.000000000");
    }
}
