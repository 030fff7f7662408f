//! Plans, quotes and subscriptions: each test names the rule it checks. Runs
//! on SQLite, and on PostgreSQL when `DATABASE_URL` is set.

mod common_plans;

use billing::entity::{
    billing_webhook_event, subscription_tier, subscription_usage_record as usage,
    user_agent_add_on, user_execution_pack, user_subscription,
};
use billing::quote::{Frequency, PriceTerms, div_round_half_up, period_price, prorate};
use billing::subscriptions::Subscribe;
use billing::webhook::Outcome;
use chrono::{Duration, Timelike};
use common_plans::*;
use kernel::clock::{Clock, ManualClock};
use migration::{Migrator, MigratorTrait};
use proptest::prelude::*;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use std::sync::atomic::Ordering;

fn sub(tier: uuid::Uuid, frequency: Frequency) -> Subscribe {
    Subscribe {
        tier_id: tier,
        frequency,
        trial: false,
    }
}

/// Moves the clock to the next whole minute, so prorations are exact.
fn align_to_minute(clock: &ManualClock) {
    let now = clock.now();
    let into = i64::from(now.second()) * 1_000_000 + i64::from(now.nanosecond() / 1_000);
    clock.advance(Duration::microseconds(60_000_000 - into));
}

#[tokio::test]
async fn migration_seeds_the_four_default_tiers_and_rolls_back_cleanly() {
    let fx = setup().await;
    let db = &fx.t.db;
    let tiers = subscription_tier::Entity::find()
        .order_by_asc(subscription_tier::Column::SortOrder)
        .all(db)
        .await
        .unwrap();
    let got: Vec<(&str, i64, i32, i32)> = tiers
        .iter()
        .map(|t| {
            (
                t.slug.as_str(),
                t.monthly_price_cents,
                t.max_agents,
                t.monthly_execution_limit,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("starter", 99_700, 5, 200),
            ("growth", 169_700, 10, 500),
            ("professional", 319_700, 25, 1_250),
            ("enterprise", 499_700, 50, 3_000),
        ]
    );
    assert!(tiers.iter().all(|t| t.weekly_premium_percent == 15
        && t.six_month_discount_percent == 5
        && t.annual_discount_percent == 10));
    assert_eq!(fx.billing.execution_packs(db).await.unwrap().len(), 3);
    assert_eq!(fx.billing.agent_add_ons(db).await.unwrap().len(), 2);
    // Roll back through this migration, whatever later ones exist.
    let applied = Migrator::get_applied_migrations(db).await.unwrap().len();
    let through_plans = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261128_000008_billing_plans")
        .unwrap()
        + 1;
    Migrator::down(db, Some((applied - through_plans + 1) as u32))
        .await
        .unwrap();
    assert!(subscription_tier::Entity::find().all(db).await.is_err());
    Migrator::up(db, None).await.unwrap();
    assert_eq!(
        subscription_tier::Entity::find()
            .all(db)
            .await
            .unwrap()
            .len(),
        4
    );
}

fn terms() -> impl Strategy<Value = PriceTerms> {
    (0i64..=100_000_000, 0i32..=100, 0i32..=100, 0i32..=100).prop_map(|(m, w, s, a)| PriceTerms {
        monthly_cents: m,
        weekly_premium_percent: w,
        six_month_discount_percent: s,
        annual_discount_percent: a,
    })
}

proptest! {
    #[test]
    fn quote_prices_are_never_negative(t in terms()) {
        for f in [Frequency::Weekly, Frequency::Monthly, Frequency::SixMonth, Frequency::Annual] {
            prop_assert!(period_price(t, f) >= 0);
        }
    }

    #[test]
    fn annual_never_exceeds_twelve_months_and_six_month_never_exceeds_six(t in terms()) {
        prop_assert!(period_price(t, Frequency::Annual) <= 12 * t.monthly_cents);
        prop_assert!(period_price(t, Frequency::SixMonth) <= 6 * t.monthly_cents);
        prop_assert_eq!(period_price(t, Frequency::Monthly), t.monthly_cents);
    }

    #[test]
    fn weekly_times_52_is_within_rounding_of_monthly_times_12_plus_premium(t in terms()) {
        let weekly = i128::from(period_price(t, Frequency::Weekly));
        let exact_x5200 = i128::from(t.monthly_cents) * 12 * (100 + i128::from(t.weekly_premium_percent));
        // One rounding of at most half a cent per week: |weekly x 52 - exact| <= 26 cents.
        prop_assert!((weekly * 5200 - exact_x5200).abs() <= 2600);
    }

    #[test]
    fn a_bigger_discount_never_costs_more(t in terms(), extra in 0i32..=100) {
        let mut more = t;
        more.annual_discount_percent = (t.annual_discount_percent + extra).min(100);
        prop_assert!(period_price(more, Frequency::Annual) <= period_price(t, Frequency::Annual));
    }

    #[test]
    fn proration_stays_between_zero_and_the_amount_and_grows_with_time(
        amount in 0i64..=10_000_000, total in 1i64..=40_000_000, a in 0i64..=40_000_000, b in 0i64..=40_000_000,
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let p_lo = prorate(amount, lo, total);
        let p_hi = prorate(amount, hi, total);
        prop_assert!(p_lo >= 0 && p_hi <= amount && p_lo <= p_hi);
        prop_assert_eq!(prorate(amount, total, total), amount);
    }

    #[test]
    fn rounding_is_half_up_and_within_half_a_cent(n in 0i64..=1_000_000_000, d in 1i64..=1_000_000) {
        let q = i128::from(div_round_half_up(i128::from(n), i128::from(d)));
        let (n, d) = (i128::from(n), i128::from(d));
        // |q - n/d| <= 1/2, and an exact half goes up.
        prop_assert!((2 * (q * d - n)).abs() <= d);
        if 2 * (n % d) == d { prop_assert!(q * d > n); }
    }
}

#[tokio::test]
async fn quote_adds_the_setup_fee_only_on_a_first_subscription() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let anon = fx
        .billing
        .quote(db, None, STARTER_ID, Frequency::Annual)
        .await
        .unwrap();
    assert_eq!(
        (
            anon.period_price_cents,
            anon.setup_fee_cents,
            anon.total_cents
        ),
        (1_076_760, 49_700, 1_126_460)
    );
    let first = fx
        .billing
        .quote(db, Some(&ada), STARTER_ID, Frequency::Weekly)
        .await
        .unwrap();
    assert_eq!(
        (first.period_price_cents, first.setup_fee_cents),
        (26_459, 49_700)
    );
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    fx.billing
        .cancel_subscription(db, &ada, false)
        .await
        .unwrap();
    let again = fx
        .billing
        .quote(db, Some(&ada), GROWTH_ID, Frequency::SixMonth)
        .await
        .unwrap();
    // 169_700 x 6 x 0.95 = 967_290; no setup fee the second time.
    assert_eq!(
        (
            again.period_price_cents,
            again.setup_fee_cents,
            again.total_cents
        ),
        (967_290, 0, 967_290)
    );
}

#[tokio::test]
async fn quote_of_an_unknown_tier_is_not_found() {
    let fx = setup().await;
    let err = fx
        .billing
        .quote(&fx.t.db, None, kernel::id::new_id(), Frequency::Monthly)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NOT_FOUND");
}

#[tokio::test]
async fn subscribe_charges_setup_fee_plus_first_period_and_opens_the_usage_record() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let s = fx
        .billing
        .subscribe(db, &ada, sub(GROWTH_ID, Frequency::Monthly))
        .await
        .unwrap();
    assert_eq!(s.status, "active");
    assert_eq!(
        s.current_period_end,
        Frequency::Monthly.period_end(fx.clock.now())
    );
    assert_eq!(fx.gateway.amounts(), vec![169_700 + 99_700]);
    let rec = usage::Entity::find()
        .filter(usage::Column::UserId.eq(ada.user_id))
        .one(db)
        .await
        .unwrap()
        .expect("usage record");
    assert_eq!(
        (rec.execution_limit, rec.agent_limit, rec.tier_id),
        (500, 10, GROWTH_ID)
    );
    assert_eq!(rec.period_start, s.current_period_start);
}

#[tokio::test]
async fn a_second_live_subscription_is_conflict_and_charges_nothing() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let err = fx
        .billing
        .subscribe(db, &ada, sub(GROWTH_ID, Frequency::Annual))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CONFLICT");
    assert_eq!(fx.gateway.amounts().len(), 1);
}

#[tokio::test]
async fn concurrent_subscribes_leave_exactly_one_live_subscription() {
    let fx = setup().await;
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (db, billing, ada) = (fx.t.db.clone(), fx.billing.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            let res = billing
                .subscribe(&txn, &ada, sub(STARTER_ID, Frequency::Monthly))
                .await;
            match res {
                Ok(_) => txn.commit().await.map(|_| true).unwrap_or(false),
                Err(e) => {
                    assert_eq!(code(&e), "CONFLICT");
                    false
                }
            }
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    let live = user_subscription::Entity::find()
        .filter(user_subscription::Column::UserId.eq(ada.user_id))
        .count(&fx.t.db)
        .await
        .unwrap();
    assert_eq!(live, 1);
}

#[tokio::test]
async fn trial_charges_nothing_and_lasts_the_tiers_trial_days() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let s = fx
        .billing
        .subscribe(
            db,
            &ada,
            Subscribe {
                tier_id: PROFESSIONAL_ID,
                frequency: Frequency::Monthly,
                trial: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(s.status, "trial");
    assert_eq!(s.trial_ends_at, Some(fx.clock.now() + Duration::days(14)));
    assert_eq!(s.current_period_end, fx.clock.now() + Duration::days(14));
    assert!(fx.gateway.amounts().is_empty());
}

#[tokio::test]
async fn a_returning_subscriber_gets_no_trial() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    fx.billing
        .cancel_subscription(db, &ada, false)
        .await
        .unwrap();
    let err = fx
        .billing
        .subscribe(
            db,
            &ada,
            Subscribe {
                tier_id: STARTER_ID,
                frequency: Frequency::Monthly,
                trial: true,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_declined_payment_refuses_subscribe_and_leaves_no_rows() {
    let fx = setup().await;
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    fx.gateway.decline.store(true, Ordering::SeqCst);
    let txn = fx.t.db.begin().await.unwrap();
    let err = fx
        .billing
        .subscribe(&txn, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap_err();
    drop(txn);
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(
        user_subscription::Entity::find()
            .count(&fx.t.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(usage::Entity::find().count(&fx.t.db).await.unwrap(), 0);
}

#[tokio::test]
async fn proration_quote_credits_the_unused_part_and_charges_the_new_tiers_remaining_part() {
    let fx = setup().await;
    let db = &fx.t.db;
    align_to_minute(&fx.clock);
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Weekly))
        .await
        .unwrap();
    fx.clock.advance(Duration::hours(84)); // half of the 7-day period
    let q = fx
        .billing
        .proration_quote(db, &ada, GROWTH_ID)
        .await
        .unwrap();
    assert_eq!((q.remaining_seconds, q.period_seconds), (302_400, 604_800));
    // Starter weekly 26_459 -> credit 13_229.5 -> 13_230; Growth weekly 45_036 -> 22_518.
    assert_eq!(
        (q.credit_cents, q.charge_cents, q.amount_due_cents),
        (13_230, 22_518, 9_288)
    );
    assert_eq!(q.credit_balance_cents, 0);
}

#[tokio::test]
async fn change_tier_applies_exactly_the_quoted_amount_and_updates_the_usage_limits() {
    let fx = setup().await;
    let db = &fx.t.db;
    align_to_minute(&fx.clock);
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Weekly))
        .await
        .unwrap();
    fx.clock.advance(Duration::hours(84));
    let q = fx
        .billing
        .proration_quote(db, &ada, GROWTH_ID)
        .await
        .unwrap();
    let (s, applied) = fx
        .billing
        .change_tier(db, &ada, GROWTH_ID, q.amount_due_cents)
        .await
        .unwrap();
    assert_eq!(applied, q);
    assert_eq!(s.tier_id, GROWTH_ID);
    assert_eq!(fx.gateway.amounts().last(), Some(&9_288));
    let rec = usage::Entity::find()
        .filter(usage::Column::UserId.eq(ada.user_id))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.tier_id, rec.execution_limit), (GROWTH_ID, 500));
}

#[tokio::test]
async fn change_tier_refuses_with_conflict_when_the_quote_changed() {
    let fx = setup().await;
    let db = &fx.t.db;
    align_to_minute(&fx.clock);
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Weekly))
        .await
        .unwrap();
    let q = fx
        .billing
        .proration_quote(db, &ada, ENTERPRISE_ID)
        .await
        .unwrap();
    fx.clock.advance(Duration::hours(24));
    let err = fx
        .billing
        .change_tier(db, &ada, ENTERPRISE_ID, q.amount_due_cents)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CONFLICT");
    let still = fx
        .billing
        .live_subscription(db, ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.tier_id, STARTER_ID);
    assert_eq!(fx.gateway.amounts().len(), 1);
}

#[tokio::test]
async fn a_downgrade_charges_nothing_and_keeps_the_excess_as_credit() {
    let fx = setup().await;
    let db = &fx.t.db;
    align_to_minute(&fx.clock);
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(GROWTH_ID, Frequency::Weekly))
        .await
        .unwrap();
    fx.clock.advance(Duration::hours(84));
    let q = fx
        .billing
        .proration_quote(db, &ada, STARTER_ID)
        .await
        .unwrap();
    assert_eq!((q.credit_cents, q.charge_cents), (22_518, 13_230));
    assert_eq!((q.amount_due_cents, q.credit_balance_cents), (0, 9_288));
    let (s, _) = fx
        .billing
        .change_tier(db, &ada, STARTER_ID, 0)
        .await
        .unwrap();
    assert_eq!(s.metadata.unwrap()["creditBalanceCents"], 9_288);
    assert_eq!(fx.gateway.amounts().len(), 1);
}

#[tokio::test]
async fn changing_to_the_current_tier_is_bad_input() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let err = fx
        .billing
        .proration_quote(db, &ada, STARTER_ID)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

#[tokio::test]
async fn cancel_at_period_end_only_sets_the_flag() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let before = fx
        .billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let s = fx
        .billing
        .cancel_subscription(db, &ada, true)
        .await
        .unwrap();
    assert!(s.cancel_at_period_end);
    assert_eq!(s.status, "active");
    assert_eq!(s.current_period_end, before.current_period_end);
}

#[tokio::test]
async fn cancel_now_ends_the_period_and_frees_the_user_to_subscribe_again() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    fx.billing
        .buy_agent_add_on(db, &ada, AGENTS_5, 1)
        .await
        .unwrap();
    fx.clock.advance(Duration::hours(1));
    let s = fx
        .billing
        .cancel_subscription(db, &ada, false)
        .await
        .unwrap();
    assert_eq!(s.status, "cancelled");
    assert_eq!(s.current_period_end, fx.clock.now());
    assert_eq!(s.cancelled_at, Some(fx.clock.now()));
    let add_on = user_agent_add_on::Entity::find()
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(add_on.status, "cancelled");
    let err = fx
        .billing
        .cancel_subscription(db, &ada, false)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NOT_FOUND");
    fx.billing
        .subscribe(db, &ada, sub(GROWTH_ID, Frequency::Monthly))
        .await
        .unwrap();
    // The returning subscriber pays the period only, no setup fee.
    assert_eq!(fx.gateway.amounts().last(), Some(&169_700));
}

#[tokio::test]
async fn a_packs_monthly_purchase_cap_is_enforced_and_resets_next_month() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Annual))
        .await
        .unwrap();
    for _ in 0..5 {
        let p = fx
            .billing
            .buy_execution_pack(db, &ada, BOOST_50)
            .await
            .unwrap();
        assert_eq!(
            (p.executions_remaining, p.price_paid_cents),
            (Some(50), 4_900)
        );
        assert!(p.stripe_payment_intent_id.is_some());
    }
    let err = fx
        .billing
        .buy_execution_pack(db, &ada, BOOST_50)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "LIMIT_EXCEEDED");
    assert_eq!(fx.gateway.amounts().len(), 6);
    fx.clock.advance(Duration::days(32));
    fx.billing
        .buy_execution_pack(db, &ada, BOOST_50)
        .await
        .unwrap();
    assert_eq!(
        user_execution_pack::Entity::find().count(db).await.unwrap(),
        6
    );
}

#[tokio::test]
async fn concurrent_pack_purchases_never_exceed_the_monthly_cap() {
    let fx = setup().await;
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(&fx.t.db, &ada, sub(STARTER_ID, Frequency::Annual))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (db, billing, ada) = (fx.t.db.clone(), fx.billing.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            match billing.buy_execution_pack(&txn, &ada, BOOST_50).await {
                Ok(_) => txn.commit().await.is_ok(),
                Err(e) => {
                    assert!(matches!(code(&e), "LIMIT_EXCEEDED" | "CONFLICT"), "{e}");
                    false
                }
            }
        }));
    }
    let mut won = 0u64;
    for t in tasks {
        won += u64::from(t.await.unwrap());
    }
    let rows = user_execution_pack::Entity::find()
        .count(&fx.t.db)
        .await
        .unwrap();
    assert!((1..=5).contains(&rows), "{rows} packs");
    assert_eq!(won, rows);
}

#[tokio::test]
async fn a_pack_below_its_minimum_tier_is_forbidden() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let err = fx
        .billing
        .buy_execution_pack(db, &ada, BOOST_200)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "FORBIDDEN");
    let (_, _) = fx
        .billing
        .change_tier(
            db,
            &ada,
            GROWTH_ID,
            fx.billing
                .proration_quote(db, &ada, GROWTH_ID)
                .await
                .unwrap()
                .amount_due_cents,
        )
        .await
        .unwrap();
    let p = fx
        .billing
        .buy_execution_pack(db, &ada, BOOST_200)
        .await
        .unwrap();
    assert_eq!(p.executions_remaining, Some(200));
}

#[tokio::test]
async fn buying_extras_without_an_active_subscription_is_forbidden() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let err = fx
        .billing
        .buy_execution_pack(db, &ada, BOOST_50)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "FORBIDDEN");
    let err = fx
        .billing
        .buy_agent_add_on(db, &ada, AGENTS_5, 1)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "FORBIDDEN");
    assert!(fx.gateway.amounts().is_empty());
}

#[tokio::test]
async fn add_ons_raise_agent_slots_up_to_the_cap_per_user() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let h = fx
        .billing
        .buy_agent_add_on(db, &ada, AGENTS_5, 3)
        .await
        .unwrap();
    assert_eq!(h.quantity, 3);
    let err = fx
        .billing
        .buy_agent_add_on(db, &ada, AGENTS_5, 2)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "LIMIT_EXCEEDED");
    let h = fx
        .billing
        .buy_agent_add_on(db, &ada, AGENTS_5, 1)
        .await
        .unwrap();
    assert_eq!(h.quantity, 4);
    let s = fx
        .billing
        .live_subscription(db, ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.additional_agent_slots, 20);
    let rec = usage::Entity::find().one(db).await.unwrap().unwrap();
    assert_eq!(rec.agent_limit, 5 + 20);
    assert_eq!(&fx.gateway.amounts()[1..], &[3 * 19_900, 19_900]);
    let err = fx
        .billing
        .buy_agent_add_on(db, &ada, AGENTS_10, 1)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "FORBIDDEN");
    let err = fx
        .billing
        .buy_agent_add_on(db, &ada, AGENTS_5, 0)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

fn event(id: &str, kind: &str, object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"id": id, "type": kind, "data": {"object": object}}))
        .unwrap()
}

#[tokio::test]
async fn a_webhook_event_is_applied_once() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let s = fx
        .billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let failed = event(
        "evt_1",
        "invoice.payment_failed",
        serde_json::json!({"subscription": s.id.to_string()}),
    );
    assert_eq!(
        fx.billing.apply_webhook_event(db, &failed).await.unwrap(),
        Outcome::Applied
    );
    let now = fx
        .billing
        .live_subscription(db, ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.status, "past_due");
    let paid = event(
        "evt_2",
        "invoice.paid",
        serde_json::json!({"subscription": s.id.to_string()}),
    );
    assert_eq!(
        fx.billing.apply_webhook_event(db, &paid).await.unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        fx.billing
            .live_subscription(db, ada.user_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "active"
    );
    // Replaying the failure changes nothing.
    assert_eq!(
        fx.billing.apply_webhook_event(db, &failed).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(
        fx.billing
            .live_subscription(db, ada.user_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "active"
    );
    assert_eq!(
        billing_webhook_event::Entity::find()
            .count(db)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn invoice_paid_for_the_next_period_starts_it_and_resets_the_counters() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let s = fx
        .billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    user_subscription::Entity::update_many()
        .col_expr(
            user_subscription::Column::ExecutionsUsedThisPeriod,
            sea_orm::sea_query::Expr::value(42),
        )
        .exec(db)
        .await
        .unwrap();
    fx.clock.advance(Duration::days(31));
    let paid = event(
        "evt_9",
        "invoice.paid",
        serde_json::json!({"subscription": s.id.to_string()}),
    );
    fx.billing.apply_webhook_event(db, &paid).await.unwrap();
    let next = fx
        .billing
        .live_subscription(db, ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.current_period_start, s.current_period_end);
    assert_eq!(
        next.current_period_end,
        Frequency::Monthly.period_end(s.current_period_end)
    );
    assert_eq!(next.executions_used_this_period, 0);
    assert_eq!(usage::Entity::find().count(db).await.unwrap(), 2);
}

#[tokio::test]
async fn subscription_deleted_event_cancels_the_subscription() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let s = fx
        .billing
        .subscribe(db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let gone = event(
        "evt_3",
        "customer.subscription.deleted",
        serde_json::json!({"id": s.id.to_string()}),
    );
    assert_eq!(
        fx.billing.apply_webhook_event(db, &gone).await.unwrap(),
        Outcome::Applied
    );
    assert!(
        fx.billing
            .live_subscription(db, ada.user_id)
            .await
            .unwrap()
            .is_none()
    );
    let unknown = event(
        "evt_4",
        "invoice.paid",
        serde_json::json!({"subscription": "sub_nobody"}),
    );
    assert_eq!(
        fx.billing.apply_webhook_event(db, &unknown).await.unwrap(),
        Outcome::Ignored
    );
    let err = fx
        .billing
        .apply_webhook_event(db, b"not json")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let fx = setup().await;
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    let s = fx
        .billing
        .subscribe(&fx.t.db, &ada, sub(STARTER_ID, Frequency::Monthly))
        .await
        .unwrap();
    let body = event(
        "evt_race",
        "invoice.payment_failed",
        serde_json::json!({"subscription": s.id.to_string()}),
    );
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (db, billing, body) = (fx.t.db.clone(), fx.billing.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            let out = billing.apply_webhook_event(&txn, &body).await.unwrap();
            txn.commit().await.unwrap();
            out
        }));
    }
    let mut applied = 0;
    for t in tasks {
        applied += usize::from(t.await.unwrap() == Outcome::Applied);
    }
    assert_eq!(applied, 1);
    assert_eq!(
        billing_webhook_event::Entity::find()
            .count(&fx.t.db)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn concurrent_tier_changes_apply_one_and_charge_once() {
    let fx = setup().await;
    align_to_minute(&fx.clock);
    let ada = user(&fx.t.db, &fx.clock, "ada@example.com").await;
    fx.billing
        .subscribe(&fx.t.db, &ada, sub(STARTER_ID, Frequency::Weekly))
        .await
        .unwrap();
    let due = fx
        .billing
        .proration_quote(&fx.t.db, &ada, GROWTH_ID)
        .await
        .unwrap()
        .amount_due_cents;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (db, billing, ada) = (fx.t.db.clone(), fx.billing.clone(), ada.clone());
        tasks.push(tokio::spawn(async move {
            let txn = db.begin().await.unwrap();
            match billing.change_tier(&txn, &ada, GROWTH_ID, due).await {
                Ok(_) => txn.commit().await.is_ok(),
                Err(e) => {
                    // The loser either sees the change done (same tier) or lost the race.
                    assert!(matches!(code(&e), "CONFLICT" | "BAD_USER_INPUT"), "{e}");
                    false
                }
            }
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    let tier = fx
        .billing
        .live_subscription(&fx.t.db, ada.user_id)
        .await
        .unwrap()
        .unwrap()
        .tier_id;
    assert_eq!(tier, GROWTH_ID);
}

#[tokio::test]
async fn invoice_paid_after_a_trial_activates_the_first_paid_period() {
    let fx = setup().await;
    let db = &fx.t.db;
    let ada = user(db, &fx.clock, "ada@example.com").await;
    let trial = Subscribe {
        tier_id: STARTER_ID,
        frequency: Frequency::Monthly,
        trial: true,
    };
    let s = fx.billing.subscribe(db, &ada, trial).await.unwrap();
    fx.clock.advance(Duration::days(14));
    let paid = event(
        "evt_trial_paid",
        "invoice.paid",
        serde_json::json!({"subscription": s.id.to_string()}),
    );
    assert_eq!(
        fx.billing.apply_webhook_event(db, &paid).await.unwrap(),
        Outcome::Applied
    );
    let now = fx
        .billing
        .live_subscription(db, ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.status, "active");
    assert_eq!(now.current_period_start, s.current_period_end);
    assert_eq!(
        now.current_period_end,
        Frequency::Monthly.period_end(s.current_period_end)
    );
}
